"""REST API for paintings: browse with the gallery's filters, read one, upload one.

Nothing here is written twice: the list is ``Painting.objects.browse()`` (the gallery page's
filters) and an upload goes through ``gallery.uploads.save_painting`` (the upload page's checks
and atomic save). Curators relabel through ``relabel`` actions validated by the pages' own forms
(``gallery.forms_curation``); PUT, PATCH and DELETE answer 405.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

from classifier.api import NestedPredictionSerializer
from classifier.models import Prediction, Status
from gallery.forms_curation import BulkRelabelForm, RelabelForm
from gallery.models import LabelChange, Painting
from gallery.permissions import IsCurator
from gallery.uploads import UploadRefused, save_painting

# Where the active model version's prediction lands on each painting (a list of zero or one).
ACTIVE_PREDICTIONS = "active_predictions"


def active_prediction_prefetch() -> Prefetch:
    """One query for the whole page: each painting's prediction by the active model version."""
    return Prefetch(
        "predictions",
        queryset=Prediction.objects.filter(model_version__is_active=True).defer("embedding"),
        to_attr=ACTIVE_PREDICTIONS,
    )


class PaintingSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    # Read-only FileFields answer absolute URLs (the request is in the serializer's context).
    image = serializers.FileField(read_only=True)
    thumbnail = serializers.FileField(read_only=True, allow_null=True)
    prediction = serializers.SerializerMethodField()

    class Meta:
        model = Painting
        fields = [
            "id",
            "url",
            "title",
            "artist",
            "period",
            "source",
            "license",
            "label",
            "split",
            "width",
            "height",
            "image",
            "thumbnail",
            "created",
            "prediction",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, painting: Painting) -> str:
        """The painting's page on the site."""
        request = self.context.get("request")
        path = painting.get_absolute_url()
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(NestedPredictionSerializer(allow_null=True))
    def get_prediction(self, painting: Painting) -> dict | None:
        """The prediction by the active model version; null when there is none (yet)."""
        if not hasattr(painting, ACTIVE_PREDICTIONS):
            prefetch_related_objects([painting], active_prediction_prefetch())
        found = getattr(painting, ACTIVE_PREDICTIONS)
        return NestedPredictionSerializer(found[0], context=self.context).data if found else None


class PaintingUploadSerializer(serializers.ModelSerializer):
    """What an upload may carry. Only presence is checked for ``image``: what is accepted (format,
    size, pixels, damage) is decided by ``save_painting``, the same as on the upload page."""

    image = serializers.FileField(write_only=True, allow_empty_file=True, use_url=False)

    class Meta:
        model = Painting
        # The metadata's limits (max_length) come from the model's fields, as a ModelForm's would.
        fields = ["image", "title", "artist", "period", "source", "license"]


class LabelChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = LabelChange
        fields = ["id", "painting", "old_label", "new_label", "changed_by", "changed_at", "reason", "reverts"]
        read_only_fields = fields


class RelabelRequestSerializer(serializers.Serializer):
    """A curated label to set (documents the body; the checks are gallery.forms_curation's)."""

    label = serializers.CharField(
        allow_blank=True,
        allow_null=True,
        help_text="A class name: 1-32 lower-case letters, digits, '-' or '_'; a new class such as kr is "
        "welcome. Empty or null clears the label.",
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class BulkRelabelRequestSerializer(RelabelRequestSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="The paintings to relabel.")


def _relabel_form_data(data) -> dict:
    """The pages' form fields from an API body: an empty or null label clears (``clear``)."""
    label = data.get("label")
    return {"label": label or "", "reason": data.get("reason") or "", "clear": not label}


def _form_errors(form) -> dict:
    return {name: list(errors) for name, errors in form.errors.items()}


_LABEL_REQUIRED = {"label": ["This field is required; send an empty label to clear it."]}


class UploadRateThrottle(ScopedRateThrottle):
    """ScopedRateThrottle, reading the rate at request time: DRF copies DEFAULT_THROTTLE_RATES onto
    the class at import, so a changed setting (an override in a test) would otherwise be ignored."""

    @property
    def THROTTLE_RATES(self) -> dict:  # noqa: N802 - the name DRF's SimpleRateThrottle reads
        return api_settings.DEFAULT_THROTTLE_RATES


_BROWSE_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description="Words in the title or the artist."),
    OpenApiParameter("predicted", OpenApiTypes.STR, description="The active model's label, e.g. cn."),
    OpenApiParameter("label", OpenApiTypes.STR, description="The curated label, e.g. jp."),
    OpenApiParameter("agreement", OpenApiTypes.STR, enum=["agree", "disagree", "unlabelled"]),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=[*Status.values, "none"],
        description="The active model's prediction status; none: not predicted.",
    ),
    OpenApiParameter("min_conf", OpenApiTypes.FLOAT, description="Lowest confidence, 0-1 or 0-100."),
    OpenApiParameter("max_conf", OpenApiTypes.FLOAT, description="Highest confidence, 0-1 or 0-100."),
    OpenApiParameter("sort", OpenApiTypes.STR, enum=["newest", "oldest", "confidence", "-confidence"]),
]


