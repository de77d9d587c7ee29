"""Curation pages, for curators only: relabelling (one painting, several at once, reverting a change),
the review queue and the duplicates page.

Thin views: the changes are model methods (``Painting.relabel``, ``Painting.accept_prediction``,
``LabelChange.revert``, ``DuplicatePair.merge``/``dismiss``), the choices are validated by the forms in
``gallery.forms_curation`` (shared with the API and the admin), the queue is ``Painting.objects.review()``.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from gallery.duplicates import EMBEDDING_MIN_COSINE, IN_PROCESS_LIMIT, find_duplicates
from gallery.forms_curation import BulkRelabelForm, RelabelForm
from gallery.models import REVIEW_ORDERS, DuplicatePair, LabelChange, Painting
from gallery.permissions import curator_required, is_curator
from ml.split import NEAR_DUPLICATE_BITS

REVIEW_PAGE_SIZE = 25
PAIRS_PAGE_SIZE = 20

# The review queue's orderings as the curator sees them: (key, name, what it shows).
REVIEW_CHOICES = [
    (
        "margin",
        gettext_lazy("Least certain"),
        gettext_lazy("The active model's closest calls first: the smallest gap between its top two classes."),
    ),
    (
        "disagree",
        gettext_lazy("Label ≠ prediction"),
        gettext_lazy("The curated label and the prediction differ; the most confident prediction first."),
    ),
    (
        "mislabelled",
        gettext_lazy("Likely mislabelled"),
        gettext_lazy(
            "Scored by the last training's cross-validation: how unlikely the curated label looked to models "
            "that never saw the painting."
        ),
    ),
    (
        "unlabelled",
        gettext_lazy("Not labelled"),
        gettext_lazy("No curated label yet; the most confident prediction first, ready to accept."),
    ),
]
assert [choice[0] for choice in REVIEW_CHOICES] == list(REVIEW_ORDERS)


def next_url(request: HttpRequest, default: str) -> str:
    """Where to go back after a POST: the form's ``next`` when it is on this site, else ``default``."""
    url = request.POST.get("next", "")
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, require_https=request.is_secure()):
        return url
    return default


def curation_context(request: HttpRequest, painting: Painting, form: RelabelForm | None = None) -> dict:
    """What the painting's page shows of curation: the label history to everyone, the relabel form and
    the revert buttons to curators."""
    context = {"label_changes": painting.label_changes.select_related("changed_by"), "curating": False}
    if is_curator(request.user):
        context["curating"] = True
        context["relabel_form"] = form or RelabelForm(initial={"label": painting.label})
    return context


def _describe(label: str | None) -> str:
    return label or _("no label")


@curator_required
@require_POST
def relabel(request: HttpRequest, pk: int) -> HttpResponse:
    painting = get_object_or_404(Painting, pk=pk)
    form = RelabelForm(request.POST)
    if not form.is_valid():
        from gallery.views import detail_context  # gallery.views imports this module

        context = detail_context(painting) | curation_context(request, painting, form)
        return render(request, "gallery/painting_detail.html", context, status=400)
    change = form.save(painting, by=request.user)
    if change:
        messages.success(
            request,
            _("Label changed from %(old)s to %(new)s.")
            % {"old": _describe(change.old_label), "new": _describe(change.new_label)},
        )
    else:
        messages.info(
            request,
            _("The label was already %(label)s: nothing changed.") % {"label": _describe(painting.label)},
        )
    return redirect(painting)


@curator_required
@require_POST
def revert(request: HttpRequest, pk: int) -> HttpResponse:
    change = get_object_or_404(LabelChange.objects.select_related("painting"), pk=pk)
    undone = change.revert(by=request.user)
    if undone:
        messages.success(
            request,
            _("Reverted: the label is %(label)s again (a new change in the history).")
            % {"label": _describe(undone.new_label)},
        )
    else:
        messages.info(
            request,
            _("The label is already %(label)s: nothing to revert.") % {"label": _describe(change.old_label)},
        )
    return redirect(change.painting)


@curator_required
@require_POST
def bulk_relabel(request: HttpRequest) -> HttpResponse:
    """The bulk bar of the gallery and the review queue: one class for the selected paintings, or
    each one's prediction accepted."""
    back = next_url(request, reverse("gallery:list"))
    form = BulkRelabelForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    result = form.save(by=request.user)
    if result.changes:
        messages.success(
            request,
            ngettext("%(n)s painting relabelled.", "%(n)s paintings relabelled.", len(result.changes))
            % {"n": len(result.changes)},
        )
    if result.unchanged:
        messages.info(
            request,
            ngettext(
                "%(n)s painting already had that label.",
                "%(n)s paintings already had that label.",
                result.unchanged,
            )
            % {"n": result.unchanged},
        )
    if result.skipped:
        messages.warning(
            request,
            ngettext(
                "%(n)s painting has no finished prediction to accept: %(titles)s.",
                "%(n)s paintings have no finished prediction to accept: %(titles)s.",
                len(result.skipped),
            )
            % {"n": len(result.skipped), "titles": ", ".join(str(p) for p in result.skipped)},
        )
    return redirect(back)


