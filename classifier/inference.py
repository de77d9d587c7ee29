"""Worker-side classification: the plain functions the Celery tasks wrap.

Imported only by the worker (and ``manage.py classify --sync``): this module pulls in torch
through ml.inference. The web process never imports it.
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from classifier.models import ModelVersion, Prediction, Status

log = logging.getLogger(__name__)

# One Predictor per model version per worker process, built on first use (in the child process,
# after the fork, so that CUDA is never initialised in the parent) and kept.
_predictors: dict[int, object] = {}


def get_predictor(model_version: ModelVersion):
    predictor = _predictors.get(model_version.pk)
    if predictor is None:
        from ml.inference import Predictor

        started = time.perf_counter()
        predictor = Predictor.from_checkpoint(Path(model_version.checkpoint.path))
        _predictors[model_version.pk] = predictor
        log.info("loaded %s in %.1fs on %s", model_version, time.perf_counter() - started, predictor.device)
    return predictor


def claim(prediction_id: int, batch_size: int, worker: str = "") -> list[Prediction]:
    """Mark this prediction and up to ``batch_size - 1`` other pending ones of the same model version
    as running, atomically (rows locked by another worker are skipped). Returns [] when this one is
    already done, failed or being worked on: the task is then a no-op, so running it twice is safe."""
    stale_before = timezone.now() - settings.CLASSIFY_STALE_AFTER
    with transaction.atomic():
        runnable = Q(status=Status.PENDING) | Q(status=Status.RUNNING, started_at__lt=stale_before)
        first = (
            Prediction.objects.select_for_update(skip_locked=True).filter(runnable, pk=prediction_id).first()
        )
        if first is None:
            return []
        others = list(
            Prediction.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, model_version_id=first.model_version_id)
            .exclude(pk=first.pk)
            .order_by("created")[: max(0, batch_size - 1)]
        )
        claimed = [first, *others]
        now = timezone.now()
        for p in claimed:
            p.status, p.started_at, p.attempts, p.error = Status.RUNNING, now, p.attempts + 1, ""
            p.worker = worker
        Prediction.objects.bulk_update(claimed, ["status", "started_at", "attempts", "error", "worker"])
    return claimed


def _load(prediction: Prediction):
    from ml.data import load_image, shrink

    with prediction.painting.image.open("rb") as f:
        data = f.read()
    return shrink(load_image(io.BytesIO(data)), settings.CLASSIFY_LONG_SIDE)


def run_batch(predictions: list[Prediction]) -> None:
    """Classify claimed predictions in one batch and write results (or each failure) back."""
    if not predictions:
        return
    model_version = predictions[0].model_version
    predictor = get_predictor(model_version)
    images, ready = [], []
    for p in predictions:
        try:
            images.append(_load(p))
            ready.append(p)
        except Exception as exc:  # noqa: BLE001 - a bad file fails its own prediction only
            p.mark_failed(f"could not read the image: {type(exc).__name__}: {exc}")
    if not ready:
        return
    started = time.perf_counter()
    results = predictor.predict(images, gradcam=True)
    per_image_ms = 1000 * (time.perf_counter() - started) / len(ready)
    for p, r in zip(ready, results, strict=True):
        buf = io.BytesIO()
        r.overlay.save(buf, format="JPEG", quality=85)
        p.gradcam.save(f"p{p.painting_id}_v{model_version.pk}.jpg", ContentFile(buf.getvalue()), save=False)
        p.label = r.label
        p.confidence = r.confidence
        p.probabilities = r.probabilities
        p.embedding = r.embedding.astype("float32").tobytes()
        p.status = Status.DONE
        p.finished_at = timezone.now()
        p.inference_ms = per_image_ms
        p.save()


def classify(prediction_id: int, batch_size: int | None = None, worker: str = "") -> int:
    """Claim and classify; returns how many predictions this call finished. ``worker``: the Celery
    node name doing it (recorded on the rows), empty in-process."""
    claimed = claim(prediction_id, batch_size or settings.CLASSIFY_BATCH_SIZE, worker)
    try:
        run_batch(claimed)
    except Exception as exc:
        # Put the batch back to pending so a retry (or the sweep) picks it up again.
        Prediction.objects.filter(pk__in=[p.pk for p in claimed], status=Status.RUNNING).update(
            status=Status.PENDING, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    return len(claimed)