@extend_schema_view(list=extend_schema(parameters=_BROWSE_PARAMETERS))
class PaintingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = PaintingSerializer
    queryset = Painting.objects.all()
    throttle_scope = "uploads"
    # Only POST reads a body, and an upload is a file: multipart (urlencoded then misses the file).
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Painting]:
        if self.action == "list":
            qs = Painting.objects.browse(self.request.query_params)
        else:
            qs = Painting.objects.all()
        return qs.prefetch_related(active_prediction_prefetch())

    def get_throttles(self):
        # Only uploads are throttled: browsing stays free.
        return [UploadRateThrottle()] if self.action == "create" else super().get_throttles()

    @extend_schema(
        request={"multipart/form-data": PaintingUploadSerializer},
        responses={
            201: OpenApiResponse(PaintingSerializer, description="A new painting; its prediction is queued."),
            200: OpenApiResponse(PaintingSerializer, description="Uploaded before: that painting."),
            400: OpenApiResponse(
                inline_serializer(
                    "UploadRefused", {"image": serializers.ListField(child=serializers.CharField())}
                ),
                description="Refused, and nothing stored: why, in words for the person who uploaded it.",
            ),
        },
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        upload = PaintingUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        meta = dict(upload.validated_data)
        image = meta.pop("image")
        try:
            painting, created = save_painting(image.read(), image.name, request.user, **meta)
        except UploadRefused as refused:
            raise serializers.ValidationError({"image": refused.messages}) from None
        body = self.get_serializer(painting).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="paintings_relabel",
        request=RelabelRequestSerializer,
        responses={
            200: inline_serializer(
                "RelabelResult",
                {
                    "changed": serializers.BooleanField(),
                    "change": LabelChangeSerializer(allow_null=True),
                    "painting": PaintingSerializer(),
                },
            ),
            400: OpenApiResponse(description="The label is not a class name; nothing changed."),
        },
        description="Set or clear the curated label (curators). Writes one LabelChange unless unchanged.",
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[IsCurator],
        parser_classes=[JSONParser, FormParser, MultiPartParser],
    )
    def relabel(self, request: Request, pk=None) -> Response:
        painting = self.get_object()
        if "label" not in request.data:
            return Response(_LABEL_REQUIRED, status=status.HTTP_400_BAD_REQUEST)
        form = RelabelForm(_relabel_form_data(request.data), class_names=[])
        if not form.is_valid():
            return Response(_form_errors(form), status=status.HTTP_400_BAD_REQUEST)
        change = form.save(painting, by=request.user)
        body = {
            "changed": change is not None,
            "change": LabelChangeSerializer(change).data if change else None,
            "painting": self.get_serializer(painting).data,
        }
        return Response(body)

    @extend_schema(
        operation_id="paintings_bulk_relabel",
        request=BulkRelabelRequestSerializer,
        responses={
            200: inline_serializer(
                "BulkRelabelResult",
                {
                    "changed": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                    "changes": LabelChangeSerializer(many=True),
                },
            ),
            400: OpenApiResponse(description="A label or an id is refused; nothing changed."),
        },
        description="One label for several paintings (curators): one LabelChange each, all or none.",
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="relabel",
        permission_classes=[IsCurator],
        parser_classes=[JSONParser, FormParser, MultiPartParser],
    )
    def bulk_relabel(self, request: Request) -> Response:
        if "label" not in request.data:
            return Response(_LABEL_REQUIRED, status=status.HTTP_400_BAD_REQUEST)
        data = request.data
        ids = data.getlist("ids") if hasattr(data, "getlist") else data.get("ids")
        form = BulkRelabelForm({**_relabel_form_data(data), "ids": ids}, class_names=[])
        if not form.is_valid():
            return Response(_form_errors(form), status=status.HTTP_400_BAD_REQUEST)
        result = form.save(by=request.user)
        body = {
            "changed": len(result.changes),
            "unchanged": result.unchanged,
            "changes": LabelChangeSerializer(result.changes, many=True).data,
        }
        return Response(body)
