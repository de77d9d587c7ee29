"""Files follow their rows: deleting a painting or a model version (the admin's delete, a cascade)
removes what it owned under MEDIA_ROOT once the transaction commits, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from .factory import image_bytes, make_admin, make_model_version, make_painting, make_prediction

pytestmark = pytest.mark.django_db


def with_overlay(prediction, seed: int):
    prediction.gradcam.save(f"o{seed}.jpg", ContentFile(image_bytes(seed=seed, size=(20, 20))))
    return Path(prediction.gradcam.path)


def trained_version(name: str, media: Path, **kw):
    """A version laid out as ``manage.py train`` leaves one: a run folder holding the checkpoint,
    its cached ONNX graph and the evaluation's artifacts."""
    folder = media / "models" / name
    (folder / "eval").mkdir(parents=True)
    for rel in ("best.pt", "best.onnx", "loss_accuracy.png", "eval/metrics.json"):
        (folder / rel).write_bytes(b"x")
    version = make_model_version(name, metrics={"artifacts_dir": f"models/{name}"}, **kw)
    version.checkpoint.name = f"models/{name}/best.pt"
    version.save()
    return version, folder


def test_deleting_a_painting_removes_its_original_thumbnail_and_overlays(
    media_in_tmp, django_capture_on_commit_callbacks
):
    version = make_model_version("v1")
    painting, other = make_painting(), make_painting()
    overlay = with_overlay(make_prediction(painting, version), seed=1)
    kept_overlay = with_overlay(make_prediction(other, version), seed=2)
    files = [Path(painting.image.path), Path(painting.thumbnail.path), overlay]
    assert all(f.is_file() for f in files)

    with django_capture_on_commit_callbacks(execute=True):
        painting.delete()

    assert [f for f in files if f.exists()] == []
    assert Path(other.image.path).is_file() and kept_overlay.is_file()


def test_a_rolled_back_delete_keeps_the_files(media_in_tmp, django_capture_on_commit_callbacks):
    painting = make_painting()
    image = Path(painting.image.path)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            painting.delete()
            raise RuntimeError("changed my mind")
    assert image.is_file()


def test_deleting_a_model_version_from_the_admin_removes_its_run_folder_and_overlays(
    client, media_in_tmp, django_capture_on_commit_callbacks
):
    version, folder = trained_version("lite-a", Path(media_in_tmp), active=False)
    survivor, survivor_folder = trained_version("lite-b", Path(media_in_tmp), active=True)
    painting = make_painting()
    overlay = with_overlay(make_prediction(painting, version), seed=3)
    client.force_login(make_admin())

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/classifier/modelversion/{version.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not folder.exists() and not overlay.exists()
    assert (survivor_folder / "best.pt").is_file() and (survivor_folder / "best.onnx").is_file()
    assert Path(painting.image.path).is_file(), "the painting is not the version's to delete"


def test_a_checkpoint_another_version_still_uses_is_kept(media_in_tmp, django_capture_on_commit_callbacks):
    first, folder = trained_version("shared", Path(media_in_tmp), active=False)
    second = make_model_version("again", active=False, metrics={"artifacts_dir": "models/shared"})
    second.checkpoint.name = first.checkpoint.name
    second.save()

    with django_capture_on_commit_callbacks(execute=True):
        first.delete()

    assert (folder / "best.pt").is_file() and (folder / "eval" / "metrics.json").is_file()
