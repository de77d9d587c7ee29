from django.urls import path

from gallery import views, views_curation, views_datasets

app_name = "gallery"

urlpatterns = [
    path("", views.painting_list, name="list"),
    path("paintings/<int:pk>/", views.painting_detail, name="detail"),
    path("paintings/<int:pk>/status/", views.prediction_status, name="status"),
    path("upload/", views.upload, name="upload"),
    # Curation (curators): relabel, history, review queue, duplicates
    path("paintings/<int:pk>/relabel/", views_curation.relabel, name="relabel"),
    path("paintings/<int:pk>/accept/", views_curation.accept_prediction, name="accept_prediction"),
    path("labels/<int:pk>/revert/", views_curation.revert, name="revert_label"),
    path("relabel/", views_curation.bulk_relabel, name="bulk_relabel"),
    path("review/", views_curation.review, name="review"),
    path("duplicates/", views_curation.duplicates, name="duplicates"),
    path("duplicates/search/", views_curation.search_duplicates, name="search_duplicates"),
    path("duplicates/<int:pk>/merge/", views_curation.merge, name="merge_duplicates"),
    path("duplicates/<int:pk>/dismiss/", views_curation.dismiss, name="dismiss_duplicates"),
    # Datasets (curators): import, freeze, export
    path("datasets/", views_datasets.dataset_list, name="datasets"),
    path("datasets/import/", views_datasets.dataset_import, name="dataset_import"),
    path("datasets/<int:pk>/", views_datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/export/", views_datasets.dataset_export, name="dataset_export"),
    path(
        "datasets/<int:pk>/manifest.csv",
        views_datasets.manifest_download,
        {"fmt": "csv"},
        name="manifest_csv",
    ),
    path(
        "datasets/<int:pk>/manifest.jsonl",
        views_datasets.manifest_download,
        {"fmt": "jsonl"},
        name="manifest_jsonl",
    ),
    path("datasets/exports/<int:pk>/status/", views_datasets.export_status, name="export_status"),
    path("datasets/exports/<int:pk>/download/", views_datasets.export_download, name="export_download"),
]
