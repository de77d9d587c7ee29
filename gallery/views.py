"""Gallery pages: the list with its filters, a painting's page, its prediction status, uploads.

Thin views: filtering is ``Painting.objects.browse()`` (shared with the API), uploads go through
``gallery.uploads.accept_uploads`` (shared with the API and the import commands).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from gallery.forms import BrowseForm, UploadForm
from gallery.models import Painting
from gallery.uploads import accept_uploads
from gallery.views_curation import curation_context

PAGE_SIZE = 24


@require_GET
def painting_list(request: HttpRequest) -> HttpResponse:
    class_names = Painting.objects.class_names()
    form = BrowseForm(request.GET, class_names=class_names)
    page = Paginator(Painting.objects.browse(request.GET), PAGE_SIZE).get_page(request.GET.get("page"))
    page_range = page.paginator.get_elided_page_range(page.number, on_each_side=1, on_ends=1)
    # class_names: the curators' bulk bar offers the same classes as the filters.
    context = {"form": form, "page": page, "page_range": page_range, "class_names": class_names}
    return render(request, "gallery/painting_list.html", context)


def detail_context(painting: Painting) -> dict:
    """What a painting's page shows (also when the relabel form comes back with errors)."""
    prediction = painting.active_prediction()
    return {
        "painting": painting,
        "prediction": prediction,
        "history": painting.prediction_history(),
        "similar": Painting.objects.similar_to(prediction, k=6) if prediction else [],
    }


@require_GET
def painting_detail(request: HttpRequest, pk: int) -> HttpResponse:
    painting = get_object_or_404(Painting.objects.select_related("uploaded_by"), pk=pk)
    context = detail_context(painting) | curation_context(request, painting)
    return render(request, "gallery/painting_detail.html", context)


@require_GET
def prediction_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the detail page polls while the active model's prediction is pending or running."""
    prediction = get_object_or_404(Painting, pk=pk).active_prediction()
    if prediction is None:
        return JsonResponse({"status": "none", "label": None, "confidence": None, "finished": None})
    return JsonResponse(
        {
            "status": prediction.status,
            "label": prediction.label or None,
            "confidence": prediction.confidence,
            "finished": prediction.finished_at.isoformat() if prediction.finished_at else None,
        }
    )


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    results = []
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            results = accept_uploads(form.cleaned_data["files"], request.user, **form.metadata())
            # The metadata stays in the form for the next batch; the file input empties itself.
    else:
        form = UploadForm()
    context = {
        "form": form,
        "results": results,
        "max_bytes": settings.UPLOAD_MAX_BYTES,
        # Django refuses a request with more files than this before the view runs; the page's
        # script says so before sending.
        "max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES,
    }
    return render(request, "gallery/upload.html", context)
