"""REST API for predictions and model versions (placeholder until the API lands)."""

from rest_framework import viewsets

from classifier.models import ModelVersion, Prediction


class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Prediction.objects.all()


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ModelVersion.objects.all()
