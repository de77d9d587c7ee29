"""Model versions and predictions.

The web process never imports torch: it reads and writes these rows only. The worker
(classifier/tasks.py -> classifier/inference.py) fills predictions in.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> ModelVersion | None:
        return self.filter(is_active=True).first()


class ModelVersion(models.Model):
    name = models.CharField(max_length=100, unique=True)
    arch = models.CharField(max_length=50)
    class_names = models.JSONField()
    checkpoint = models.FileField(upload_to="models/")
    metrics = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="one_active_model"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.arch})"

    @transaction.atomic
    def activate(self) -> None:
        ModelVersion.objects.filter(is_active=True).exclude(pk=self.pk).update(is_active=False)
        ModelVersion.objects.filter(pk=self.pk).update(is_active=True)
        self.is_active = True

    @transaction.atomic
    def activate_and_reclassify(self) -> int:
        """Make this the active version and queue a prediction by it for every painting that has
        none; earlier versions' predictions are kept (one row per painting and version). The rows
        are made in bulk and the tasks sent after commit; the worker claims pending predictions in
        batches (CLASSIFY_BATCH_SIZE). Returns how many paintings were newly queued; progress is
        ``reclassification_progress()``."""
        from gallery.models import Painting

        self.activate()
        missing = Painting.objects.exclude(predictions__model_version=self).order_by("pk")
        ids = list(missing.values_list("pk", flat=True))
        for start in range(0, len(ids), 1000):
            Prediction.objects.bulk_create(
                [Prediction(painting_id=pk, model_version=self) for pk in ids[start : start + 1000]],
                ignore_conflicts=True,  # a painting uploaded meanwhile may have got its row already
            )
        pending = list(
            self.predictions.filter(status=Status.PENDING).order_by("pk").values_list("pk", flat=True)
        )
        transaction.on_commit(lambda: enqueue_many(pending))
        return len(ids)

    def reclassification_progress(self) -> dict:
        """How far the worker got with this version over the whole gallery: what the models page
        polls after "Activate"."""
        from gallery.models import Painting

        rows = self.predictions.order_by().values("status").annotate(n=models.Count("pk"))
        by_status = {row["status"]: row["n"] for row in rows}
        total = Painting.objects.count()
        done, failed = by_status.get(Status.DONE, 0), by_status.get(Status.FAILED, 0)
        return {
            "total": total,
            "done": done,
            "failed": failed,
            "waiting": max(0, total - done - failed),
            "percent": round(100 * (done + failed) / total) if total else 100,
            "finished": done + failed >= total,
        }

    @property
    def artifacts_dir(self) -> str:
        """The training run's folder under MEDIA_ROOT (plots, report, predictions), or ""."""
        return self.metrics.get("artifacts_dir", "")

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("accuracy")


class TrainingRunQuerySet(models.QuerySet):
    def abandoned(self, older_than: timedelta) -> TrainingRunQuerySet:
        """Runs still marked running whose process has stopped giving signs of life: a killed
        worker, a machine restarted. A live run refreshes ``heartbeat`` every few seconds."""
        cutoff = timezone.now() - older_than
        return self.filter(state=TrainingRun.State.RUNNING).filter(
            Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True, started__lt=cutoff)
        )

    def fail_abandoned(self, older_than: timedelta | None = None, worker: str = "") -> int:
        """Mark abandoned runs failed, saying why: nothing else would ever end them. Abandoned: silent
        for longer than ``older_than``, or, with ``worker``, running under that Celery node name
        while it starts again (it was killed mid-training)."""
        failed = 0
        if worker:
            runs = self.filter(state=TrainingRun.State.RUNNING, worker=worker)
        else:
            runs = self.abandoned(older_than)
        for run in runs:
            last = run.heartbeat or run.started
            failed += TrainingRun.objects.filter(pk=run.pk, state=TrainingRun.State.RUNNING).update(
                state=TrainingRun.State.FAILED,
                message="failed: the process running it stopped",
                error=(
                    "The process running this training stopped giving signs of life at "
                    f"{last:%Y-%m-%d %H:%M:%S %Z} (the worker was probably stopped or killed, or its "
                    "machine restarted). No model version was registered. Start the training again."
                ),
                finished=timezone.now(),
            )
        return failed


class TrainingRun(models.Model):
    """A training requested from the admin or `manage.py train`: its options, live progress and result."""

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    dataset_version = models.ForeignKey(
        "gallery.DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL
    )
    options = models.JSONField(default=dict, help_text="arch, weights, epochs, preset, activate ...")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    epoch = models.PositiveIntegerField(default=0)
    history = models.JSONField(default=list, blank=True, help_text="one row per finished epoch")
    message = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL)
    requested_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Refreshed every TRAINING_HEARTBEAT_SECONDS while the run's process lives; the sweep fails a
    # running run whose heartbeat is older than TRAINING_STALE_AFTER.
    heartbeat = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="the Celery node running it")

    objects = TrainingRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"training {self.pk} ({self.state})"


