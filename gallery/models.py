"""Paintings: the uploaded file, its thumbnail, metadata, and the curated label and split.

Class names are data: ``label`` is free text (``cn``, ``jp``, later ``kr``...), never a choice list.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils.translation import gettext_lazy as _


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
            qs = qs.filter(label__isnull=False, pred_label__isnull=False).exclude(pred_label=F("label"))
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
