"""Gallery views."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    """Landing page; the gallery itself comes with the next issue."""
    return render(request, "gallery/home.html")
