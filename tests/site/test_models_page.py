"""/models/: staff only; versions side by side; one version's plots and report; "Activate" switches
the active version and queues the gallery's re-classification, whose progress the pages show.

Metrics are crafted as ml.evaluate writes them (metrics.json) plus what training adds; the plots are
small generated PNGs in the run folder under MEDIA_ROOT.
"""

from __future__ import annotations

import pytest

from classifier.models import ModelVersion, Prediction, Status

from .factory import (
    image_bytes,
    make_admin,
    make_curator,
    make_model_version,
    make_painting,
    make_prediction,
    make_user,
)
from .test_sweep import QUEUE, queued_task_args, redis_queue

pytestmark = pytest.mark.django_db

MODELS_REDIS_DB = 7  # flushed by these tests


def metrics(accuracy: float, classes=("cn", "jp"), **extra) -> dict:
    per_class = {c: {"precision": 0.9, "recall": 0.8, "f1": 0.847, "support": 20} for c in classes}
    delivered = {"accuracy": accuracy, "balanced_accuracy": 0.85, "accuracy_drop_points": 0.0}
    return {
        "n": 40,
        "accuracy": accuracy,
        "accuracy_ci95": [accuracy - 0.1, min(1.0, accuracy + 0.05)],
        "balanced_accuracy": 0.85,
        "macro_f1": 0.847,
        "per_class": per_class,
        "class_names": list(classes),
        "shortcut_check": {
            "as_delivered": {**delivered, "balanced_accuracy_drop_points": 0.0},
            "reduced_224_jpeg75": {
                "accuracy": accuracy - 0.25,
                "balanced_accuracy": 0.6,
                "accuracy_drop_points": 25.0,
                "balanced_accuracy_drop_points": 25.0,
            },
            "upscaled_640_sharpened": {
                "accuracy": accuracy - 0.01,
                "balanced_accuracy": 0.84,
                "accuracy_drop_points": 1.0,
                "balanced_accuracy_drop_points": 1.0,
            },
        },
        "colour_check": {
            "as_delivered": {**delivered, "balanced_accuracy_drop_points": 0.0},
            "greyscale": {
                "accuracy": accuracy - 0.3,
                "balanced_accuracy": 0.5,
                "accuracy_drop_points": 30.0,
                "balanced_accuracy_drop_points": 35.0,
                "recall": {c: (1.0 if c == "cn" else 0.0) for c in classes},
            },
        },
        "dataset_version": 1,
        "dataset_version_name": "spring-2026",
        "mislabel": {"k": 5, "n": 120, "flagged": 7},
        **extra,
    }


@pytest.fixture
def queue():
    with redis_queue(MODELS_REDIS_DB) as client:
        yield client


@pytest.fixture
def staff(client):
    client.force_login(make_admin())
    return client


# --- who may see and do what ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["visitor", "contributor", "curator"])
def test_only_staff_see_the_models_pages_and_activate(client, persona, queue):
    version = make_model_version("v1", active=False)
    if persona == "contributor":
        client.force_login(make_user())
    elif persona == "curator":
        client.force_login(make_curator())
    expected = 302 if persona == "visitor" else 403  # a visitor is sent to sign in first
    for url in ("/models/", f"/models/{version.pk}/", f"/models/{version.pk}/progress/"):
        response = client.get(url)
        assert response.status_code == expected, url
        if persona == "visitor":
            assert response["Location"].startswith("/accounts/login/")
    assert client.post(f"/models/{version.pk}/activate/").status_code == expected
    version.refresh_from_db()
    assert not version.is_active and queue.llen(QUEUE) == 0


def test_the_models_link_is_in_the_navigation_for_staff_only(client):
    client.force_login(make_curator())
    assert 'href="/models/"' not in client.get("/").content.decode()
    client.force_login(make_admin())
    assert 'href="/models/"' in client.get("/").content.decode()


