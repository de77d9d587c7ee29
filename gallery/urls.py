from django.urls import path

from gallery import views

app_name = "gallery"

urlpatterns = [
    path("", views.painting_list, name="list"),
    path("paintings/<int:pk>/", views.painting_detail, name="detail"),
    path("paintings/<int:pk>/status/", views.prediction_status, name="status"),
    path("upload/", views.upload, name="upload"),
]