class Status(models.TextChoices):
    PENDING = "pending", _("pending")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class PredictionQuerySet(models.QuerySet):
    def stale(self, older_than: timedelta) -> PredictionQuerySet:
        """Pending predictions never queued or queued long ago, and running ones that were
        abandoned (a worker killed mid-task): what the sweep re-queues."""
        cutoff = timezone.now() - older_than
        return self.filter(
            Q(status=Status.PENDING, queued_at__isnull=True)
            | Q(status=Status.PENDING, queued_at__lt=cutoff)
            | Q(status=Status.RUNNING, started_at__lt=cutoff)
        )

    def release_abandoned_by(self, worker: str) -> list[int]:
        """Put back to pending what ``worker`` was running: called as that worker starts, when
        nothing can still be running under its name (it was killed mid-batch). Returns the ids."""
        if not worker:
            return []
        ids = list(self.filter(status=Status.RUNNING, worker=worker).values_list("pk", flat=True))
        self.filter(pk__in=ids, status=Status.RUNNING).update(
            status=Status.PENDING, queued_at=None, error=f"{worker} stopped while running it; queued again"
        )
        return ids


class Prediction(models.Model):
    painting = models.ForeignKey("gallery.Painting", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    label = models.CharField(max_length=32, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    probabilities = models.JSONField(default=dict, blank=True)
    # float32 penultimate features; bytes, not JSON: 2 KB a row, read back with numpy in one call
    embedding = models.BinaryField(null=True, blank=True)
    gradcam = models.FileField(upload_to="gradcam/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    inference_ms = models.FloatField(null=True, blank=True)
    # The Celery worker (its node name) that claimed it: a worker that restarts takes back at once
    # what it was running when it stopped, instead of leaving it to the sweep's timeout.
    worker = models.CharField(max_length=200, blank=True)

    objects = PredictionQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["painting", "model_version"], name="one_prediction_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.painting_id} by {self.model_version_id}: {self.status} {self.label}"

    @property
    def is_finished(self) -> bool:
        return self.status in (Status.DONE, Status.FAILED)

    def mark_failed(self, reason: str) -> None:
        self.status, self.error, self.finished_at = Status.FAILED, reason[:2000], timezone.now()
        self.save(update_fields=["status", "error", "finished_at"])

    def embedding_vector(self) -> np.ndarray | None:
        return None if self.embedding is None else np.frombuffer(bytes(self.embedding), dtype=np.float32)

    def sorted_probabilities(self) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])

    def similar(self, k: int = 6) -> list[tuple[int, float]]:
        """(painting id, cosine similarity) of the k nearest paintings by this version's embeddings
        (classifier.similarity keeps them in memory, up to date, per process)."""
        from classifier.similarity import index_for

        me = self.embedding_vector()
        if me is None:
            return []
        return index_for(self.model_version_id).nearest(me, k, exclude_painting=self.painting_id)


def request_prediction(painting, model_version: ModelVersion | None = None) -> Prediction | None:
    """Make sure ``painting`` has a prediction by ``model_version`` (default: the active one) and
    queue it after the transaction commits. Returns None when no model is active: the upload waits,
    and ``manage.py classify --pending`` (or activating a model) picks it up later."""
    model_version = model_version or ModelVersion.objects.active()
    if model_version is None:
        return None
    prediction, _ = Prediction.objects.get_or_create(painting=painting, model_version=model_version)
    if not prediction.is_finished:
        transaction.on_commit(lambda: enqueue(prediction.pk))
    return prediction


def enqueue(prediction_id: int) -> bool:
    """Send the task to the broker; when the broker is down the prediction stays pending (with no
    ``queued_at``) and the periodic sweep re-queues it. Never raises: an upload must not fail
    because Redis is down."""
    from classifier.tasks import classify_painting

    try:
        classify_painting.apply_async((prediction_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds of connection errors
        log.warning("broker unavailable, prediction %s left pending for the sweep: %s", prediction_id, exc)
        return False
    Prediction.objects.filter(pk=prediction_id, status=Status.PENDING).update(queued_at=timezone.now())
    return True


def enqueue_many(prediction_ids) -> int:
    """``enqueue`` for many predictions (activating a version): one task each (a task claims a batch
    of pending predictions, the others then find theirs done and return), ``queued_at`` set in one
    UPDATE. At the first broker failure the rest stay pending for the sweep instead of each waiting
    on a dead broker. Returns how many were sent."""
    from classifier.tasks import classify_painting

    sent = []
    for pk in prediction_ids:
        try:
            classify_painting.apply_async((pk,), retry=False)
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds of connection errors
            log.warning(
                "broker unavailable; %d prediction(s) left pending for the sweep: %s",
                len(prediction_ids) - len(sent),
                exc,
            )
            break
        sent.append(pk)
    for start in range(0, len(sent), 1000):
        Prediction.objects.filter(pk__in=sent[start : start + 1000], status=Status.PENDING).update(
            queued_at=timezone.now()
        )
    return len(sent)
