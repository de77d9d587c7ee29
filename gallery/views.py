"""Gallery pages (placeholders until the pages land)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from gallery.models import Painting


def painting_list(request: HttpRequest) -> HttpResponse:
    return render(request, "gallery/home.html")


def painting_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse(str(get_object_or_404(Painting, pk=pk)))


def prediction_status(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponse("status")


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    return HttpResponse("upload")
