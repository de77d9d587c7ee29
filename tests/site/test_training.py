"""Training model versions: classifier.services (materialize, train, evaluate, mislabel scores), the
``train`` and ``evaluate`` commands, the admin's "Train a new model" form and its live run page, and
end to end through the admin with a real Celery worker consuming the ``training`` and ``celery``
queues.

The gallery is GENERATED: two colour classes (``cn`` reddish, ``jp`` bluish noise with a few dark
strokes, as tests/ml/conftest.py's synthetic images), 12 paintings each, uploaded through
gallery.uploads.save_painting, plus one reddish painting deliberately labelled ``jp``. Trainings run
for 2 epochs at 64 px on the CPU. Dataset versions are frozen with gallery.datasets.freeze (through
``--freeze`` and the admin form); the error cases build theirs row by row with ``dataset_version()``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from PIL import Image

from classifier.models import ModelVersion, Prediction, Status, TrainingRun
from classifier.services import materialize
from gallery.models import DatasetItem, DatasetVersion, Painting
from gallery.uploads import save_painting

from .factory import make_admin, make_curator, make_painting, make_user
from .test_commands import write_checkpoint
from .test_sweep import queued_task_args, redis_queue
from .test_worker_e2e import running_worker

pytestmark = pytest.mark.django_db

TRAINING_REDIS_DB = 9  # flushed by these tests
WORKER_REDIS_DB = 8  # flushed by the real-worker test
PER_CLASS = 12
SMALL = ["--epochs", "2", "--image-size", "64", "--batch-size", "8", "--device", "cpu"]
ARTIFACTS = [
    "best.pt",
    "history.json",
    "config.json",
    "loss_accuracy.png",
    "eval/metrics.json",
    "eval/classification_report.txt",
    "eval/predictions.csv",
    "eval/confusion_matrix.png",
    "eval/tsne.png",
    "eval/gradcam_cn.png",
    "eval/gradcam_jp.png",
    "eval/correct_preds.png",
    "eval/wrong_preds.png",
]


def colour_jpeg(kind: str, seed: int, size: tuple[int, int] = (96, 96)) -> bytes:
    """Reddish (``warm``) or bluish (``cool``) noise with a few dark strokes."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.array([200, 70, 50] if kind == "warm" else [50, 80, 200], dtype=np.float32)
    pixels = base + rng.normal(0, 35, size=(h, w, 3))
    for _ in range(3):
        y = int(rng.integers(0, h))
        pixels[y : y + 4, :, :] *= 0.4
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_gallery(per_class: int = PER_CLASS) -> Painting:
    """Paintings labelled cn (warm) and jp (cool), and one warm painting labelled jp: returned."""
    for i in range(per_class):
        save_painting(colour_jpeg("warm", 100 + i), f"cn-{i}.jpg", label="cn")
        save_painting(colour_jpeg("cool", 200 + i), f"jp-{i}.jpg", label="jp")
    wrong, _ = save_painting(colour_jpeg("warm", 999), "mislabelled.jpg", label="jp")
    return wrong


def dataset_version(rows: list[tuple[Painting, str, str]], name: str = "crafted") -> DatasetVersion:
    """A dataset version written row by row (painting, label, split), for the cases freeze refuses to
    make (one class, an empty split)."""
    version = DatasetVersion.objects.create(name=name)
    DatasetItem.objects.bulk_create(
        [
            DatasetItem(dataset_version=version, painting=p, label=label, split=split)
            for p, label, split in rows
        ]
    )
    return version


def imported_version(media: Path, **kw) -> ModelVersion:
    """A version registered from an untrained checkpoint (as import_model does): no run folder."""
    media.mkdir(parents=True, exist_ok=True)
    write_checkpoint(media / "untrained.pt", ("cn", "jp"), image_size=64)
    version = ModelVersion(name="imported", arch="resnet18", class_names=["cn", "jp"], **kw)
    version.checkpoint.name = "untrained.pt"
    version.save()
    return version


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def queue():
    with redis_queue(TRAINING_REDIS_DB) as client:
        yield client


# --- materialize ----------------------------------------------------------------------------------


