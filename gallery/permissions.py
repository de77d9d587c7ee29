"""Roles, in one place, enforced by pages, admin actions and the API alike.

- visitors browse;
- signed-in users upload;
- curators (members of the ``curators`` group, or staff) relabel, review, import and export;
- admins (staff) train, evaluate and activate models.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

CURATORS = "curators"


def is_curator(user) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and (user.is_staff or user.groups.filter(name=CURATORS).exists())
    )


def is_admin(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)


def _requires(check):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


curator_required = _requires(is_curator)
staff_required = _requires(is_admin)


class IsCurator(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_curator(request.user)


class IsCuratorOrReadOnly(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or is_curator(request.user)


class IsStaff(BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_admin(request.user)
