"""A painting's page and the status endpoint its script polls."""

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from classifier.models import Prediction, Status

from .factory import image_bytes, make_model_version, make_painting, make_prediction, make_user

pytestmark = pytest.mark.django_db


def detail(client, painting):
    return client.get(reverse("gallery:detail", args=[painting.pk]))


def status_of(client, painting) -> dict:
    response = client.get(reverse("gallery:status", args=[painting.pk]))
    assert response.status_code == 200
    return response.json()


def embedding(*values: float) -> bytes:
    return np.array(values, dtype=np.float32).tobytes()


def test_it_shows_the_image_and_the_metadata(client):
    uploader = make_user("hana")
    painting = make_painting(
        title="Early Spring",
        artist="Guo Xi",
        period="Northern Song",
        source="National Palace Museum",
        license="Public domain",
        uploaded_by=uploader,
        label="cn",
        split="train",
    )

    response = detail(client, painting)
    body = response.content.decode()

    assert response.status_code == 200
    assert f'src="{painting.image.url}"' in body
    for text in (
        "Early Spring",
        "Guo Xi",
        "Northern Song",
        "National Palace Museum",
        "Public domain",
        "hana",
    ):
        assert text in body
    assert "80 × 80 px" in body
    assert f'<code title="{painting.sha256}">{painting.sha256[:12]}</code>' in body
    assert ">train<" in body


def test_probabilities_are_bars_sorted_from_the_most_likely(client):
    version = make_model_version(class_names=("cn", "jp", "kr"))
    painting = make_painting()
    prediction = make_prediction(painting, version, label="jp", confidence=0.7)
    prediction.probabilities = {"cn": 0.1, "jp": 0.7, "kr": 0.2}
    prediction.save()

    body = detail(client, painting).content.decode()

    names = [body.index(f'<span class="bar-name">{name}</span>') for name in ("jp", "kr", "cn")]
    assert names == sorted(names)
    assert (
        'style="width: 70.0%"' in body and 'style="width: 20.0%"' in body and 'style="width: 10.0%"' in body
    )


def test_the_gradcam_overlay_sits_on_the_image_with_an_opacity_slider(client):
    version = make_model_version()
    painting = make_painting()
    prediction = make_prediction(painting, version)
    prediction.gradcam.save("cam.jpg", ContentFile(image_bytes(size=(80, 80))), save=True)

    body = detail(client, painting).content.decode()

    assert f'class="overlay" id="overlay" src="{prediction.gradcam.url}"' in body
    assert 'type="range" id="overlay-opacity"' in body and 'data-overlay="overlay"' in body


def test_without_an_overlay_there_is_no_slider(client):
    painting = make_painting()
    make_prediction(painting, make_model_version())

    body = detail(client, painting).content.decode()

    assert 'id="overlay"' not in body and 'type="range"' not in body


def test_the_history_lists_the_predictions_of_every_model_version(client):
    old = make_model_version("colour-baseline", active=False)
    new = make_model_version("resnet18-v2", active=True)
    painting = make_painting()
    make_prediction(painting, old, label="jp", confidence=0.61)
    make_prediction(painting, new, label="cn", confidence=0.93)

    body = detail(client, painting).content.decode()
    history = body[body.index('class="history"') :]

    assert history.index("resnet18-v2") < history.index("colour-baseline")
    assert "61.0%" in history and "93.0%" in history
    assert history.count("tag-active") == 1


def test_a_failed_prediction_shows_its_reason(client):
    painting = make_painting()
    Prediction.objects.create(
        painting=painting,
        model_version=make_model_version(),
        status=Status.FAILED,
        error="image file is truncated",
    )

    body = detail(client, painting).content.decode()

    assert "image file is truncated" in body
    assert "data-status-url" not in body


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING])
def test_an_unfinished_prediction_makes_the_page_poll_its_status(client, status):
    painting = make_painting()
    Prediction.objects.create(painting=painting, model_version=make_model_version(), status=status)

    body = detail(client, painting).content.decode()

    assert f'data-status-url="{reverse("gallery:status", args=[painting.pk])}"' in body
    assert "updates by itself" in body


def test_a_finished_prediction_does_not_poll(client):
    painting = make_painting()
    make_prediction(painting, make_model_version())

    assert "data-status-url" not in detail(client, painting).content.decode()


def test_without_an_active_model_the_page_says_the_painting_waits(client):
    painting = make_painting()

    body = detail(client, painting).content.decode()

    assert "will be classified once a model is activated" in body
    assert "No model is active" in body  # the banner


def test_similar_works_are_the_nearest_by_embedding(client):
    version = make_model_version()
    me = make_painting(title="me")
    near = make_painting(title="near")
    far = make_painting(title="far")
    other_version = make_painting(title="other version")
    make_prediction(me, version, embedding=embedding(1, 0, 0))
    make_prediction(near, version, embedding=embedding(0.9, 0.1, 0))
    make_prediction(far, version, embedding=embedding(0, 0, 1))
    make_prediction(other_version, make_model_version("v0", active=False), embedding=embedding(1, 0, 0))

    response = detail(client, me)

    similar = [(p.title, round(s, 2)) for p, s in response.context["similar"]]
    assert similar == [("near", 0.99), ("far", 0.0)]
    body = response.content.decode()
    section = body[body.index('id="similar-heading"') :]
    assert section.index(near.get_absolute_url()) < section.index(far.get_absolute_url())
    assert "similarity 0.99" in section


def test_an_unknown_painting_is_404(client):
    response = client.get(reverse("gallery:detail", args=[999_999]))
    assert response.status_code == 404
    assert "Back to the gallery" in response.content.decode()
    assert client.get(reverse("gallery:status", args=[999_999])).status_code == 404


def test_status_of_a_finished_prediction(client):
    painting = make_painting()
    prediction = make_prediction(painting, make_model_version(), label="jp", confidence=0.8)
    prediction.finished_at = prediction.created
    prediction.save()

    assert status_of(client, painting) == {
        "status": "done",
        "label": "jp",
        "confidence": 0.8,
        "finished": prediction.created.isoformat(),
    }


def test_status_of_a_pending_prediction(client):
    painting = make_painting()
    Prediction.objects.create(painting=painting, model_version=make_model_version(), status=Status.PENDING)

    assert status_of(client, painting) == {
        "status": "pending",
        "label": None,
        "confidence": None,
        "finished": None,
    }


def test_status_is_none_without_a_prediction_by_the_active_model(client):
    painting = make_painting()
    make_prediction(painting, make_model_version("old", active=False))

    assert status_of(client, painting)["status"] == "none"
    make_model_version("new", active=True)
    assert status_of(client, painting)["status"] == "none"
