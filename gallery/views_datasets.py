"""Dataset pages for curators: import a zip, freeze the curated set, export a version.

Thin views over ``gallery.datasets`` (shared with ``manage.py import_dataset`` / ``freeze_dataset``
and the worker's export task).
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from gallery import datasets
from gallery.forms_datasets import FreezeForm, ImportDatasetForm
from gallery.models import DatasetExport, DatasetVersion, Painting, Split
from gallery.permissions import curator_required
from ml.data import SPLITS

# The page imports in the request: large sets belong to `manage.py import_dataset`.
PAGE_IMPORT_MAX_FILES = 5000
PAGE_IMPORT_MAX_BYTES = 2 * 2**30


def _table(counts: dict[str, dict[str, int]], class_names: list[str], splits) -> dict:
    """Rows per split and a total row, for the counts tables."""
    rows = []
    for split in splits:
        values = [counts.get(split, {}).get(c, 0) for c in class_names]
        rows.append(
            {"split": split, "cells": list(zip(class_names, values, strict=True)), "total": sum(values)}
        )
    totals = [sum(r["cells"][i][1] for r in rows) for i in range(len(class_names))]
    return {
        "class_names": class_names,
        "rows": rows,
        "totals": list(zip(class_names, totals, strict=True)),
        "total": sum(totals),
    }


def _curated_counts() -> dict:
    """The curated set as it stands: labelled paintings per split (unassigned included) and class."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        Painting.objects.exclude(label__isnull=True)
        .exclude(label="")
        .order_by()
        .values("split", "label")
        .annotate(n=Count("id"))
    )
    for row in rows:
        counts.setdefault(row["split"], {})[row["label"]] = row["n"]
    class_names = sorted({c for by_class in counts.values() for c in by_class})
    return _table(counts, class_names, [*SPLITS, Split.UNASSIGNED])


@curator_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    """The versions, and the form that freezes the current curated set into a new one."""
    form = FreezeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            version = datasets.freeze(
                form.cleaned_data["name"],
                seed=form.cleaned_data["seed"],
                val=form.cleaned_data["val"],
                test=form.cleaned_data["test"],
                by=request.user,
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request,
                _("Dataset version %(name)s frozen: %(n)s paintings, %(new)s newly given a split.")
                % {"name": version.name, "n": version.items.count(), "new": version.newly_assigned},
            )
            return redirect("gallery:dataset_detail", pk=version.pk)
    versions = list(DatasetVersion.objects.select_related("created_by").annotate(n_items=Count("items")))
    for version in versions:
        version.table = _table(version.counts, version.class_names, SPLITS)
    context = {"form": form, "versions": versions, "curated": _curated_counts()}
    return render(request, "gallery/datasets/list.html", context, status=400 if form.errors else 200)


@curator_required
def dataset_import(request: HttpRequest) -> HttpResponse:
    """A zip of labelled folders, imported in this request (``import_dataset`` for big sets)."""
    report = None
    form = ImportDatasetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        archive = form.cleaned_data["archive"]
        try:
            report = datasets.import_dataset(
                archive,
                source=form.cleaned_data["source"],
                license=form.cleaned_data["license"],
                dry_run=form.cleaned_data["dry_run"],
                by=request.user,
                name=Path(archive.name).name,
                max_files=PAGE_IMPORT_MAX_FILES,
                max_bytes=PAGE_IMPORT_MAX_BYTES,
            )
        except datasets.ImportRefused as exc:
            form.add_error("archive", str(exc))
    context = {
        "form": form,
        "report": report,
        "counts": report.counts() if report else {},
        "totals": report.totals() if report else {},
        "max_files": PAGE_IMPORT_MAX_FILES,
    }
    return render(request, "gallery/datasets/import.html", context, status=400 if form.errors else 200)


@curator_required
@require_GET
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.select_related("created_by"), pk=pk)
    exports = version.exports.select_related("requested_by").order_by("-created")[:5]
    context = {
        "version": version,
        "table": _table(version.counts, version.class_names, SPLITS),
        "exports": exports,
        "n_items": version.items.count(),
    }
    return render(request, "gallery/datasets/detail.html", context)


@curator_required
@require_POST
def dataset_export(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(DatasetVersion, pk=pk)
    datasets.request_export(version, by=request.user)
    messages.info(request, _("The export is being built in the background; this page shows its progress."))
    return redirect("gallery:dataset_detail", pk=version.pk)


def _export_state(export: DatasetExport) -> dict:
    done = export.status == DatasetExport.Status.DONE and bool(export.file)
    return {
        "id": export.pk,
        "status": export.status,
        "done_items": export.done_items,
        "total_items": export.total_items,
        "percent": round(100 * export.done_items / export.total_items) if export.total_items else 0,
        "error": export.error,
        "download": reverse("gallery:export_download", args=[export.pk]) if done else None,
    }


@curator_required
@require_GET
def export_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the version page polls while an export is being built."""
    return JsonResponse(_export_state(get_object_or_404(DatasetExport, pk=pk)))


@curator_required
@require_GET
def export_download(request: HttpRequest, pk: int) -> FileResponse:
    export = get_object_or_404(DatasetExport, pk=pk, status=DatasetExport.Status.DONE)
    if not export.file or not export.file.storage.exists(export.file.name):
        raise Http404("The export's file is gone; build the export again.")
    return FileResponse(export.file.open("rb"), as_attachment=True, filename=Path(export.file.name).name)


@curator_required
@require_GET
def manifest_download(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    """The version's manifest alone, streamed from the database: no worker, no zip."""
    version = get_object_or_404(DatasetVersion, pk=pk)
    rows = datasets.manifest_rows(version)
    if fmt == "csv":
        response = StreamingHttpResponse(datasets.csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(datasets.jsonl_lines(rows), content_type="application/x-ndjson")
    filename = f"{slugify(version.name) or 'dataset'}-manifest.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
