"""The dataset pages (curators): the zip import, freezing from /datasets/, a version's page with its
export (queued, polled, downloaded) and its manifests. Who may open them is test_roles_datasets.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from gallery.datasets import export, freeze
from gallery.models import DatasetExport, DatasetVersion, LabelChange, Painting

from .factory import image_bytes, make_curator, make_painting
from .test_sweep import UNREACHABLE, celery_broker, queued_task_args, redis_queue

pytestmark = pytest.mark.django_db

DATASETS_REDIS_DB = 9  # flushed by these tests


@pytest.fixture
def curator(client):
    user = make_curator()
    client.force_login(user)
    return user


def zip_upload(files: dict[str, bytes], name: str = "set.zip") -> SimpleUploadedFile:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for inner, data in files.items():
            archive.writestr(inner, data)
    return SimpleUploadedFile(name, buf.getvalue(), content_type="application/zip")


def labelled_set() -> DatasetVersion:
    for i in range(6):
        data = image_bytes("JPEG", size=(96, 72), seed=500 + i)
        make_painting(data=data, sha256=hashlib.sha256(data).hexdigest(), label="cn" if i % 2 else "jp")
    return freeze("v1", seed=0)


# --------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------

STUDY_ZIP = {
    "my-set/train/cn/a.jpg": image_bytes("JPEG", size=(96, 72), seed=1),
    "my-set/train/jp/b.jpg": image_bytes("JPEG", size=(96, 72), seed=2),
    "my-set/test/cn/c.png": image_bytes("PNG", size=(96, 72), seed=3),
    "my-set/test/jp/d.jpg": image_bytes("JPEG", size=(96, 72), seed=4),
    "my-set/test/jp/broken.jpg": image_bytes("JPEG", size=(300, 300), seed=5)[:900],
}


def test_a_curator_imports_a_zip_and_sees_the_summary(client, curator):
    response = client.post(
        reverse("gallery:dataset_import"),
        {"archive": zip_upload(STUDY_ZIP), "source": "Museum X", "license": "CC0"},
    )

    assert response.status_code == 200
    assert response.context["totals"] == {"imported": 4, "present": 0, "relabelled": 0, "skipped": 1}
    page = response.content.decode()
    assert "my-set/test/jp/broken.jpg" not in page and "test/jp/broken.jpg" in page
    assert "damaged or truncated" in page
    assert {p.title: (p.label, p.split) for p in Painting.objects.all()} == {
        "a": ("cn", "train"),
        "b": ("jp", "train"),
        "c": ("cn", "test"),
        "d": ("jp", "test"),
    }
    assert set(Painting.objects.values_list("uploaded_by", "source", "license")) == {
        (curator.pk, "Museum X", "CC0")
    }
    changes = LabelChange.objects.all()
    assert {c.changed_by_id for c in changes} == {curator.pk} and len(changes) == 4
    assert {c.reason for c in changes} == {"import from set.zip"}


def test_importing_the_same_zip_again_changes_nothing(client, curator):
    client.post(reverse("gallery:dataset_import"), {"archive": zip_upload(STUDY_ZIP)})
    before = sorted(Painting.objects.values_list("pk", "label", "split"))

    response = client.post(reverse("gallery:dataset_import"), {"archive": zip_upload(STUDY_ZIP)})

    assert response.context["totals"]["present"] == 4 and response.context["totals"]["imported"] == 0
    assert sorted(Painting.objects.values_list("pk", "label", "split")) == before
    assert LabelChange.objects.count() == 4


def test_a_dry_run_from_the_page_writes_nothing(client, curator):
    response = client.post(
        reverse("gallery:dataset_import"), {"archive": zip_upload(STUDY_ZIP), "dry_run": "on"}
    )

    assert response.status_code == 200
    assert "nothing was written" in response.content.decode()
    assert response.context["totals"]["imported"] == 4
    assert not Painting.objects.exists()


def test_a_file_that_is_not_a_zip_is_refused_on_the_form(client, curator):
    response = client.post(
        reverse("gallery:dataset_import"),
        {"archive": SimpleUploadedFile("a.jpg", image_bytes(), content_type="image/jpeg")},
    )

    assert response.status_code == 400
    assert "not a zip archive" in response.content.decode()
    assert not Painting.objects.exists()


def test_a_zip_with_no_class_folders_is_refused_with_the_reason(client, curator):
    response = client.post(reverse("gallery:dataset_import"), {"archive": zip_upload({"readme.txt": b"hi"})})

    assert response.status_code == 400
    assert "No class folders" in response.content.decode()


def test_the_page_says_big_sets_belong_to_the_command(client, curator):
    page = client.get(reverse("gallery:dataset_import")).content.decode()

    assert "python manage.py import_dataset" in page


# --------------------------------------------------------------------------------------------------
# Freezing from /datasets/
# --------------------------------------------------------------------------------------------------


def test_the_list_shows_the_curated_set_and_the_versions(client, curator):
    labelled_set()
    make_painting(label="kr")

    response = client.get(reverse("gallery:datasets"))

    page = response.content.decode()
    assert response.status_code == 200
    assert reverse("gallery:dataset_detail", args=[DatasetVersion.objects.get().pk]) in page
    curated = response.context["curated"]
    assert curated["class_names"] == ["cn", "jp", "kr"] and curated["total"] == 7
    assert dict(curated["rows"][-1]["cells"]) == {"cn": 0, "jp": 0, "kr": 1}  # the unassigned row
    assert "Freeze current curated set" in page


def test_freezing_from_the_page_leads_to_the_new_version(client, curator):
    for i in range(8):
        make_painting(label="cn" if i % 2 else "jp")

    response = client.post(
        reverse("gallery:datasets"), {"name": "spring", "seed": 3, "val": 0.25, "test": 0.25}
    )

    version = DatasetVersion.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "gallery:dataset_detail", args=[version.pk]
    )
    assert (version.name, version.seed, version.created_by) == ("spring", 3, curator)
    page = client.get(response.url).content.decode()
    assert "8 paintings, 8 newly given a split" in page


def test_a_leaking_freeze_shows_the_offending_paintings(client, curator):
    a = make_painting(label="cn", split="train", group="album-3", title="Leaf one")
    b = make_painting(label="cn", split="test", group="album-3", title="Leaf two")
    make_painting(label="jp")

    response = client.post(
        reverse("gallery:datasets"), {"name": "leaky", "seed": 0, "val": 0.15, "test": 0.15}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Freezing refused" in page
    assert f"#{a.pk} “Leaf one” (train)" in page and f"#{b.pk} “Leaf two” (test)" in page
    assert not DatasetVersion.objects.exists()


def test_the_freeze_form_checks_its_fractions_and_name(client, curator):
    labelled_set()

    response = client.post(reverse("gallery:datasets"), {"name": "v1", "seed": 0, "val": 0.5, "test": 0.5})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "name" in errors and "__all__" in errors
    assert DatasetVersion.objects.count() == 1


# --------------------------------------------------------------------------------------------------
# A version's page: export, progress, download, manifests
# --------------------------------------------------------------------------------------------------


def test_build_export_queues_the_task_and_the_page_follows_it_to_the_download(
    client, curator, django_capture_on_commit_callbacks
):
    version = labelled_set()
    detail = reverse("gallery:dataset_detail", args=[version.pk])

    with redis_queue(DATASETS_REDIS_DB) as queue:
        with django_capture_on_commit_callbacks(execute=True):  # runs them on the way out, as a commit
            response = client.post(reverse("gallery:dataset_export", args=[version.pk]))
        queued = queued_task_args(queue)

    requested = DatasetExport.objects.get()
    assert response.status_code == 302 and response.url == detail
    assert queued == [("gallery.tasks.export_dataset", [requested.pk])]
    assert (requested.status, requested.total_items, requested.requested_by) == ("pending", 6, curator)

    status_url = reverse("gallery:export_status", args=[requested.pk])
    page = client.get(detail).content.decode()
    assert f'data-export-status-url="{status_url}"' in page  # the page polls while it waits
    assert client.get(status_url).json() == {
        "id": requested.pk,
        "status": "pending",
        "done_items": 0,
        "total_items": 6,
        "percent": 0,
        "error": "",
        "download": None,
    }

    export(requested.pk)  # what the worker does with the queued task

    state = client.get(status_url).json()
    download_url = reverse("gallery:export_download", args=[requested.pk])
    assert (state["status"], state["percent"], state["download"]) == ("done", 100, download_url)
    page = client.get(detail).content.decode()
    assert download_url in page and "data-export-status-url" not in page
    download = client.get(download_url)
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    assert len([n for n in archive.namelist() if n.startswith("data/")]) == 6


def test_when_the_broker_is_down_the_export_fails_saying_why(
    client, curator, django_capture_on_commit_callbacks
):
    version = labelled_set()

    with celery_broker(UNREACHABLE), django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("gallery:dataset_export", args=[version.pk]))

    failed = DatasetExport.objects.get()
    assert failed.status == "failed" and "could not be reached" in failed.error
    assert (
        "could not be reached"
        in client.get(reverse("gallery:dataset_detail", args=[version.pk])).content.decode()
    )


def test_the_manifests_download_as_csv_and_jsonl(client, curator):
    version = labelled_set()

    as_csv = client.get(reverse("gallery:manifest_csv", args=[version.pk]))
    as_jsonl = client.get(reverse("gallery:manifest_jsonl", args=[version.pk]))

    assert as_csv["Content-Type"].startswith("text/csv") and "attachment" in as_csv["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    lines = [json.loads(line) for line in b"".join(as_jsonl.streaming_content).decode().splitlines()]
    items = {i.painting_id: i for i in version.items.select_related("painting")}
    assert sorted(int(r["id"]) for r in rows) == sorted(items) == sorted(r["id"] for r in lines)
    for row in rows:
        item = items[int(row["id"])]
        assert (row["label"], row["split"], row["sha256"]) == (item.label, item.split, item.painting.sha256)
    assert [{k: str(v) for k, v in line.items()} for line in lines] == rows


def test_a_missing_version_or_unfinished_export_is_not_found(client, curator):
    version = labelled_set()
    pending = DatasetExport.objects.create(dataset_version=version)

    assert client.get(reverse("gallery:dataset_detail", args=[version.pk + 100])).status_code == 404
    assert client.get(reverse("gallery:export_download", args=[pending.pk])).status_code == 404
