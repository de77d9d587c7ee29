"""Celery tasks: thin shells over classifier.inference (worker only; imports torch lazily)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from classifier.models import Prediction, Status, TrainingRun, enqueue, enqueue_many

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # Transient trouble (the database restarting, a connection dropped) is retried with backoff.
    autoretry_for=(OperationalError, InterfaceError, ConnectionError),
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=settings.CLASSIFY_SOFT_TIME_LIMIT,
    time_limit=settings.CLASSIFY_SOFT_TIME_LIMIT + 30,
)
def classify_painting(self, prediction_id: int) -> int:
    """Classify one prediction (and other pending ones with it, in a batch). Idempotent."""
    from classifier.inference import classify

    try:
        return classify(prediction_id, worker=self.request.hostname or "")
    except SoftTimeLimitExceeded:
        Prediction.objects.filter(pk=prediction_id).exclude(status=Status.DONE).update(
            status=Status.FAILED, error=f"took longer than {settings.CLASSIFY_SOFT_TIME_LIMIT} s"
        )
        return 0
    except (OperationalError, InterfaceError, ConnectionError):
        raise
    except Exception as exc:
        log.exception("prediction %s failed", prediction_id)
        Prediction.objects.filter(pk=prediction_id).exclude(status=Status.DONE).update(
            status=Status.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
        return 0


@worker_ready.connect
def take_back_what_this_worker_was_running(sender, **kwargs) -> None:
    """A worker killed mid-batch (SIGKILL, out of memory, a machine restart) leaves its predictions
    "running"; the sweep would re-queue them only after CLASSIFY_STALE_AFTER. When a worker of the
    same name starts again it queues them at once: under its name nothing can still be running.
    A training it was running is marked failed at once, too (not re-run: that is a person's call)."""
    hostname = getattr(sender, "hostname", "")
    try:
        ids = Prediction.objects.release_abandoned_by(hostname)
        enqueue_many(ids)
        if ids:
            log.warning(
                "%s: %d prediction(s) left running by its previous run queued again", hostname, len(ids)
            )
        if hostname and TrainingRun.objects.fail_abandoned(worker=hostname):
            log.warning("%s: the training its previous run was doing is marked failed", hostname)
    except Exception:  # noqa: BLE001 - never keep a worker from starting; the sweep is the fallback
        log.exception("could not take back the predictions %s left running", hostname)
    finally:
        connections.close_all()  # opened in the main process: never share it with forked children


@shared_task
def requeue_pending() -> int:
    """The sweep (Celery beat): re-queue predictions left pending (broker was down at upload) or
    abandoned while running (worker killed); and fail trainings whose process stopped, which
    would otherwise show "running" for ever. Returns the number of predictions re-queued."""
    ids = list(Prediction.objects.stale(settings.CLASSIFY_STALE_AFTER).values_list("pk", flat=True)[:1000])
    for pk in ids:
        enqueue(pk)
    if ids:
        log.info("re-queued %d stale prediction(s)", len(ids))
    failed = TrainingRun.objects.fail_abandoned(settings.TRAINING_STALE_AFTER)
    if failed:
        log.warning("marked %d abandoned training run(s) failed", failed)
    return len(ids)


@shared_task(
    # Routed to the `training` queue by CELERY_TASK_ROUTES (Celery deprecates a `queue` attribute on
    # the task): a worker must consume it, e.g. `-Q celery,training`.
    # Acknowledged on receipt: a training runs for hours, longer than the broker's visibility timeout,
    # and one lost with its worker is better restarted by a person than redelivered behind their back.
    bind=True,
    acks_late=False,
    time_limit=None,
    soft_time_limit=None,
)
def train_model(self, run_id: int) -> int | None:
    """Carry out a TrainingRun queued from the admin; its row records the progress, the result or the
    error. A second delivery finds the run no longer queued and does nothing."""
    from classifier.services import run_training

    try:
        version = run_training(run_id, worker=self.request.hostname or "")
    except Exception:
        log.exception("training run %s failed (the error is on the run)", run_id)
        return None
    return version.pk if version else None
