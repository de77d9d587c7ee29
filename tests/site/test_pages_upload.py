"""The upload page: who may use it, and what it says about each file."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from classifier.models import Prediction, Status
from gallery.models import Painting
from gallery.uploads import save_painting

from .factory import image_bytes, make_model_version, make_user

pytestmark = pytest.mark.django_db

URL = reverse("gallery:upload")


def jpeg(name: str, seed: int) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, image_bytes("JPEG", seed=seed), content_type="image/jpeg")


def zip_of(name: str, files: dict[str, bytes]) -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for inner, data in files.items():
            archive.writestr(inner, data)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="application/zip")


@pytest.fixture
def contributor(client):
    user = make_user("contributor")
    client.force_login(user)
    return user


def outcomes(response) -> dict[str, str]:
    """File name -> "new" / "existing" / the reason it was refused."""
    return {
        r.name: ("new" if r.created else "existing") if r.ok else r.error for r in response.context["results"]
    }


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={URL}"
    login_page = client.get(response.url)
    assert login_page.status_code == 200
    assert 'name="username"' in login_page.content.decode()


def test_an_anonymous_post_saves_nothing(client):
    response = client.post(URL, {"files": [jpeg("a.jpg", 1)]})

    assert response.status_code == 302
    assert Painting.objects.count() == 0


def test_a_signed_in_user_sees_the_form(client, contributor):
    body = client.get(URL).content.decode()

    assert 'type="file" name="files"' in body and "multiple" in body
    assert 'enctype="multipart/form-data"' in body
    assert "data-dropzone" in body


def test_each_files_outcome_is_listed_on_the_page(client, contributor):
    existing, _ = save_painting(image_bytes("PNG", seed=2), "old.png")
    files = [
        jpeg("new.jpg", 1),
        SimpleUploadedFile("again.png", image_bytes("PNG", seed=2), content_type="image/png"),
        SimpleUploadedFile("notes.jpg", b"these are not pixels", content_type="image/jpeg"),
        zip_of("batch.zip", {"one.jpg": image_bytes(seed=3), "two.png": image_bytes("PNG", seed=4)}),
    ]

    response = client.post(URL, {"files": files})

    assert response.status_code == 200
    result = outcomes(response)
    assert result["new.jpg"] == result["one.jpg"] == result["two.png"] == "new"
    assert result["again.png"] == "existing"
    assert "not an image we can read" in result["notes.jpg"]
    assert Painting.objects.count() == 4
    body = response.content.decode()
    new = Painting.objects.get(title="new")
    assert f'href="{new.get_absolute_url()}"' in body
    assert f'href="{existing.get_absolute_url()}"' in body
    assert "already in the collection" in body
    assert "not an image we can read" in body
    assert body.count("tag tag-ok") == 3 and body.count("tag tag-refused") == 1


def test_the_optional_details_apply_to_every_file(client, contributor):
    response = client.post(
        URL,
        {"files": [jpeg("a.jpg", 1), jpeg("b.jpg", 2)], "artist": "Guo Xi", "period": "Northern Song"},
    )

    assert response.status_code == 200
    paintings = Painting.objects.order_by("title")
    assert [(p.title, p.artist, p.period, p.uploaded_by) for p in paintings] == [
        ("a", "Guo Xi", "Northern Song", contributor),
        ("b", "Guo Xi", "Northern Song", contributor),
    ]


def test_a_file_over_the_size_limit_gets_a_message_not_an_error(client, contributor, settings):
    settings.UPLOAD_MAX_BYTES = 2_000
    big = SimpleUploadedFile("big.png", image_bytes("PNG", size=(200, 200)), content_type="image/png")

    response = client.post(URL, {"files": [big]})

    assert response.status_code == 200
    assert "the limit is" in outcomes(response)["big.png"]
    assert "the limit is" in response.content.decode()
    assert Painting.objects.count() == 0


def test_sending_no_file_asks_for_one(client, contributor):
    response = client.post(URL, {"artist": "Guo Xi"})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Painting.objects.count() == 0


def test_a_detail_longer_than_the_model_allows_is_refused_before_any_file_is_saved(client, contributor):
    response = client.post(URL, {"files": [jpeg("a.jpg", 1)], "artist": "x" * 201})

    assert response.status_code == 200
    assert response.context["form"].errors["artist"]
    assert Painting.objects.count() == 0


def test_with_an_active_model_each_new_painting_waits_for_its_prediction(client, contributor):
    version = make_model_version()

    client.post(URL, {"files": [jpeg("a.jpg", 1)]})

    prediction = Prediction.objects.get()
    assert prediction.model_version == version and prediction.status == Status.PENDING


def test_signing_in_on_the_login_page_leads_back_to_the_upload_page(client):
    make_user("hana")

    response = client.post(
        reverse("login"), {"username": "hana", "password": "pw-for-tests-only", "next": URL}, follow=True
    )

    assert response.redirect_chain[-1][0] == URL
    assert 'name="files"' in response.content.decode()


def test_a_wrong_password_is_told_on_the_login_page(client):
    make_user("hana")

    response = client.post(reverse("login"), {"username": "hana", "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_the_page_tells_its_script_how_many_files_django_accepts(client, contributor, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 7

    body = client.get(URL).content.decode()

    assert 'data-max-files="7"' in body
    assert "Send at most 7 files at once" in body