def test_materialize_lays_the_frozen_labels_and_splits_out_as_hard_links(tmp_path):
    a, b, c = make_painting(label="cn"), make_painting(label="cn"), make_painting(label="jp")
    version = dataset_version([(a, "cn", "train"), (b, "kr", "val"), (c, "jp", "test")])
    Painting.objects.filter(pk=b.pk).update(label="jp")  # relabelled after freezing: the version wins

    layout = materialize(version, tmp_path / "data")

    expected = {
        tmp_path / "data" / "train" / "cn" / f"{a.pk}.jpg": a,
        tmp_path / "data" / "val" / "kr" / f"{b.pk}.jpg": b,
        tmp_path / "data" / "test" / "jp" / f"{c.pk}.jpg": c,
    }
    assert sorted(p for p in (tmp_path / "data").rglob("*") if p.is_file()) == sorted(expected)
    for path, painting in expected.items():
        assert path.stat().st_ino == Path(painting.image.path).stat().st_ino  # a link, not a copy
    assert layout.counts == {"train": {"cn": 1}, "val": {"kr": 1}, "test": {"jp": 1}}
    assert layout.skipped == []


def test_materialize_lists_every_item_it_leaves_out_with_the_reason(tmp_path):
    kept, missing, unassigned = make_painting(), make_painting(), make_painting()
    Path(missing.image.path).unlink()
    version = dataset_version(
        [(kept, "cn", "train"), (missing, "cn", "train"), (unassigned, "jp", "unassigned")]
    )

    layout = materialize(version, tmp_path / "data")

    assert list(layout.paths) == [kept.pk]
    assert len(layout.skipped) == 2
    assert any(f"painting {missing.pk}" in s and "missing" in s for s in layout.skipped)
    assert any(f"painting {unassigned.pk}" in s and "'unassigned'" in s for s in layout.skipped)


# --- manage.py train ------------------------------------------------------------------------------


