"""REST API for predictions and model versions: read-only; the worker writes predictions, and model
versions are registered by ``manage.py`` commands, never over HTTP."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from classifier.models import ModelVersion, Prediction, Status


class NestedPredictionSerializer(serializers.ModelSerializer):
    """A prediction as it appears inside a painting (the contract's ``prediction`` object)."""

    probabilities = serializers.DictField(child=serializers.FloatField(), read_only=True)
    # DRF's FileField answers an absolute URL when the request is in the context, null when empty.
    gradcam = serializers.FileField(read_only=True, allow_null=True)

    class Meta:
        model = Prediction
        fields = ["id", "status", "label", "confidence", "probabilities", "gradcam", "error", "model_version"]
        read_only_fields = fields


class PredictionSerializer(NestedPredictionSerializer):
    """A prediction with the painting it is about and when it ran."""

    class Meta(NestedPredictionSerializer.Meta):
        fields = NestedPredictionSerializer.Meta.fields + [
            "painting",
            "created",
            "finished_at",
            "inference_ms",
        ]
        read_only_fields = fields


def _int_param(params, key: str) -> int | None:
    """An integer query parameter, or None when absent or malformed (ignored, as the gallery's
    filters ignore malformed values, rather than failing the request)."""
    try:
        return int(params.get(key, ""))
    except ValueError:
        return None


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("painting", OpenApiTypes.INT, description="Only this painting's predictions."),
            OpenApiParameter("model_version", OpenApiTypes.INT, description="Only this model version's."),
            OpenApiParameter("status", OpenApiTypes.STR, enum=Status.values),
        ]
    )
)
class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PredictionSerializer
    # The embedding is 2 KB of float32 per row and not part of the API.
    queryset = Prediction.objects.defer("embedding").order_by("-created", "-id")

    def get_queryset(self) -> QuerySet[Prediction]:
        qs = super().get_queryset()
        if self.action != "list":
            return qs
        params = self.request.query_params
        for key in ("painting", "model_version"):
            value = _int_param(params, key)
            if value is not None:
                qs = qs.filter(**{f"{key}_id": value})
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        return qs


class ModelVersionSerializer(serializers.ModelSerializer):
    class_names = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ModelVersion
        # No checkpoint: the weights are not handed out over the API.
        fields = ["id", "name", "arch", "class_names", "metrics", "created", "is_active"]
        read_only_fields = fields


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ModelVersionSerializer
    queryset = ModelVersion.objects.order_by("-created", "-id")