@curator_required
@require_POST
def accept_prediction(request: HttpRequest, pk: int) -> HttpResponse:
    painting = get_object_or_404(Painting, pk=pk)
    back = next_url(request, painting.get_absolute_url())
    try:
        change = painting.accept_prediction(by=request.user)
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect(back)
    if change:
        messages.success(
            request,
            _("“%(title)s” is now labelled %(label)s.") % {"title": painting, "label": change.new_label},
        )
    else:
        messages.info(
            request,
            _("“%(title)s” was already labelled %(label)s.") % {"title": painting, "label": painting.label},
        )
    return redirect(back)


@curator_required
@require_GET
def review(request: HttpRequest) -> HttpResponse:
    order = request.GET.get("order")
    order = order if order in REVIEW_ORDERS else "margin"
    page = Paginator(Painting.objects.review(order), REVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    class_names = Painting.objects.class_names()
    context = {
        "order": order,
        "orders": REVIEW_CHOICES,
        "description": {choice[0]: choice[2] for choice in REVIEW_CHOICES}[order],
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=1, on_ends=1),
        "class_names": class_names,
        "no_scores": order == "mislabelled"
        and not Painting.objects.filter(mislabel_score__isnull=False).exists(),
    }
    return render(request, "gallery/review.html", context)


@curator_required
@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    pairs = DuplicatePair.objects.filter(status=DuplicatePair.Status.OPEN).select_related("a", "b")
    page = Paginator(pairs, PAIRS_PAGE_SIZE).get_page(request.GET.get("page"))
    for pair in page.object_list:
        # The larger image is the better copy to keep, as a rule; the curator can pick the other.
        pair.suggested = pair.b if pair.b.width * pair.b.height > pair.a.width * pair.a.height else pair.a
        pair.similarity, pair.bits = 1 - pair.distance, round(pair.distance)
        pair.labels_differ = bool(pair.a.label and pair.b.label and pair.a.label != pair.b.label)
    painting_count = Painting.objects.count()
    context = {
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=1, on_ends=1),
        "painting_count": painting_count,
        "unhashed": Painting.objects.filter(dhash="").count(),
        "dismissed": DuplicatePair.objects.filter(status=DuplicatePair.Status.DISMISSED).count(),
        "can_search": painting_count <= IN_PROCESS_LIMIT,
        "limit": IN_PROCESS_LIMIT,
        "max_bits": NEAR_DUPLICATE_BITS,
        "min_cosine": EMBEDDING_MIN_COSINE,
    }
    return render(request, "gallery/duplicates.html", context)


@curator_required
@require_POST
def search_duplicates(request: HttpRequest) -> HttpResponse:
    """The page's button: the whole search in the request, for collections of a few thousand."""
    if Painting.objects.count() > IN_PROCESS_LIMIT:
        messages.error(
            request,
            _("The collection is too large to search here; run python manage.py find_duplicates instead."),
        )
        return redirect("gallery:duplicates")
    search = find_duplicates()
    messages.success(
        request,
        ngettext(
            "Search done: %(n)s new pair to review.",
            "Search done: %(n)s new pairs to review.",
            search.created,
        )
        % {"n": search.created},
    )
    if search.unreadable:
        messages.warning(
            request,
            _("Images that could not be read, left out: %(ids)s.")
            % {"ids": ", ".join(f"#{pk}" for pk, _why in search.unreadable)},
        )
    return redirect("gallery:duplicates")


@curator_required
@require_POST
def merge(request: HttpRequest, pk: int) -> HttpResponse:
    pair = get_object_or_404(DuplicatePair.objects.select_related("a", "b"), pk=pk)
    back = next_url(request, reverse("gallery:duplicates"))
    keep = {str(pair.a_id): pair.a, str(pair.b_id): pair.b}.get(request.POST.get("keep", ""))
    if keep is None:
        messages.error(request, _("Choose the painting to keep."))
        return redirect(back)
    removed = pair.b if keep.pk == pair.a_id else pair.a
    try:
        kept = pair.merge(keep, by=request.user)
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
        return redirect(back)
    messages.success(
        request,
        _("Merged: “%(kept)s” keeps the label %(label)s and the history; painting #%(removed)s was removed.")
        % {"kept": kept, "label": _describe(kept.label), "removed": removed.pk},
    )
    return redirect(back)


@curator_required
@require_POST
def dismiss(request: HttpRequest, pk: int) -> HttpResponse:
    pair = get_object_or_404(DuplicatePair, pk=pk)
    try:
        pair.dismiss(by=request.user)
    except ValidationError as refused:
        messages.error(request, " ".join(refused.messages))
    else:
        messages.success(request, _("Dismissed: the pair will not be listed again."))
    return redirect(next_url(request, reverse("gallery:duplicates")))
