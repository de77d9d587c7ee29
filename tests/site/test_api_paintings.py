"""/api/paintings/: browsing with the gallery's filters, one painting, and uploads through the same
path as the upload page (same checks, same refusals, nothing half-written)."""

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from classifier.models import Prediction, Status
from gallery.models import Painting

from .factory import image_bytes, make_model_version, make_painting, make_prediction, make_user
from .test_uploads import REFUSED, _files

pytestmark = pytest.mark.django_db

LIST = reverse("painting-list")


def detail(pk: int) -> str:
    return reverse("painting-detail", args=[pk])


@pytest.fixture(autouse=True)
def fresh_throttle():
    """Throttle counts live in the cache; each test starts with none."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def contributor_client(client):
    client.force_login(make_user())
    return client


def upload(client, data: bytes, name: str = "scan.jpg", **fields):
    return client.post(LIST, {"image": SimpleUploadedFile(name, data), **fields})


def ids(response) -> list[int]:
    return [p["id"] for p in response.json()["results"]]


# Browsing


def test_the_list_is_paginated_newest_first(client):
    paintings = [make_painting() for _ in range(25)]
    first = client.get(LIST).json()
    assert first["count"] == 25 and len(first["results"]) == 24 and first["previous"] is None
    assert first["results"][0]["id"] == paintings[-1].pk
    second = client.get(first["next"]).json()
    assert [p["id"] for p in second["results"]] == [paintings[0].pk] and second["next"] is None


def test_the_list_takes_the_gallery_pages_filters(client):
    version = make_model_version("v1")
    agree = make_painting(title="Mountain stream", artist="Sesshu", label="jp")
    disagree = make_painting(title="Autumn hills", label="cn")
    unsure = make_painting(title="Misty river")
    waiting = make_painting(title="Pines")
    make_prediction(agree, version, label="jp", confidence=0.95)
    make_prediction(disagree, version, label="jp", confidence=0.85)
    make_prediction(unsure, version, label="cn", confidence=0.55)

    assert ids(client.get(LIST, {"q": "sesshu"})) == [agree.pk]
    assert set(ids(client.get(LIST, {"predicted": "jp"}))) == {agree.pk, disagree.pk}
    assert ids(client.get(LIST, {"label": "cn"})) == [disagree.pk]
    assert ids(client.get(LIST, {"agreement": "disagree"})) == [disagree.pk]
    assert ids(client.get(LIST, {"status": "none"})) == [waiting.pk]
    assert set(ids(client.get(LIST, {"min_conf": "80"}))) == {agree.pk, disagree.pk}
    assert ids(client.get(LIST, {"max_conf": "0.6"})) == [unsure.pk]
    assert ids(client.get(LIST, {"sort": "-confidence"})) == [agree.pk, disagree.pk, unsure.pk, waiting.pk]


def test_malformed_filters_are_ignored_like_on_the_page(client):
    painting = make_painting()
    response = client.get(LIST, {"min_conf": "lots", "sort": "sideways"})
    assert response.status_code == 200 and ids(response) == [painting.pk]


def test_listing_a_full_page_costs_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    version = make_model_version("v1")
    for i in range(24):
        make_prediction(make_painting(), version, label="cn" if i % 2 else "jp")
    # active model, count, page, predictions: the same for 1 painting or 24
    with django_assert_max_num_queries(4):
        results = client.get(LIST).json()["results"]
    assert len(results) == 24 and all(p["prediction"]["model_version"] == version.pk for p in results)


def test_one_painting_shows_the_active_models_prediction_with_absolute_urls(client):
    old = make_model_version("v1")
    painting = make_painting(artist="Guo Xi")
    make_prediction(painting, old, label="jp", confidence=0.6)
    active = make_model_version("v2", class_names=("cn", "jp", "kr"))
    prediction = make_prediction(painting, active, label="cn", confidence=0.8, gradcam="gradcam/x.png")

    body = client.get(detail(painting.pk)).json()

    assert body["artist"] == "Guo Xi"
    assert body["url"] == f"http://testserver/paintings/{painting.pk}/"
    assert body["image"] == f"http://testserver{painting.image.url}"
    assert body["thumbnail"] == f"http://testserver{painting.thumbnail.url}"
    assert body["prediction"] == {
        "id": prediction.pk,
        "status": "done",
        "label": "cn",
        "confidence": 0.8,
        "probabilities": prediction.probabilities,
        "gradcam": "http://testserver/media/gradcam/x.png",
        "error": "",
        "model_version": active.pk,
    }


def test_a_painting_without_a_prediction_by_the_active_model_has_none(client):
    painting = make_painting()
    make_prediction(painting, make_model_version("v1", active=False))
    body = client.get(detail(painting.pk)).json()
    assert body["prediction"] is None


def test_a_missing_painting_is_404(client):
    assert client.get(detail(999_999)).status_code == 404


# Uploads


def test_an_upload_creates_a_painting_then_the_same_file_answers_the_existing_one(
    contributor_client, media_in_tmp
):
    version = make_model_version("v1")
    data = image_bytes("PNG", seed=21)

    first = upload(contributor_client, data, "river.png", title="River", artist="Ma Yuan", license="PD")
    assert first.status_code == 201, first.content
    body = first.json()
    painting = Painting.objects.get()
    assert body["id"] == painting.pk and body["title"] == "River" and body["artist"] == "Ma Yuan"
    assert (painting.uploaded_by.username, painting.license, painting.format) == ("contributor", "PD", "PNG")
    assert painting.image.read() == data
    assert body["prediction"]["status"] == Status.PENDING
    assert body["prediction"]["model_version"] == version.pk
    files = _files(media_in_tmp)

    again = upload(contributor_client, data, "copy.png", title="Another title")
    assert again.status_code == 200 and again.json()["id"] == painting.pk
    assert again.json()["title"] == "River"
    assert Painting.objects.count() == 1 and Prediction.objects.count() == 1
    assert _files(media_in_tmp) == files


def test_an_upload_without_a_title_is_named_after_its_file(contributor_client):
    response = upload(contributor_client, image_bytes(seed=22), "misty_peaks.jpg")
    assert response.status_code == 201 and response.json()["title"] == "misty peaks"


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_refused_upload_says_why_and_writes_nothing(name, contributor_client, media_in_tmp):
    data, words = REFUSED[name]
    response = upload(contributor_client, data, "upload.jpg")
    assert response.status_code == 400
    messages = response.json()["image"]
    assert isinstance(messages, list) and words in " ".join(messages)
    assert Painting.objects.count() == 0 and _files(media_in_tmp) == []


def test_an_upload_without_a_file_is_refused(contributor_client, media_in_tmp):
    response = contributor_client.post(LIST, {"title": "Nothing attached"})
    assert response.status_code == 400 and "image" in response.json()
    assert Painting.objects.count() == 0


def test_metadata_over_the_models_limits_is_refused_and_nothing_written(contributor_client, media_in_tmp):
    response = upload(contributor_client, image_bytes(seed=23), title="x" * 301)
    assert response.status_code == 400 and list(response.json()) == ["title"]
    assert Painting.objects.count() == 0 and _files(media_in_tmp) == []


def test_a_json_body_is_not_an_upload(contributor_client):
    response = contributor_client.post(LIST, {"title": "x"}, content_type="application/json")
    assert response.status_code == 415 and Painting.objects.count() == 0


# Who may upload


def test_an_anonymous_upload_is_refused(client, media_in_tmp):
    response = upload(client, image_bytes(seed=24))
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Token"
    assert Painting.objects.count() == 0 and _files(media_in_tmp) == []


def test_an_upload_with_a_token_is_accepted_and_credited(client):
    user = make_user("robot")
    token = Token.objects.create(user=user)
    response = client.post(
        LIST,
        {"image": SimpleUploadedFile("a.jpg", image_bytes(seed=25))},
        headers={"Authorization": f"Token {token.key}"},
    )
    assert response.status_code == 201
    assert Painting.objects.get().uploaded_by == user


def test_a_wrong_token_is_refused(client):
    response = client.post(
        LIST,
        {"image": SimpleUploadedFile("a.jpg", image_bytes(seed=26))},
        headers={"Authorization": "Token not-a-real-key"},
    )
    assert response.status_code == 401 and "Invalid token" in response.json()["detail"]
    assert Painting.objects.count() == 0


def test_a_session_upload_without_the_csrf_token_is_refused():
    # A logged-in browser can be made to post by another site: the session alone is not enough.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user())
    response = upload(browser, image_bytes(seed=27))
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert Painting.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_paintings_cannot_be_changed_or_deleted_over_the_api(method, contributor_client):
    painting = make_painting(title="Kept")
    response = getattr(contributor_client, method)(
        detail(painting.pk), {"title": "Changed"}, content_type="application/json"
    )
    assert response.status_code == 405
    painting.refresh_from_db()
    assert painting.title == "Kept"


def test_uploads_are_throttled_but_browsing_is_not(contributor_client, settings, media_in_tmp):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"uploads": "2/min"}}
    statuses = [upload(contributor_client, image_bytes(seed=30 + i)).status_code for i in range(3)]
    assert statuses == [201, 201, 429]
    assert Painting.objects.count() == 2
    assert all(contributor_client.get(LIST).status_code == 200 for _ in range(5))