def test_activate_answers_only_post(staff):
    version = make_model_version("v1", active=False)
    assert staff.get(f"/models/{version.pk}/activate/").status_code == 405


# --- side by side ----------------------------------------------------------------------------------


def test_versions_are_compared_side_by_side_with_intervals_per_class_and_the_shortcut_check(staff):
    older = make_model_version("resnet-a", active=True, metrics=metrics(0.912))
    newer = make_model_version(
        "lite-b", active=False, arch="efficientnet_lite0", class_names=("cn", "jp", "kr")
    )
    newer.metrics = metrics(0.875, classes=("cn", "jp", "kr"))
    newer.save()

    response = staff.get("/models/")

    assert response.status_code == 200
    body = response.content.decode()
    # One column per version, newest first, the active one marked.
    assert [v.name for v in response.context["versions"]] == ["lite-b", "resnet-a"]
    assert body.index(">lite-b<") < body.index(">resnet-a<")
    assert body.count('<span class="tag tag-active">active</span>') == 1
    rows = {str(row["label"]): row["cells"] for row in response.context["rows"]}
    assert rows["Test accuracy [Wilson 95%]"] == ["87.5% [77.5, 92.5]", "91.2% [81.2, 96.2]"]
    assert rows["Balanced accuracy"] == ["85.0%", "85.0%"] and rows["Macro-F1"] == ["84.7%", "84.7%"]
    # Classes are data: kr is a row, empty for the version that does not know it.
    assert rows["kr precision / recall / F1"] == ["90.0% / 80.0% / 84.7%", "—"]
    assert rows["Shortcut check: reduced to 224 px, JPEG q75"] == ["62.5% (-25.0)", "66.2% (-25.0)"]
    assert rows["Colour check: balanced accuracy in greyscale"] == ["50.0% (-35.0)", "50.0% (-35.0)"]
    assert rows["Likely mislabelled"] == [7, 7]
    assert "91.2% [81.2, 96.2]" in body and "spring-2026" in body and "efficientnet_lite0" in body
    # Only the inactive version offers "Activate".
    assert f'action="/models/{newer.pk}/activate/"' in body
    assert f'action="/models/{older.pk}/activate/"' not in body


def test_the_page_without_any_version_says_how_to_train_one(staff):
    body = staff.get("/models/").content.decode()
    assert "No model version yet." in body and "manage.py train --freeze" in body


# --- one version ------------------------------------------------------------------------------------


def test_a_versions_page_shows_its_plots_report_and_numbers(staff, media_in_tmp):
    version = make_model_version(
        "v2", active=False, metrics=metrics(0.9, artifacts_dir="models/v2", history=[], checkpoint_epoch=7)
    )
    folder = media_in_tmp / "models" / "v2"
    (folder / "eval").mkdir(parents=True)
    png = image_bytes("PNG", size=(40, 30))
    for name in (
        "loss_accuracy.png",
        "eval/confusion_matrix.png",
        "eval/gradcam_cn.png",
        "eval/wrong_preds.png",
    ):
        (folder / name).write_bytes(png)
    (folder / "eval" / "classification_report.txt").write_text("resnet18 on data/test\naccuracy 90.0% <b>\n")
    (folder / "eval" / "predictions.csv").write_text("file,true,predicted\n")

    response = staff.get(f"/models/{version.pk}/")

    body = response.content.decode()
    for name in (
        "loss_accuracy.png",
        "eval/confusion_matrix.png",
        "eval/gradcam_cn.png",
        "eval/wrong_preds.png",
    ):
        assert f'src="/media/models/v2/{name}"' in body, name
    # Figures that were not written are not shown as broken images.
    assert "tsne.png" not in body and "gradcam_jp.png" not in body
    assert "Grad-CAM, true class cn" in body
    assert '<pre class="report">resnet18 on data/test\naccuracy 90.0% &lt;b&gt;\n</pre>' in body
    assert 'href="/media/models/v2/eval/predictions.csv"' in body
    assert "90.0%" in body and "80.0% – 95.0%" in body and "spring-2026" in body
    assert "reduced to 224 px, JPEG q75" in body
    # The colour check: greyscale accuracy 60.0% (90.0 - 30), recall per class.
    colour = body[body.index('id="colour-heading"') :]
    colour = colour[: colour.index("</section>")]
    assert "60.0%" in colour and "cn recall" in colour and "jp recall" in colour and "0.0%" in colour


