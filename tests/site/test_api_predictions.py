"""/api/predictions/ and /api/model-versions/: read-only views of what the worker wrote and which
models exist."""

import pytest
from django.urls import reverse

from classifier.models import Prediction, Status

from .factory import make_model_version, make_painting, make_prediction, make_user

pytestmark = pytest.mark.django_db

PREDICTIONS = reverse("prediction-list")
VERSIONS = reverse("modelversion-list")


def ids(response) -> set[int]:
    return {p["id"] for p in response.json()["results"]}


@pytest.fixture
def two_versions_three_paintings():
    old = make_model_version("v1")
    new = make_model_version("v2")
    a, b, c = make_painting(), make_painting(), make_painting()
    return {
        "old": old,
        "new": new,
        "a": a,
        "a_old": make_prediction(a, old, label="jp"),
        "a_new": make_prediction(a, new, label="cn"),
        "b_new": Prediction.objects.create(painting=b, model_version=new, status=Status.FAILED, error="bad"),
        "c_new": Prediction.objects.create(painting=c, model_version=new),
    }


def test_predictions_are_filtered_by_painting_model_version_and_status(client, two_versions_three_paintings):
    w = two_versions_three_paintings
    assert ids(client.get(PREDICTIONS, {"painting": w["a"].pk})) == {w["a_old"].pk, w["a_new"].pk}
    assert ids(client.get(PREDICTIONS, {"model_version": w["old"].pk})) == {w["a_old"].pk}
    assert ids(client.get(PREDICTIONS, {"status": "failed"})) == {w["b_new"].pk}
    both = client.get(PREDICTIONS, {"painting": w["a"].pk, "model_version": w["new"].pk})
    assert ids(both) == {w["a_new"].pk}
    assert client.get(PREDICTIONS).json()["count"] == 4


def test_a_malformed_prediction_filter_is_ignored_not_an_error(client, two_versions_three_paintings):
    response = client.get(PREDICTIONS, {"painting": "abc", "model_version": "1.5"})
    assert response.status_code == 200 and response.json()["count"] == 4


def test_one_prediction_shows_its_painting_and_probabilities_but_not_its_embedding(client):
    version = make_model_version("v1", class_names=("cn", "jp", "kr"))
    prediction = make_prediction(make_painting(), version, label="kr", confidence=0.7, embedding=b"\0" * 16)
    body = client.get(reverse("prediction-detail", args=[prediction.pk])).json()
    assert body["painting"] == prediction.painting_id and body["model_version"] == version.pk
    assert body["label"] == "kr" and body["probabilities"] == pytest.approx(
        {"kr": 0.7, "cn": 0.15, "jp": 0.15}
    )
    assert body["gradcam"] is None
    assert "embedding" not in body


@pytest.mark.parametrize("url", [PREDICTIONS, VERSIONS])
def test_predictions_and_model_versions_cannot_be_written_over_the_api(url, client):
    client.force_login(make_user())
    assert client.post(url, {"label": "cn", "name": "v9"}).status_code == 405


def test_model_versions_list_their_classes_and_which_is_active_without_the_checkpoint(client):
    make_model_version("v1", metrics={"accuracy": 0.81})
    active = make_model_version("v2", class_names=("cn", "jp", "kr"), metrics={"accuracy": 0.86})
    results = client.get(VERSIONS).json()["results"]
    assert [v["name"] for v in results] == ["v2", "v1"]
    newest = results[0]
    assert newest == {
        "id": active.pk,
        "name": "v2",
        "arch": "resnet18",
        "class_names": ["cn", "jp", "kr"],
        "metrics": {"accuracy": 0.86},
        "created": newest["created"],
        "is_active": True,
    }
    assert results[1]["is_active"] is False


def test_the_checkpoint_is_not_offered_even_to_a_logged_in_user(client):
    version = make_model_version("v1")
    client.force_login(make_user())
    body = client.get(reverse("modelversion-detail", args=[version.pk])).content.decode()
    assert "checkpoint" not in body and version.checkpoint.name not in body
