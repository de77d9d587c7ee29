"""Role checks as a table: one ``Row`` per page, admin page or action, or API endpoint, with what each
persona (visitor, contributor, curator, admin) gets. ``tests/site/test_roles.py`` holds the gallery's
and curation's rows; other test files import ``Row``, ``ROLES``, ``expect`` and ``check`` and add their
own rows the same way:

    ROWS = [Row("datasets page", "get", lambda w: reverse("gallery:datasets"), expect(LOGIN, 403, 200, 200))]

    @pytest.mark.parametrize("role", ROLES)
    @pytest.mark.parametrize("row", ROWS, ids=str)
    def test_each_role_gets_what_it_may(row, role, world):
        check(row, role, world)

A row's ``done(world)`` (optional) says whether the change it asks for happened: ``check`` asserts it
happened exactly for the roles that are let through, so that a refused request provably changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from .factory import make_admin, make_curator, make_user

ROLES = ("visitor", "contributor", "curator", "admin")
LOGIN = "login"  # answered with a redirect to the site's sign-in page
ADMIN_LOGIN = "admin-login"  # answered with a redirect to the admin's sign-in page

Expected = int | str


def expect(
    visitor: Expected, contributor: Expected, curator: Expected, admin: Expected
) -> dict[str, Expected]:
    return {"visitor": visitor, "contributor": contributor, "curator": curator, "admin": admin}


# Common shapes, to keep the table readable.
EVERYONE = expect(200, 200, 200, 200)
CURATOR_PAGE = expect(LOGIN, 403, 200, 200)
CURATOR_POST = expect(LOGIN, 403, 302, 302)  # redirect after POST
CURATOR_API = expect(401, 403, 200, 200)
STAFF_PAGE = expect(LOGIN, 403, 403, 200)
ADMIN_SITE = expect(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, 200)


@dataclass
class Row:
    name: str
    method: str  # "get" or "post"
    url: Callable[[Any], str]  # world -> URL
    expect: dict[str, Expected]
    data: Callable[[Any], dict] | None = None  # world -> body (called once per request: files are fresh)
    json: bool = False  # send the body as JSON (API) rather than as a form
    done: Callable[[Any], bool] | None = None  # world -> did the requested change happen?

    def __str__(self) -> str:
        return self.name


def client_for(role: str) -> Client:
    """A client signed in as the role's persona (made once per test), or anonymous for the visitor."""
    client = Client()
    persona = {"visitor": None, "contributor": make_user, "curator": make_curator, "admin": make_admin}[role]
    if persona is not None:
        name = f"{role}-persona"
        client.force_login(User.objects.filter(username=name).first() or persona(name))
    return client


def allowed(expected: Expected) -> bool:
    return expected not in (LOGIN, ADMIN_LOGIN, 401, 403, 404, 405)


def check(row: Row, role: str, world: Any) -> None:
    client = client_for(role)
    url = row.url(world)
    kwargs: dict[str, Any] = {}
    if row.data is not None:
        body = row.data(world)
        kwargs = {"data": body, "content_type": "application/json"} if row.json else {"data": body}
    response = getattr(client, row.method)(url, **kwargs)
    expected = row.expect[role]
    where = f"{row.name} as {role}: {row.method.upper()} {url}"
    if expected in (LOGIN, ADMIN_LOGIN):
        login = reverse("login") if expected == LOGIN else reverse("admin:login")
        assert response.status_code == 302, f"{where} answered {response.status_code}, not a sign-in redirect"
        assert response["Location"].startswith(login), f"{where} went to {response['Location']}"
    else:
        assert response.status_code == expected, (
            f"{where} answered {response.status_code}, expected {expected}"
        )
    if row.done is not None:
        assert row.done(world) == allowed(expected), f"{where}: change made is {row.done(world)}"