def test_a_version_without_artifacts_shows_its_numbers_and_no_plots(staff):
    version = make_model_version("imported", active=False, metrics={"accuracy": 0.8})
    response = staff.get(f"/models/{version.pk}/")
    assert response.status_code == 200
    assert response.context["plots"] == [] and response.context["report"] is None
    assert "80.0%" in response.content.decode()
    assert 'id="colour-heading"' not in response.content.decode()


# --- activate and re-classify ---------------------------------------------------------------------


def test_activate_switches_the_active_version_and_queues_the_gallery_with_visible_progress(
    staff, queue, django_capture_on_commit_callbacks
):
    old = make_model_version("old", active=True)
    new = make_model_version("new", active=False)
    first, second, third = make_painting(), make_painting(), make_painting()
    kept = make_prediction(first, old, label="jp", confidence=0.7)
    already = make_prediction(second, new, label="cn", confidence=0.8)  # classified by new before

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/models/{new.pk}/activate/", follow=True)

    old.refresh_from_db()
    new.refresh_from_db()
    assert new.is_active and not old.is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    # Every painting lacking a prediction by the new version waits for one, queued for the worker.
    waiting = Prediction.objects.filter(model_version=new, status=Status.PENDING)
    assert {p.painting_id for p in waiting} == {first.pk, third.pk}
    assert all(p.queued_at is not None for p in waiting)
    assert sorted(queued_task_args(queue)) == sorted(
        ("classifier.tasks.classify_painting", [p.pk]) for p in waiting
    )
    # Earlier versions' predictions are kept, and the one the new version already made is not redone.
    assert Prediction.objects.get(pk=kept.pk).label == "jp"
    assert Prediction.objects.get(pk=already.pk).status == Status.DONE
    assert Prediction.objects.filter(painting=first).count() == 2

    # The page says so and shows the progress, which it then polls.
    body = response.content.decode()
    assert response.redirect_chain == [(f"/models/{new.pk}/", 302)]
    assert "new is now the active model; 2 painting(s) queued for classification by it." in body
    assert f'data-progress-url="/models/{new.pk}/progress/"' in body
    assert "<strong data-done>1</strong> of <strong data-total>3</strong> paintings classified" in body
    progress = staff.get(f"/models/{new.pk}/progress/").json()
    assert progress == {
        "active": True,
        "total": 3,
        "done": 1,
        "failed": 0,
        "waiting": 2,
        "percent": 33,
        "finished": False,
    }

    # The worker's results move it on, to the end.
    Prediction.objects.filter(pk=waiting[0].pk).update(status=Status.DONE, label="cn")
    Prediction.objects.filter(model_version=new, status=Status.PENDING).update(status=Status.FAILED)
    progress = staff.get(f"/models/{new.pk}/progress/").json()
    assert (progress["done"], progress["failed"], progress["finished"], progress["percent"]) == (
        2,
        1,
        True,
        100,
    )
    listing = staff.get("/models/").content.decode()
    assert "Every painting has a prediction by this version." in listing

    # A painting's page still shows the earlier version's prediction in its history.
    history = staff.get(f"/paintings/{first.pk}/").content.decode()
    assert "old" in history and "jp" in history


def test_activating_the_active_version_again_queues_only_what_is_missing(
    staff, queue, django_capture_on_commit_callbacks
):
    version = make_model_version("v1", active=True)
    done = make_painting()
    make_prediction(done, version)
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/models/{version.pk}/activate/")
    assert queue.llen(QUEUE) == 0
    assert Prediction.objects.filter(model_version=version).count() == 1
