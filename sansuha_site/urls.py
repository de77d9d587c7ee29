"""URL configuration: pages from gallery/, the REST API, auth, i18n, admin."""

import re

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from classifier.api import ModelVersionViewSet, PredictionViewSet
from gallery.api import PaintingViewSet

router = DefaultRouter()
router.register("paintings", PaintingViewSet, basename="painting")
router.register("predictions", PredictionViewSet, basename="prediction")
router.register("model-versions", ModelVersionViewSet, basename="modelversion")

urlpatterns = [
    path("", include("gallery.urls")),
    path("models/", include("classifier.urls", namespace="models")),
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG or settings.SERVE_MEDIA:
    # `make run` and the compose file's single-host setup serve uploads from Django; a larger
    # deployment puts a web server or object storage in front of MEDIA_ROOT instead.
    # Not django's static(): it returns nothing when DEBUG is off.
    urlpatterns += [
        re_path(
            rf"^{re.escape(settings.MEDIA_URL.lstrip('/'))}(?P<path>.*)$",
            serve,
            {"document_root": settings.MEDIA_ROOT},
        )
    ]