def test_train_freeze_activate_registers_an_evaluated_active_version_with_every_artifact(
    queue, media_in_tmp, django_capture_on_commit_callbacks
):
    wrong = make_gallery()
    old = ModelVersion.objects.create(name="old", arch="resnet18", class_names=["cn", "jp"], is_active=True)

    with django_capture_on_commit_callbacks(execute=True):
        output = run(
            "train", "--freeze", "--activate", "--val", "0.25", "--test", "0.25", "--name", "small", *SMALL
        )

    frozen = DatasetVersion.objects.get()
    version = ModelVersion.objects.get(name="small")
    old.refresh_from_db()
    assert version.is_active and not old.is_active
    assert version.arch == "resnet18" and version.class_names == ["cn", "jp"]

    # Metrics: the evaluation on the frozen version's test split, and what training added.
    m = version.metrics
    test_items = frozen.items.filter(split="test")
    assert m["dataset_version"] == frozen.pk and m["n"] == test_items.count() > 0
    assert 0 <= m["accuracy_ci95"][0] <= m["accuracy"] <= m["accuracy_ci95"][1] <= 1
    assert (
        set(m["per_class"]) == {"cn", "jp"} and 0 <= m["macro_f1"] <= 1 and 0 <= m["balanced_accuracy"] <= 1
    )
    assert set(m["shortcut_check"]) == {"as_delivered", "reduced_224_jpeg75", "upscaled_640_sharpened"}
    assert set(m["colour_check"]) == {"as_delivered", "greyscale"}
    assert [row["epoch"] for row in m["history"]] == [1, 2]
    assert m["artifacts_dir"] == "models/small" and m["left_out"] == []

    # Every artifact of the study, kept in the run folder under MEDIA_ROOT; the checkpoint is its best.pt.
    folder = media_in_tmp / "models" / "small"
    assert [name for name in ARTIFACTS if not (folder / name).is_file()] == []
    assert Path(version.checkpoint.path) == folder / "best.pt"
    assert not (folder / "last.pt").exists() and not list((media_in_tmp / "tmp").iterdir())
    assert json.loads((folder / "eval" / "metrics.json").read_text())["accuracy"] == m["accuracy"]
    with (folder / "eval" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    # Files are named split/class/<painting id>: each row traces back to a painting of the test split.
    expected = {f"test/{item.label}/{item.painting_id}.jpg" for item in test_items}
    assert {row["file"] for row in rows} == expected

    # The run is recorded like one from the admin.
    training = TrainingRun.objects.get()
    assert (training.state, training.epoch, training.model_version) == ("done", 2, version)
    assert [row["epoch"] for row in training.history] == [1, 2]

    # Confident learning: every painting of the version is scored; the warm painting labelled jp first.
    scores = dict(Painting.objects.values_list("pk", "mislabel_score"))
    assert all(0 <= s <= 1 for s in scores.values()) and len(scores) == frozen.items.count()
    assert max(scores, key=scores.get) == wrong.pk and scores[wrong.pk] > 0.5
    assert m["mislabel"]["k"] == 5 and m["mislabel"]["n"] == len(scores) and m["mislabel"]["flagged"] >= 1

    # Activated: every painting waits for a prediction by the new version, queued for the worker.
    predictions = Prediction.objects.filter(model_version=version)
    assert predictions.count() == Painting.objects.count()
    assert all(p.status == Status.PENDING and p.queued_at is not None for p in predictions)
    assert sorted(queued_task_args(queue)) == sorted(
        ("classifier.tasks.classify_painting", [p.pk]) for p in predictions
    )

    # Progress in the terminal: ml's per-epoch lines and the summary.
    assert re.search(r"epoch 2/2 +train loss", output)
    assert f"froze dataset version {frozen.name}" in output
    assert "test accuracy" in output and "active: yes" in output


def test_evaluate_scores_a_version_again_and_rewrites_its_metrics_and_artifacts(media_in_tmp):
    paintings = [make_painting(label="cn") for _ in range(3)] + [make_painting(label="jp") for _ in range(3)]
    frozen = dataset_version([(p, p.label, "test") for p in paintings])
    version = imported_version(media_in_tmp, metrics={"accuracy": 0.99})

    output = run("evaluate", "imported", "--dataset-version", str(frozen.pk))

    version.refresh_from_db()
    m = version.metrics
    assert m["n"] == 6 and m["accuracy"] != 0.99 and m["dataset_version"] == frozen.pk
    assert m["artifacts_dir"] == "models/imported"
    folder = media_in_tmp / "models" / "imported" / "eval"
    for name in (
        "metrics.json",
        "classification_report.txt",
        "predictions.csv",
        "confusion_matrix.png",
        "tsne.png",
    ):
        assert (folder / name).is_file(), name
    assert (
        json.loads((folder / "metrics.json").read_text())["data"]
        == f"dataset version crafted (id {frozen.pk})"
    )
    assert "imported on crafted: test accuracy" in output

    # Again, by id, on the version it now remembers.
    (folder / "tsne.png").unlink()
    run("evaluate", str(version.pk))
    assert (folder / "tsne.png").is_file()


def test_evaluate_refuses_a_version_with_no_dataset_version_and_classes_it_does_not_know(media_in_tmp):
    imported_version(media_in_tmp)
    with pytest.raises(CommandError, match="--dataset-version ID"):
        run("evaluate", "imported")
    kr = dataset_version([(make_painting(), "kr", "test"), (make_painting(), "cn", "test")])
    with pytest.raises(CommandError, match="kr that imported does not know"):
        run("evaluate", "imported", "--dataset-version", str(kr.pk))
    with pytest.raises(CommandError, match="no model version 'nothing'"):
        run("evaluate", "nothing")


def test_train_without_any_dataset_version_says_how_to_freeze_one():
    with pytest.raises(CommandError, match="no dataset version yet: freeze the curated set with --freeze"):
        run("train", *SMALL)
    with pytest.raises(CommandError, match="no dataset version with id 12345"):
        run("train", "--dataset-version", "12345", *SMALL)
    assert not TrainingRun.objects.exists()


def test_train_refuses_a_single_class_and_an_empty_split_before_training():
    a, b, c = make_painting(), make_painting(), make_painting()
    one_class = dataset_version([(a, "cn", "train"), (b, "cn", "val"), (c, "cn", "test")], "one-class")
    with pytest.raises(CommandError, match="has 1 class \\(cn\\); a classifier needs at least 2"):
        run("train", "--dataset-version", str(one_class.pk), *SMALL)
    no_test = dataset_version([(a, "cn", "train"), (b, "jp", "train"), (c, "jp", "val")], "no-test")
    with pytest.raises(CommandError, match="the test split of dataset version 'no-test' is empty"):
        run("train", "--dataset-version", str(no_test.pk), *SMALL)
    no_train_jp = dataset_version([(a, "cn", "train"), (b, "jp", "val"), (c, "jp", "test")], "no-jp")
    with pytest.raises(
        CommandError, match="train split of dataset version 'no-jp' has no painting of class jp"
    ):
        run("train", "--dataset-version", str(no_train_jp.pk), *SMALL)
    assert not TrainingRun.objects.exists() and not ModelVersion.objects.exists()


def test_train_freeze_passes_on_why_freezing_refused():
    make_painting(label="cn")
    with pytest.raises(CommandError, match="a dataset needs at least two"):
        run("train", "--freeze", *SMALL)
    assert not DatasetVersion.objects.exists()


def test_train_refuses_a_taken_name_and_unknown_weights():
    ModelVersion.objects.create(name="taken", arch="resnet18", class_names=["cn", "jp"])
    with pytest.raises(CommandError, match="a model version named 'taken' exists"):
        run("train", "--name", "taken", *SMALL)
    with pytest.raises(CommandError, match="weights: no such file"):
        run("train", "--weights", "/nowhere/weights.pt", *SMALL)


# --- the admin: "Train a new model" and the run's page --------------------------------------------

TRAIN_URL = "/admin/classifier/modelversion/train/"


def form_data(**overrides) -> dict:
    data = {
        "dataset_version": "",
        "dataset_name": "",
        "val": "0.25",
        "test": "0.25",
        "arch": "resnet18",
        "weights": "none",
        "epochs": "2",
        "preset": "robust",
        "image_size": "64",
        "batch_size": "8",
        "seed": "0",
        "name": "",
    }
    return {**data, **overrides}


def test_the_model_versions_changelist_offers_train_a_new_model(client):
    client.force_login(make_admin())
    body = client.get("/admin/classifier/modelversion/").content.decode()
    assert f'href="{TRAIN_URL}"' in body and "Train a new model" in body


def test_the_train_form_freezes_records_the_run_and_queues_it_on_the_training_queue(
    client, queue, django_capture_on_commit_callbacks
):
    make_gallery(per_class=4)
    admin = make_admin()
    client.force_login(admin)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(TRAIN_URL, form_data(dataset_name="spring", name="from-form", activate="on"))

    run_ = TrainingRun.objects.get()
    assert (
        response.status_code == 302
        and response["Location"] == f"/admin/classifier/trainingrun/{run_.pk}/change/"
    )
    assert run_.state == "queued" and run_.requested_by == admin
    assert run_.dataset_version.name == "spring" and run_.dataset_version.items.count() == 9
    assert run_.options["name"] == "from-form" and run_.options["epochs"] == 2 and run_.options["activate"]
    assert queue.llen("training") == 1 and queue.llen("celery") == 0
    assert queued_task_args_of(queue, "training") == [("classifier.tasks.train_model", [run_.pk])]


def queued_task_args_of(client, key: str) -> list[tuple[str, list]]:
    import base64

    out = []
    for raw in client.lrange(key, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


def test_the_train_form_shows_why_it_cannot_train_and_queues_nothing(client, queue):
    client.force_login(make_admin())
    a, b = make_painting(), make_painting()
    one_class = dataset_version([(a, "cn", "train"), (b, "cn", "test")], "one-class")

    refused = client.post(TRAIN_URL, form_data(dataset_version=str(one_class.pk)))
    assert refused.status_code == 200
    assert "a classifier needs at least 2 classes" in refused.content.decode()

    nothing_labelled = client.post(TRAIN_URL, form_data())  # freeze now, with no curated label
    assert nothing_labelled.status_code == 200
    assert "a dataset needs at least two" in nothing_labelled.content.decode()

    bad = client.post(TRAIN_URL, form_data(epochs="0", arch="vgg"))
    assert bad.status_code == 200 and bad.context["form"].errors.keys() >= {"epochs", "arch"}

    assert not TrainingRun.objects.exists() and not DatasetVersion.objects.exclude(pk=one_class.pk).exists()
    assert queue.llen("training") == 0


@pytest.mark.parametrize("persona", ["visitor", "contributor", "curator"])
def test_only_staff_reach_the_train_form(client, persona):
    if persona == "contributor":
        client.force_login(make_user())
    elif persona == "curator":
        client.force_login(make_curator())
    response = client.get(TRAIN_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.post(TRAIN_URL, form_data()).status_code == 302
    assert not TrainingRun.objects.exists()


def test_a_running_trainings_page_refreshes_itself_and_shows_each_epoch(client):
    client.force_login(make_admin())
    history = [
        {
            "epoch": 1,
            "train_loss": 0.6931,
            "val_loss": 0.6012,
            "val_accuracy": 0.5,
            "val_balanced_accuracy": 0.5,
        },
        {
            "epoch": 2,
            "train_loss": 0.4120,
            "val_loss": 0.3507,
            "val_accuracy": 0.875,
            "val_balanced_accuracy": 0.8,
        },
    ]
    run_ = TrainingRun.objects.create(
        state="running", epoch=2, history=history, options={"epochs": 10}, message="epoch 2/10: ..."
    )

    body = client.get(f"/admin/classifier/trainingrun/{run_.pk}/change/").content.decode()

    assert '<meta http-equiv="refresh" content="3">' in body
    assert re.search(r'class="run-epoch">2 / 10<', body)
    assert "0.6931" in body and "0.3507" in body and "88%" in body  # train loss, val loss, val accuracy
    assert "epoch 2/10: ..." in body


def test_a_finished_trainings_page_links_its_model_version_and_a_failed_one_shows_the_error(client):
    client.force_login(make_admin())
    version = ModelVersion.objects.create(name="result", arch="resnet18", class_names=["cn", "jp"])
    done = TrainingRun.objects.create(state="done", epoch=2, options={"epochs": 2}, model_version=version)
    failed = TrainingRun.objects.create(
        state="failed", options={"epochs": 2}, error="the test split is empty"
    )

    body = client.get(f"/admin/classifier/trainingrun/{done.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' not in body
    assert f'href="/models/{version.pk}/"' in body and "Model version result" in body

    body = client.get(f"/admin/classifier/trainingrun/{failed.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' not in body
    assert '<pre class="run-error"' in body and "the test split is empty" in body


# --- end to end: the admin, a real worker, the models page, the gallery ---------------------------

WORKER_TIMEOUT_S = 150  # torch import, 2 epochs, evaluation with Grad-CAM and t-SNE, on 2 busy cores


def wait_for(what: str, done, worker: subprocess.Popen, timeout: float = WORKER_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while True:
        value = done()
        if value:
            return value
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with status {worker.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.5)


@pytest.mark.django_db(transaction=True)
def test_a_model_trained_from_the_admin_by_a_real_worker_is_activated_and_classifies_the_gallery(
    client, tmp_path, media_in_tmp
):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process must reach the test database: run with DATABASE_URL=postgres://...")
    make_gallery()
    client.force_login(make_admin())
    log_path = tmp_path / "worker.log"
    with running_worker(WORKER_REDIS_DB, media_in_tmp, log_path, queues="celery,training") as worker:
        response = client.post(
            TRAIN_URL, form_data(dataset_name="e2e-set", name="from-admin", preset="study")
        )
        assert response.status_code == 302, response.content.decode()[-2000:]
        run_ = TrainingRun.objects.get()
        page = f"/admin/classifier/trainingrun/{run_.pk}/change/"

        def finished():
            run_.refresh_from_db()
            return run_.state in ("done", "failed")

        wait_for("finished training run", finished, worker)
        assert run_.state == "done", run_.error
        version = run_.model_version
        assert version.name == "from-admin" and not version.is_active
        assert (media_in_tmp / "models" / "from-admin" / "eval" / "confusion_matrix.png").is_file()
        body = client.get(page).content.decode()
        assert f'href="/models/{version.pk}/"' in body and 'http-equiv="refresh"' not in body
        assert body.count("<tr>") >= 3  # the history table's header and its two epochs

        # Activate from /models/: the worker classifies every painting with the new version.
        response = client.post(f"/models/{version.pk}/activate/")
        assert response.status_code == 302
        version.refresh_from_db()
        assert version.is_active

        def all_classified():
            progress = client.get(f"/models/{version.pk}/progress/").json()
            return progress if progress["finished"] else None

        progress = wait_for("classified gallery", all_classified, worker)
        assert progress["done"] == progress["total"] == Painting.objects.count() and progress["failed"] == 0

        gallery = client.get("/").content.decode()
        assert gallery.count('class="tag tag-pred"') == 24  # the first page, every card predicted
        assert "waiting" not in gallery and "Predictions by model from-admin" in gallery
