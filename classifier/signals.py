"""Files follow their rows: deleting a model version (from the admin, or by cascade) removes its
checkpoint, the ONNX graph cached beside it and its run folder; deleting a prediction removes its
Grad-CAM overlay. Deletion happens after the transaction commits, so a rollback keeps both."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from classifier.models import ModelVersion, Prediction

log = logging.getLogger(__name__)


def delete_on_commit(field_file) -> None:
    """Delete a FieldFile's file once the surrounding transaction commits (at once outside one)."""
    if not field_file:
        return
    storage, name = field_file.storage, field_file.name
    transaction.on_commit(lambda: storage.delete(name))


@receiver(post_delete, sender=Prediction)
def delete_overlay(sender, instance: Prediction, **kwargs) -> None:
    delete_on_commit(instance.gradcam)


@receiver(post_delete, sender=ModelVersion)
def delete_model_files(sender, instance: ModelVersion, **kwargs) -> None:
    checkpoint = instance.checkpoint.name
    if checkpoint and not ModelVersion.objects.filter(checkpoint=checkpoint).exists():
        delete_on_commit(instance.checkpoint)
        onnx = str(Path(checkpoint).with_suffix(".onnx"))
        transaction.on_commit(lambda: instance.checkpoint.storage.delete(onnx))
    folder = instance.artifacts_dir
    if folder and not ModelVersion.objects.filter(metrics__artifacts_dir=folder).exists():
        root = Path(settings.MEDIA_ROOT).resolve()
        path = (root / folder).resolve()
        # Only a folder strictly inside MEDIA_ROOT: a damaged metrics value must not reach further.
        if root in path.parents:
            transaction.on_commit(lambda: shutil.rmtree(path, ignore_errors=True))
        else:
            log.warning("model version %s: artifacts_dir %r is outside MEDIA_ROOT", instance.pk, folder)
