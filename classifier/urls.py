"""/models/: the model versions pages (staff)."""

from django.urls import path

from classifier import views

app_name = "models"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:pk>/", views.model_detail, name="detail"),
    path("<int:pk>/activate/", views.activate, name="activate"),
    path("<int:pk>/progress/", views.progress, name="progress"),
]
