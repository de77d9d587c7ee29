"""Paintings: the uploaded file, its thumbnail, metadata, and the curated label and split.

Class names are data: ``label`` is free text (``cn``, ``jp``, later ``kr``...), never a choice list.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

LABEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def normalize_label(label: str | None) -> str | None:
    """A curated label as stored: stripped, None when empty. Raises ValidationError for anything that
    is not a class name, so that pages, the API and the admin refuse the same labels for one reason."""
    label = (label or "").strip() or None
    if label is not None and not LABEL_RE.fullmatch(label):
        raise ValidationError(_("A class name is 1-32 lower-case letters, digits, '-' or '_'."))
    return label


class Margin(models.Func):
    """Top-1 minus top-2 probability of a ``{class: p}`` JSON object, for any number of classes (one
    class alone: its probability); null when the object is empty. Computed in the database so that the
    review queue orders every row, not one page. PostgreSQL and SQLite (the default for ``make run``)."""

    arity = 1
    output_field = models.FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = (
            "(SELECT s.p[1] - COALESCE(s.p[2], 0) FROM (SELECT array_agg(e.value::float8 ORDER BY "
            "e.value::float8 DESC) AS p FROM jsonb_each_text(%(expressions)s) AS e) AS s)"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        # The object is read twice (the maximum, then the runner-up), so its parameters are too.
        template = (
            "(SELECT MAX(CAST(e.value AS REAL)) - COALESCE((SELECT CAST(f.value AS REAL) FROM json_each({x}) "
            "AS f ORDER BY CAST(f.value AS REAL) DESC LIMIT 1 OFFSET 1), 0) FROM json_each({x}) AS e)"
        )
        return template.format(x=sql), (*params, *params)


class Split(models.TextChoices):
    TRAIN = "train", _("train")
    VAL = "val", _("validation")
    TEST = "test", _("test")
    UNASSIGNED = "unassigned", _("unassigned")


class PaintingQuerySet(models.QuerySet):
    def with_prediction(self, model_version=None) -> PaintingQuerySet:
        """Annotate each painting with its prediction by ``model_version`` (default: the active one):
        ``pred_label``, ``pred_confidence``, ``pred_status``, ``pred_overlay``. One query, no N+1."""
        from classifier.models import ModelVersion, Prediction

        if model_version is None:
            model_version = ModelVersion.objects.active()
        if model_version is None:
            return self.annotate(
                pred_label=models.Value(None, models.CharField()),
                pred_confidence=models.Value(None, models.FloatField()),
                pred_status=models.Value(None, models.CharField()),
                pred_overlay=models.Value(None, models.CharField()),
            )
        preds = Prediction.objects.filter(painting=OuterRef("pk"), model_version=model_version)
        return self.annotate(
            pred_label=Subquery(preds.values("label")[:1]),
            pred_confidence=Subquery(preds.values("confidence")[:1]),
            pred_status=Subquery(preds.values("status")[:1]),
            pred_overlay=Subquery(preds.values("gradcam")[:1]),
        )

    def search(self, text: str) -> PaintingQuerySet:
        text = (text or "").strip()
        if not text:
            return self
        return self.filter(Q(title__icontains=text) | Q(artist__icontains=text))

    def class_names(self) -> list[str]:
        """The classes to filter by: the active model's class names and every curated label in use
        (class names are data, so the choices come from the rows, never from code)."""
        from classifier.models import ModelVersion

        active = ModelVersion.objects.active()
        names = set(active.class_names if active else [])
        labels = self.exclude(label__isnull=True).exclude(label="").order_by().values_list("label", flat=True)
        names.update(labels.distinct())
        return sorted(names)

    def similar_to(self, prediction, k: int = 6) -> list[tuple[Painting, float]]:
        """(painting, cosine similarity) of the k paintings nearest to ``prediction``'s embedding,
        nearest first, in two queries whatever k is."""
        pairs = prediction.similar(k=k)
        found = self.in_bulk([pk for pk, _ in pairs])
        return [(found[pk], similarity) for pk, similarity in pairs if pk in found]

    def browse(self, params) -> PaintingQuerySet:
        """The gallery's filters, shared by the pages and the API. ``params`` is a QueryDict-like
        mapping; unknown or malformed values are ignored rather than failing the page.

        q, predicted, label, agreement (agree|disagree|unlabelled), status, min_conf, max_conf,
        sort (newest|oldest|confidence|-confidence)
        """
        qs = self.with_prediction().search(params.get("q", ""))
        if params.get("predicted"):
            qs = qs.filter(pred_label=params["predicted"])
        if params.get("label"):
            qs = qs.filter(label=params["label"])
        agreement = params.get("agreement")
        if agreement == "agree":
            qs = qs.filter(label__isnull=False, pred_label=F("label"))
        elif agreement == "disagree":
            # Only a finished prediction can disagree: pending and failed ones carry an empty label.
            qs = qs.filter(label__isnull=False, pred_status="done").exclude(pred_label=F("label"))
        elif agreement == "unlabelled":
            qs = qs.filter(label__isnull=True)
        if params.get("status"):
            status = params["status"]
            qs = qs.filter(pred_status__isnull=True) if status == "none" else qs.filter(pred_status=status)
        for key, lookup in (("min_conf", "pred_confidence__gte"), ("max_conf", "pred_confidence__lte")):
            try:
                value = float(params.get(key, ""))
            except ValueError:
                continue
            qs = qs.filter(**{lookup: value / 100 if value > 1 else value})
        order = {
            "newest": ("-created", "-id"),
            "oldest": ("created", "id"),
            "confidence": (F("pred_confidence").asc(nulls_last=True), "-id"),
            "-confidence": (F("pred_confidence").desc(nulls_last=True), "-id"),
        }.get(params.get("sort") or "newest", ("-created", "-id"))
        return qs.order_by(*order)

    def with_margin(self, model_version=None) -> PaintingQuerySet:
        """Annotate ``pred_margin`` (top-1 minus top-2 probability of the finished prediction by
        ``model_version``, default the active one; null without one) and ``pred_probabilities``."""
        from classifier.models import ModelVersion, Prediction

        if model_version is None:
            model_version = ModelVersion.objects.active()
        if model_version is None:
            return self.annotate(
                pred_margin=models.Value(None, models.FloatField()),
                pred_probabilities=models.Value(None, models.JSONField()),
            )
        done = Prediction.objects.filter(painting=OuterRef("pk"), model_version=model_version, status="done")
        return self.annotate(
            pred_margin=Subquery(done.annotate(margin=Margin("probabilities")).values("margin")[:1]),
            pred_probabilities=Subquery(done.values("probabilities")[:1]),
        )

    def review(self, order: str) -> PaintingQuerySet:
        """The curators' review queue in one of ``REVIEW_ORDERS`` (unknown: ``margin``):

        - margin: the active model's least certain finished predictions first (smallest top-1 minus
          top-2 probability);
        - disagree: curated label and finished prediction differ, the most confident prediction first
          (a confident model against the label is the likeliest labelling error);
        - mislabelled: labelled paintings by ``mislabel_score``, highest first, unscored last;
        - unlabelled: no curated label, the most confident prediction first (quick to accept).
        """
        qs = self.with_prediction().with_margin()
        unlabelled = Q(label__isnull=True) | Q(label="")
        if order == "disagree":
            qs = qs.exclude(unlabelled).filter(pred_status="done").exclude(pred_label=F("label"))
            return qs.order_by(F("pred_confidence").desc(nulls_last=True), "-id")
        if order == "mislabelled":
            return qs.exclude(unlabelled).order_by(F("mislabel_score").desc(nulls_last=True), "-id")
        if order == "unlabelled":
            return qs.filter(unlabelled).order_by(F("pred_confidence").desc(nulls_last=True), "-id")
        return qs.filter(pred_margin__isnull=False).order_by(F("pred_margin").asc(), "-id")


REVIEW_ORDERS = ("margin", "disagree", "mislabelled", "unlabelled")


class Painting(models.Model):
    image = models.FileField(_("image"), upload_to="paintings/%Y/%m/")
    thumbnail = models.FileField(_("thumbnail"), upload_to="thumbs/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16, blank=True)
    title = models.CharField(_("title"), max_length=300, blank=True)
    artist = models.CharField(_("artist"), max_length=200, blank=True)
    period = models.CharField(_("period"), max_length=100, blank=True)
    source = models.CharField(_("source"), max_length=200, blank=True)
    license = models.CharField(_("licence"), max_length=200, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="paintings"
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    label = models.CharField(_("curated label"), max_length=32, null=True, blank=True, db_index=True)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.UNASSIGNED)
    # 128-bit difference hash (hex; ml.split.dhash) for near-duplicate detection, and the group
    # (the same work) a manifest gave it; both keep a work inside one split.
    dhash = models.CharField(max_length=32, blank=True, db_index=True)
    group = models.CharField(max_length=200, blank=True)
    # Confident-learning score from the latest training's out-of-fold probabilities:
    # 1 - p(curated label). High = likely mislabelled. Null until a training computed it.
    mislabel_score = models.FloatField(null=True, blank=True)

    objects = PaintingQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["-created", "-id"])]

    def __str__(self) -> str:
        return self.title or f"painting {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("gallery:detail", args=[self.pk])

    @property
    def display_title(self) -> str:
        return self.title or _("Untitled")

    @property
    def prediction_disagrees(self) -> bool:
        """On a row from ``with_prediction()``: the curated label and the active model's finished
        prediction name different classes (what a curator should look at first)."""
        pred_label = getattr(self, "pred_label", None)
        return bool(
            self.label
            and pred_label
            and getattr(self, "pred_status", None) == "done"
            and pred_label != self.label
        )

    def active_prediction(self):
        """This painting's prediction by the active model version, or None."""
        return (
            self.predictions.filter(model_version__is_active=True)
            .select_related("model_version")
            .defer("embedding")
            .first()
        )

    @transaction.atomic
    def relabel(self, label: str | None, by=None, reason: str = "") -> LabelChange | None:
        """Set the curated label, writing the audit trail. None/"" clears it. A no-op change writes
        nothing. Labels are data: any non-empty class name is accepted (e.g. a new "kr")."""
        label = normalize_label(label)
        locked = Painting.objects.select_for_update().get(pk=self.pk)
        if locked.label == label:
            return None
        change = LabelChange.objects.create(
            painting=self,
            old_label=locked.label,
            new_label=label,
            changed_by=by if getattr(by, "is_authenticated", False) else None,
            reason=reason[:500],
        )
        Painting.objects.filter(pk=self.pk).update(label=label)
        self.label = label
        return change

    def accept_prediction(self, by=None) -> LabelChange | None:
        """Take the active model's finished prediction as the curated label (the review queue's one
        click). Raises ValidationError when there is no finished prediction to take."""
        prediction = self.active_prediction()
        if prediction is None or prediction.status != "done" or not prediction.label:
            raise ValidationError(_("There is no finished prediction to accept."))
        reason = f"accepted the prediction of model {prediction.model_version.name}"
        return self.relabel(prediction.label, by=by, reason=reason)

    def prediction_history(self):
        """Its predictions by every model version, newest version first."""
        return (
            self.predictions.select_related("model_version")
            .defer("embedding")
            .order_by("-model_version__created", "-id")
        )


