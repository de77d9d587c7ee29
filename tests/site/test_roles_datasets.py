"""Roles on the dataset pages: visitors are sent to sign in, signed-in contributors are refused,
curators and admins get in. Every dataset URL, GET and POST."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.datasets import export, freeze
from gallery.models import DatasetExport, DatasetVersion, Painting

from .factory import image_bytes, make_admin, make_curator, make_painting, make_user

pytestmark = pytest.mark.django_db

ROLES = ["visitor", "contributor", "curator", "admin"]


@pytest.fixture
def as_role(client, request):
    role = request.param
    if role != "visitor":
        client.force_login({"contributor": make_user, "curator": make_curator, "admin": make_admin}[role]())
    return role


@pytest.fixture
def finished_export() -> DatasetExport:
    for i in range(4):
        data = image_bytes("JPEG", size=(96, 72), seed=700 + i)
        make_painting(data=data, sha256=hashlib.sha256(data).hexdigest(), label="cn" if i % 2 else "jp")
    version = freeze("v1")
    return export(DatasetExport.objects.create(dataset_version=version).pk)


def get_urls(exp: DatasetExport) -> list[str]:
    pk = exp.dataset_version_id
    return [
        reverse("gallery:datasets"),
        reverse("gallery:dataset_import"),
        reverse("gallery:dataset_detail", args=[pk]),
        reverse("gallery:manifest_csv", args=[pk]),
        reverse("gallery:manifest_jsonl", args=[pk]),
        reverse("gallery:export_status", args=[exp.pk]),
        reverse("gallery:export_download", args=[exp.pk]),
    ]


def posts(exp: DatasetExport) -> list[tuple[str, dict]]:
    """(url, form data) of every POST, each one that writes something when allowed."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cn/new.jpg", image_bytes("JPEG", size=(96, 72), seed=1))
    return [
        (reverse("gallery:datasets"), {"name": "v2", "seed": 0, "val": 0.15, "test": 0.15}),
        (reverse("gallery:dataset_export", args=[exp.dataset_version_id]), {}),
        (reverse("gallery:dataset_import"), {"archive": SimpleUploadedFile("set.zip", archive.getvalue())}),
    ]


def written() -> tuple[int, int, int]:
    return DatasetVersion.objects.count(), DatasetExport.objects.count(), Painting.objects.count()


@pytest.mark.parametrize("as_role", ROLES, indirect=True)
def test_every_dataset_page_admits_curators_and_admins_only(client, as_role, finished_export):
    for url in get_urls(finished_export):
        response = client.get(url)
        if as_role == "visitor":
            assert response.status_code == 302, url
            assert response.url == f"{reverse('login')}?next={url}"
        elif as_role == "contributor":
            assert response.status_code == 403, url
        else:
            assert response.status_code == 200, url


@pytest.mark.parametrize("as_role", ROLES, indirect=True)
def test_every_dataset_action_is_refused_below_curator(client, as_role, finished_export):
    before = written()
    for url, data in posts(finished_export):
        response = client.post(url, data)
        if as_role == "visitor":
            assert response.status_code == 302 and response.url.startswith(reverse("login")), url
        elif as_role == "contributor":
            assert response.status_code == 403, url
        else:
            assert response.status_code in (200, 302), url
    if as_role in ("visitor", "contributor"):
        assert written() == before
    else:  # a new version, a new export, a new painting
        assert written() == (before[0] + 1, before[1] + 1, before[2] + 1)


@pytest.mark.parametrize("as_role", ROLES, indirect=True)
def test_the_datasets_link_is_shown_to_curators_and_admins(client, as_role):
    page = client.get(reverse("gallery:list")).content.decode()

    assert (f'href="{reverse("gallery:datasets")}"' in page) == (as_role in ("curator", "admin"))
