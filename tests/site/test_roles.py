"""Roles, enforced everywhere: every page, admin page and API endpoint of the gallery and of curation,
against every persona. Visitors browse; signed-in users upload; curators relabel, review and decide
duplicates; the admin site is staff's.

Add a row to ROWS for a new endpoint (tests/site/roles.py explains the fields); other parts of the site
keep their rows in their own test files, with the same helpers.
"""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import resolve, reverse

from gallery.models import DuplicatePair, LabelChange, Painting

from .factory import image_bytes, make_model_version, make_painting, make_prediction
from .roles import (
    ADMIN_LOGIN,
    ADMIN_SITE,
    CURATOR_API,
    CURATOR_PAGE,
    CURATOR_POST,
    EVERYONE,
    LOGIN,
    ROLES,
    Row,
    check,
    client_for,
    expect,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> SimpleNamespace:
    """What the rows act on: a painting with a finished prediction, a painting with a label change to
    revert, and a pair of suspected duplicates."""
    version = make_model_version("v1", class_names=("cn", "jp"))
    painting = make_painting(title="Early Spring")
    make_prediction(painting, version, label="cn", confidence=0.8)
    relabelled = make_painting(title="Relabelled")
    change = relabelled.relabel("jp", reason="set up for the revert row")
    a, b = make_painting(title="Copy A", label="cn"), make_painting(title="Copy B")
    pair = DuplicatePair.objects.create(a=a, b=b, kind=DuplicatePair.Kind.DHASH, distance=3)
    return SimpleNamespace(
        version=version, painting=painting, relabelled=relabelled, change=change, a=a, b=b, pair=pair
    )


def label_of(painting: Painting) -> str | None:
    return Painting.objects.get(pk=painting.pk).label


def upload_form(world) -> dict:
    return {"files": SimpleUploadedFile("new.png", image_bytes("PNG", seed=77), content_type="image/png")}


def api_upload(world) -> dict:
    return {"image": SimpleUploadedFile("new.png", image_bytes("PNG", seed=78), content_type="image/png")}


def uploaded(world) -> bool:
    return Painting.objects.filter(title="new").exists()


ROWS = [
    # Browsing: everyone.
    Row("gallery list", "get", lambda w: reverse("gallery:list"), EVERYONE),
    Row("painting page", "get", lambda w: reverse("gallery:detail", args=[w.painting.pk]), EVERYONE),
    Row("prediction status", "get", lambda w: reverse("gallery:status", args=[w.painting.pk]), EVERYONE),
    Row("API list", "get", lambda w: "/api/paintings/", EVERYONE),
    Row("API painting", "get", lambda w: f"/api/paintings/{w.painting.pk}/", EVERYONE),
    # Uploads: signed-in users.
    Row("upload page", "get", lambda w: reverse("gallery:upload"), expect(LOGIN, 200, 200, 200)),
    Row(
        "upload",
        "post",
        lambda w: reverse("gallery:upload"),
        expect(LOGIN, 200, 200, 200),
        data=upload_form,
        done=uploaded,
    ),
    Row(
        "API upload",
        "post",
        lambda w: "/api/paintings/",
        expect(401, 201, 201, 201),
        data=api_upload,
        done=uploaded,
    ),
    # Curation: curators (staff are curators too).
    Row(
        "relabel",
        "post",
        lambda w: reverse("gallery:relabel", args=[w.painting.pk]),
        CURATOR_POST,
        data=lambda w: {"new_label": "kr", "reason": "seal"},
        done=lambda w: label_of(w.painting) == "kr",
    ),
    Row(
        "revert",
        "post",
        lambda w: reverse("gallery:revert_label", args=[w.change.pk]),
        CURATOR_POST,
        done=lambda w: label_of(w.relabelled) is None,
    ),
    Row(
        "bulk relabel",
        "post",
        lambda w: reverse("gallery:bulk_relabel"),
        CURATOR_POST,
        data=lambda w: {"ids": [w.painting.pk, w.b.pk], "label": "jp"},
        done=lambda w: label_of(w.painting) == "jp" and label_of(w.b) == "jp",
    ),
    Row(
        "accept prediction",
        "post",
        lambda w: reverse("gallery:accept_prediction", args=[w.painting.pk]),
        CURATOR_POST,
        done=lambda w: label_of(w.painting) == "cn",
    ),
    Row(
        "API relabel",
        "post",
        lambda w: f"/api/paintings/{w.painting.pk}/relabel/",
        CURATOR_API,
        data=lambda w: {"label": "kr"},
        json=True,
        done=lambda w: label_of(w.painting) == "kr",
    ),
    Row(
        "API bulk relabel",
        "post",
        lambda w: "/api/paintings/relabel/",
        CURATOR_API,
        data=lambda w: {"ids": [w.painting.pk, w.b.pk], "label": "kr"},
        json=True,
        done=lambda w: label_of(w.painting) == "kr" and label_of(w.b) == "kr",
    ),
    Row("review queue", "get", lambda w: reverse("gallery:review"), CURATOR_PAGE),
    Row(
        "review queue, ordered", "get", lambda w: reverse("gallery:review") + "?order=disagree", CURATOR_PAGE
    ),
    Row("duplicates page", "get", lambda w: reverse("gallery:duplicates"), CURATOR_PAGE),
    Row(
        "duplicates search",
        "post",
        lambda w: reverse("gallery:search_duplicates"),
        CURATOR_POST,
        done=lambda w: not Painting.objects.filter(dhash="").exists(),
    ),
    Row(
        "merge duplicates",
        "post",
        lambda w: reverse("gallery:merge_duplicates", args=[w.pair.pk]),
        CURATOR_POST,
        data=lambda w: {"keep": w.a.pk},
        done=lambda w: not Painting.objects.filter(pk=w.b.pk).exists(),
    ),
    Row(
        "dismiss duplicates",
        "post",
        lambda w: reverse("gallery:dismiss_duplicates", args=[w.pair.pk]),
        CURATOR_POST,
        done=lambda w: DuplicatePair.objects.get(pk=w.pair.pk).status == DuplicatePair.Status.DISMISSED,
    ),
    # The admin site: staff only (a curator who is not staff works on the site's own pages).
    Row("admin paintings", "get", lambda w: reverse("admin:gallery_painting_changelist"), ADMIN_SITE),
    Row(
        "admin: set curated label",
        "post",
        lambda w: reverse("admin:gallery_painting_changelist"),
        expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 302),
        data=lambda w: {
            "action": "set_label",
            "_selected_action": [w.painting.pk],
            "apply": "1",
            "new_label": "kr",
        },
        done=lambda w: label_of(w.painting) == "kr",
    ),
    Row("admin label changes", "get", lambda w: reverse("admin:gallery_labelchange_changelist"), ADMIN_SITE),
    Row(
        "admin model versions",
        "get",
        lambda w: reverse("admin:classifier_modelversion_changelist"),
        ADMIN_SITE,
    ),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_each_role_gets_what_it_may_and_nothing_more(row, role, world):
    check(row, role, world)


def test_every_gallery_page_and_curation_route_has_a_row(world):
    """A new route in gallery.views or gallery.views_curation without a row here fails this test."""
    from gallery import urls

    covered = {resolve(urlsplit(row.url(world)).path).url_name for row in ROWS}
    routes = {
        p.name
        for p in urls.urlpatterns
        if p.callback.__module__ in ("gallery.views", "gallery.views_curation")
    }
    assert routes - covered == set()


def test_nav_links_to_review_and_duplicates_are_for_curators_only():
    for role, shown in (("visitor", False), ("contributor", False), ("curator", True), ("admin", True)):
        body = client_for(role).get(reverse("gallery:list")).content.decode()
        assert (f'href="{reverse("gallery:review")}"' in body) is shown, role
        assert (f'href="{reverse("gallery:duplicates")}"' in body) is shown, role


def test_refused_requests_leave_no_label_change(world):
    """The table's done() checks say the label did not change; the audit trail agrees."""
    before = LabelChange.objects.count()
    for row in ROWS:
        if row.method == "post" and row.done is not None and "upload" not in row.name:
            check(row, "contributor", world)
    assert LabelChange.objects.count() == before
