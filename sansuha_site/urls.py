"""URL configuration for the Sansuha site."""

from django.contrib import admin
from django.urls import path

from gallery.views import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
]
