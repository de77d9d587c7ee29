"""The model versions pages (staff): versions side by side, one version's plots and report, "Activate"
and the progress of the re-classification that activating starts.

The numbers are read from ``ModelVersion.metrics`` (``ml.evaluate``'s metrics.json plus what training
added) and the plots from the run folder under MEDIA_ROOT; nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from classifier.models import ModelVersion
from gallery.permissions import staff_required

# The shortcut check's deliveries (ml.transforms.DELIVERIES), in words.
DELIVERIES = {
    "as_delivered": gettext_lazy("as delivered"),
    "reduced_224_jpeg75": gettext_lazy("reduced to 224 px, JPEG q75"),
    "upscaled_640_sharpened": gettext_lazy("upscaled to 640 px, sharpened"),
}


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _accuracy(m: dict) -> str:
    if "accuracy" not in m:
        return "—"
    low, high = m.get("accuracy_ci95", (None, None))
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if low is not None else ""
    return f"{100 * m['accuracy']:.1f}%{interval}"


def comparison(versions: list[ModelVersion]) -> list[dict]:
    """The side-by-side table: one row per measure, one cell per version (versions are columns).
    Classes are data: the per-class rows are the union of the versions' class names."""
    metrics = [v.metrics or {} for v in versions]
    rows: list[dict] = [
        {
            "label": _("Test accuracy [Wilson 95%]"),
            "cells": [_accuracy(m) for m in metrics],
            "key": "accuracy",
        },
        {"label": _("Test images"), "cells": [m.get("n", "—") for m in metrics]},
        {"label": _("Balanced accuracy"), "cells": [_pct(m.get("balanced_accuracy")) for m in metrics]},
        {"label": _("Macro-F1"), "cells": [_pct(m.get("macro_f1")) for m in metrics]},
    ]
    classes = sorted({c for v in versions for c in v.class_names})
    for c in classes:
        cells = []
        for m in metrics:
            pc = m.get("per_class", {}).get(c)
            cells.append(f"{_pct(pc['precision'])} / {_pct(pc['recall'])} / {_pct(pc['f1'])}" if pc else "—")
        rows.append(
            {"label": _("%(cls)s precision / recall / F1") % {"cls": c}, "cells": cells, "group": "class"}
        )
    for key, words in DELIVERIES.items():
        cells = []
        for m in metrics:
            r = m.get("shortcut_check", {}).get(key)
            if r is None:
                cells.append("—")
            elif key == "as_delivered":
                cells.append(_pct(r["accuracy"]))
            else:
                cells.append(f"{_pct(r['accuracy'])} ({0.0 - r['accuracy_drop_points']:+.1f})")
        rows.append({"label": _("Shortcut check: %(d)s") % {"d": words}, "cells": cells, "group": "shortcut"})
    cells = []
    for m in metrics:
        r = m.get("colour_check", {}).get("greyscale")
        # Balanced accuracy: plain accuracy hides the minority class, which is where colour matters.
        drop = r and r["balanced_accuracy_drop_points"]
        cells.append(f"{_pct(r['balanced_accuracy'])} ({0.0 - drop:+.1f})" if r else "—")
    rows.append(
        {"label": _("Colour check: balanced accuracy in greyscale"), "cells": cells, "group": "shortcut"}
    )
    rows.append(
        {
            "label": _("Likely mislabelled"),
            "cells": [m.get("mislabel", {}).get("flagged", "—") for m in metrics],
        }
    )
    for row in rows:  # the template marks the active version's column
        row["columns"] = list(zip(row["cells"], [v.is_active for v in versions], strict=True))
    return rows


def _media_url(relative: str) -> str:
    return settings.MEDIA_URL + relative


def plots(version: ModelVersion) -> list[dict]:
    """The run folder's figures that exist, in reading order: curves, confusion, t-SNE, Grad-CAM per
    class, correct and wrong predictions."""
    base = version.artifacts_dir
    if not base:
        return []
    wanted = [
        ("loss_accuracy.png", _("Loss and accuracy per epoch")),
        ("eval/confusion_matrix.png", _("Confusion matrix (test split)")),
        ("eval/tsne.png", _("t-SNE of the penultimate features (test split)")),
    ]
    wanted += [
        (f"eval/gradcam_{c}.png", _("Grad-CAM, true class %(cls)s") % {"cls": c}) for c in version.class_names
    ]
    wanted += [
        ("eval/correct_preds.png", _("Correct predictions")),
        ("eval/wrong_preds.png", _("Wrong predictions, most confident first")),
    ]
    root = Path(settings.MEDIA_ROOT) / base
    return [
        {"title": title, "url": _media_url(f"{base}/{name}"), "name": name}
        for name, title in wanted
        if (root / name).is_file()
    ]


def _report_text(version: ModelVersion) -> str | None:
    if not version.artifacts_dir:
        return None
    path = Path(settings.MEDIA_ROOT) / version.artifacts_dir / "eval" / "classification_report.txt"
    return path.read_text(errors="replace") if path.is_file() else None


@require_GET
@staff_required
def model_list(request: HttpRequest) -> HttpResponse:
    versions = list(ModelVersion.objects.order_by("-created", "-pk"))
    active = next((v for v in versions if v.is_active), None)
    context = {
        "versions": versions,
        "rows": comparison(versions),
        "active": active,
        "progress": active.reclassification_progress() if active else None,
    }
    return render(request, "classifier/model_list.html", context)


@require_GET
@staff_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    m = version.metrics or {}
    base = version.artifacts_dir
    files = [
        (name, _media_url(f"{base}/{name}"))
        for name in (
            "eval/metrics.json",
            "eval/predictions.csv",
            "eval/classification_report.txt",
            "history.json",
        )
        if base and (Path(settings.MEDIA_ROOT) / base / name).is_file()
    ]
    context = {
        "version": version,
        "m": m,
        "per_class": [(c, m["per_class"][c]) for c in version.class_names if c in m.get("per_class", {})],
        "shortcut": [(DELIVERIES.get(k, k), r) for k, r in m.get("shortcut_check", {}).items()],
        "colour": m.get("colour_check", {}).get("greyscale"),
        "plots": plots(version),
        "report": _report_text(version),
        "files": files,
        "history": m.get("history", []),
        "evaluated": parse_datetime(m.get("evaluated_at", "")),
        # Only the active version is being classified: an earlier one's counts would read as stalled.
        "progress": version.reclassification_progress() if version.is_active else None,
    }
    return render(request, "classifier/model_detail.html", context)


@require_POST
@staff_required
def activate(request: HttpRequest, pk: int) -> HttpResponse:
    version = get_object_or_404(ModelVersion, pk=pk)
    queued = version.activate_and_reclassify()
    messages.success(
        request,
        _("%(name)s is now the active model; %(n)d painting(s) queued for classification by it.")
        % {"name": version.name, "n": queued},
    )
    return redirect("models:detail", pk=version.pk)


@require_GET
@staff_required
def progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the pages poll after "Activate": how many paintings this version has classified."""
    version = get_object_or_404(ModelVersion, pk=pk)
    return JsonResponse({"active": version.is_active, **version.reclassification_progress()})
