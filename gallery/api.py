"""REST API for paintings (placeholder until the API lands)."""

from rest_framework import viewsets

from gallery.models import Painting


class PaintingViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Painting.objects.all()