class LabelChange(models.Model):
    """One curated-label change: the audit trail. A revert is itself a change."""

    painting = models.ForeignKey(Painting, on_delete=models.CASCADE, related_name="label_changes")
    old_label = models.CharField(max_length=32, null=True, blank=True)
    new_label = models.CharField(max_length=32, null=True, blank=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)
    reason = models.CharField(max_length=500, blank=True)
    reverts = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.painting_id}: {self.old_label} -> {self.new_label}"

    def revert(self, by=None, reason: str = "") -> LabelChange | None:
        change = self.painting.relabel(self.old_label, by=by, reason=reason or f"revert of change {self.pk}")
        if change:
            LabelChange.objects.filter(pk=change.pk).update(reverts=self)
            change.reverts = self
        return change


class DuplicatePair(models.Model):
    """Two paintings that look like the same work, for a curator to merge or dismiss."""

    class Kind(models.TextChoices):
        EXACT = "exact", _("identical file")
        DHASH = "dhash", _("near-identical image")
        EMBEDDING = "embedding", _("similar features")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        MERGED = "merged", _("merged")
        DISMISSED = "dismissed", _("dismissed")

    # SET_NULL: a merge deletes one painting, and the pair stays as the record of that merge.
    a = models.ForeignKey(Painting, null=True, on_delete=models.SET_NULL, related_name="+")
    b = models.ForeignKey(Painting, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=500, blank=True, help_text="what a merge kept and removed")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    distance = models.FloatField(help_text="dHash bits apart, or 1 - cosine similarity")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["distance", "id"]
        constraints = [models.UniqueConstraint(fields=["a", "b"], name="one_pair_per_two_paintings")]

    def __str__(self) -> str:
        return f"{self.a_id} ~ {self.b_id} ({self.kind}, {self.status})"

    # Descriptive fields a merge copies from the removed painting when the kept one has none.
    MERGED_FIELDS = ("title", "artist", "period", "source", "license", "group", "uploaded_by")

    @transaction.atomic
    def merge(self, keep: Painting, by=None) -> Painting:
        """Keep one painting of the pair and fold the other into it: the other's label history moves
        to the kept one, the kept label stays (the other's is taken, as a LabelChange, when the kept
        one has none), missing metadata is copied, and the other painting goes with its files.

        The pair stays, ``merged``, with a note naming both paintings: the record of the merge. The
        removed painting's other open pairs move to the kept one (or go, when they would pair it
        with itself or repeat a pair). Refuses a pair already decided, a painting outside the pair,
        and removing a painting that a frozen dataset version holds."""
        pair = DuplicatePair.objects.select_for_update().get(pk=self.pk)
        if pair.status != self.Status.OPEN:
            raise ValidationError(_("This pair was already decided (%(status)s).") % {"status": pair.status})
        if keep.pk not in (pair.a_id, pair.b_id):
            raise ValidationError(_("Painting %(id)s is not part of this pair.") % {"id": keep.pk})
        locked = Painting.objects.select_for_update().in_bulk([pair.a_id, pair.b_id])
        kept, other = locked[keep.pk], locked[pair.b_id if keep.pk == pair.a_id else pair.a_id]
        held_by = other.dataset_items.select_related("dataset_version").first()
        if held_by:
            raise ValidationError(
                _("Painting %(id)s is in dataset version %(version)s, which keeps it; keep that one instead.")
                % {"id": other.pk, "version": held_by.dataset_version.name}
            )

        LabelChange.objects.filter(painting=other).update(painting=kept)
        if not kept.label and other.label:
            kept.relabel(other.label, by=by, reason=f"taken from painting {other.pk} when merging duplicates")
        copied = [name for name in self.MERGED_FIELDS if not getattr(kept, name) and getattr(other, name)]
        for name in copied:
            setattr(kept, name, getattr(other, name))
        if copied:
            kept.save(update_fields=copied)

        for field, other_field in (("a", "b"), ("b", "a")):
            for moved in DuplicatePair.objects.filter(**{field: other}, status=self.Status.OPEN).exclude(
                pk=self.pk
            ):
                partner = getattr(moved, f"{other_field}_id")
                ids = sorted([kept.pk, partner])
                exists = DuplicatePair.objects.filter(a_id=ids[0], b_id=ids[1]).exclude(pk=moved.pk).exists()
                if partner == kept.pk or exists:
                    moved.delete()
                else:
                    DuplicatePair.objects.filter(pk=moved.pk).update(a_id=ids[0], b_id=ids[1])
        self.note = (
            f"kept painting {kept.pk} ({kept.title or 'untitled'}); removed painting {other.pk} "
            f"({other.title or 'untitled'}, sha256 {other.sha256[:12]})"
        )[:500]
        other.delete()  # its files go after commit (gallery.signals, classifier.signals)

        self.status, self.decided_at = self.Status.MERGED, timezone.now()
        self.decided_by = by if getattr(by, "is_authenticated", False) else None
        DuplicatePair.objects.filter(pk=self.pk).update(
            status=self.status, decided_at=self.decided_at, decided_by=self.decided_by, note=self.note
        )
        keep.refresh_from_db()
        return kept

    def dismiss(self, by=None) -> None:
        """Not duplicates: the pair stays, dismissed, so that the next search does not bring it back."""
        updated = DuplicatePair.objects.filter(pk=self.pk, status=self.Status.OPEN).update(
            status=self.Status.DISMISSED,
            decided_by=by if getattr(by, "is_authenticated", False) else None,
            decided_at=timezone.now(),
        )
        if not updated:
            raise ValidationError(_("This pair was already decided."))
        self.refresh_from_db()


class DatasetVersion(models.Model):
    """A frozen curated set: which paintings, with which labels and splits."""

    name = models.CharField(max_length=100, unique=True)
    seed = models.IntegerField(default=0)
    val_fraction = models.FloatField(default=0.15)
    test_fraction = models.FloatField(default=0.15)
    class_names = models.JSONField(default=list)
    counts = models.JSONField(default=dict, help_text="{split: {class: n}}")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created = models.DateTimeField(auto_now_add=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name


class DatasetItem(models.Model):
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    painting = models.ForeignKey(Painting, on_delete=models.PROTECT, related_name="dataset_items")
    label = models.CharField(max_length=32)
    split = models.CharField(max_length=16, choices=Split.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset_version", "painting"], name="one_item_per_painting")
        ]


class DatasetExport(models.Model):
    """A zip of a dataset version in the study's layout, built by the worker."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="exports")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    done_items = models.PositiveIntegerField(default=0)
    total_items = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to="exports/", blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)
