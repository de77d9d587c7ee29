"""manage.py import_model and manage.py classify, with small real checkpoints (torch in this process).

Class names are the checkpoint's own: three of them here, to show that nothing expects cn/jp.
"""

from __future__ import annotations

import filecmp
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from classifier.models import ModelVersion, Prediction, Status

from .factory import make_model_version, make_painting, make_prediction
from .test_sweep import QUEUE, queued_task_args, redis_queue

pytestmark = pytest.mark.django_db

CLASS_NAMES = ("cn", "jp", "kr")
COMMANDS_REDIS_DB = 12  # flushed by these tests


def write_checkpoint(path: Path, class_names=CLASS_NAMES, image_size: int = 64) -> Path:
    """A checkpoint as `python -m ml train` writes one (see ml/train.py), of an untrained ResNet-18."""
    from ml.models import build_model, save_checkpoint

    model = build_model("resnet18", len(class_names))
    save_checkpoint(
        path,
        model_state_dict=model.state_dict(),
        optimizer_state_dict={},
        class_names=list(class_names),
        arch="resnet18",
        config={"arch": "resnet18", "image_size": image_size},
        epoch=1,
        val_accuracy=0.5,
    )
    return path


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    run = tmp_path / "runs" / "resnet18-small"
    run.mkdir(parents=True)
    return write_checkpoint(run / "best.pt")


@pytest.fixture
def queue():
    with redis_queue(COMMANDS_REDIS_DB) as client:
        yield client


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_import_model_registers_a_checkpoint_with_its_classes_and_metrics(checkpoint, media_in_tmp):
    (checkpoint.parent / "eval").mkdir()
    (checkpoint.parent / "eval" / "metrics.json").write_text(json.dumps({"accuracy": 0.912, "n": 300}))

    output = run("import_model", str(checkpoint), "--name", "small")

    version = ModelVersion.objects.get(name="small")
    assert version.arch == "resnet18" and version.class_names == list(CLASS_NAMES)
    assert version.metrics == {"accuracy": 0.912, "n": 300} and version.test_accuracy == 0.912
    assert not version.is_active
    stored = Path(version.checkpoint.path)
    assert stored.is_relative_to(media_in_tmp) and filecmp.cmp(stored, checkpoint, shallow=False)
    assert "cn, jp, kr" in output and "91.2%" in output


def test_import_model_names_the_version_after_its_run_folder(checkpoint):
    run("import_model", str(checkpoint))
    assert ModelVersion.objects.get().name == "resnet18-small"


def test_import_model_refuses_a_name_already_taken(checkpoint):
    make_model_version("resnet18-small", active=False)
    with pytest.raises(CommandError, match="exists"):
        run("import_model", str(checkpoint))
    assert ModelVersion.objects.count() == 1


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not a checkpoint at all\n", id="text"),
        pytest.param("state_dict", id="bare-state-dict"),
    ],
)
def test_import_model_refuses_a_file_that_is_not_a_checkpoint(content, tmp_path, media_in_tmp):
    path = tmp_path / "weights.pt"
    if content == "state_dict":
        import torch
        from torch import nn

        torch.save(nn.Linear(4, 2).state_dict(), path)
    else:
        path.write_bytes(content)

    with pytest.raises(CommandError, match="not a checkpoint"):
        run("import_model", str(path), "--name", "bad")

    assert not ModelVersion.objects.exists()
    assert not (media_in_tmp / "models").exists() or not any((media_in_tmp / "models").iterdir())


def test_import_model_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_model", str(tmp_path / "nowhere.pt"))


def test_activate_makes_it_the_only_active_model_and_queues_paintings_without_a_prediction(
    checkpoint, queue, django_capture_on_commit_callbacks
):
    old = make_model_version("old", active=True)
    first, second = make_painting(), make_painting()
    make_prediction(first, old)  # by the old model only: the new one still has to look at it

    with django_capture_on_commit_callbacks(execute=True):
        output = run("import_model", str(checkpoint), "--name", "new", "--activate")

    new = ModelVersion.objects.get(name="new")
    old.refresh_from_db()
    assert new.is_active and not old.is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [new]
    predictions = Prediction.objects.filter(model_version=new)
    assert {p.painting_id for p in predictions} == {first.pk, second.pk}
    assert all(p.status == Status.PENDING and p.queued_at is not None for p in predictions)
    assert sorted(queued_task_args(queue)) == sorted(
        ("classifier.tasks.classify_painting", [p.pk]) for p in predictions
    )
    assert "2 painting(s) queued" in output


def test_classify_sync_pending_classifies_pending_paintings_in_this_process(checkpoint, media_in_tmp):
    waiting = make_painting()  # gets a pending prediction when the model is activated
    run("import_model", str(checkpoint), "--name", "small", "--activate")
    version = ModelVersion.objects.get(name="small")
    later = make_painting()  # uploaded with no prediction yet
    finished = make_painting()
    make_prediction(finished, version, label="jp", confidence=0.9)

    output = run("classify", "--sync", "--pending")

    for painting in (waiting, later):
        prediction = Prediction.objects.get(painting=painting, model_version=version)
        assert prediction.status == Status.DONE and prediction.error == ""
        assert prediction.label in CLASS_NAMES
        assert sorted(prediction.probabilities) == sorted(CLASS_NAMES)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
        assert prediction.confidence == pytest.approx(prediction.probabilities[prediction.label])
        overlay = Path(prediction.gradcam.path)
        assert overlay.is_relative_to(media_in_tmp)
        with Image.open(overlay) as im:
            assert im.size == (painting.width, painting.height)
        embedding = prediction.embedding_vector()
        assert embedding.shape == (512,) and np.isfinite(embedding).all()
    untouched = Prediction.objects.get(painting=finished)
    assert (untouched.label, untouched.confidence, untouched.gradcam.name) == ("jp", 0.9, "")
    assert "classified 2 painting(s)" in output and "0 failed" in output


def test_classify_queues_pending_paintings_for_the_worker(checkpoint, queue):
    run("import_model", str(checkpoint), "--name", "small", "--activate")
    paintings = [make_painting(), make_painting()]

    output = run("classify", "--pending")

    predictions = Prediction.objects.filter(painting__in=paintings)
    assert queue.llen(QUEUE) == 2 and all(p.queued_at is not None for p in predictions)
    assert "2 of 2 prediction(s) queued" in output


def test_classify_without_an_active_model_says_how_to_import_one():
    make_model_version("idle", active=False)
    make_painting()
    with pytest.raises(CommandError, match=r"import_model CHECKPOINT --activate"):
        run("classify", "--sync", "--pending")
    assert not Prediction.objects.exists()
