"""Personas and small helpers for the site's tests (djangoproject.com's checklists factory habit).

Images are made here, never read from the repository.
"""

from __future__ import annotations

import io

import numpy as np
from django.contrib.auth.models import Group, User
from PIL import Image

from classifier.models import ModelVersion, Prediction, Status
from gallery.models import Painting


def image_bytes(
    fmt: str = "JPEG", size: tuple[int, int] = (320, 240), seed: int = 0, mode: str = "RGB", **save_kw
) -> bytes:
    """A small noisy picture in the given format (different seeds give different files)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    im = Image.fromarray(pixels).convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **save_kw)
    return buf.getvalue()


def make_user(username: str = "contributor", **kw) -> User:
    return User.objects.create_user(username=username, password="pw-for-tests-only", **kw)


def make_curator(username: str = "curator") -> User:
    user = make_user(username)
    user.groups.add(Group.objects.get_or_create(name="curators")[0])
    return user


def make_admin(username: str = "admin") -> User:
    return User.objects.create_superuser(username=username, password="pw-for-tests-only")


_counter = iter(range(10**9))


def make_painting(**kw) -> Painting:
    """A painting row with a real (tiny) image file; override any field with keyword arguments."""
    from django.core.files.base import ContentFile

    n = next(_counter)
    data = kw.pop("data", None) or image_bytes(seed=10_000 + n, size=(80, 80))
    painting = Painting(
        sha256=kw.pop("sha256", f"{n:064x}"),
        width=80,
        height=80,
        format="JPEG",
        title=kw.pop("title", f"Painting {n}"),
        **kw,
    )
    painting.image.save(f"p{n}.jpg", ContentFile(data), save=False)
    painting.thumbnail.save(f"p{n}.jpg", ContentFile(data), save=False)
    painting.save()
    return painting


def make_model_version(name: str = "v1", active: bool = True, class_names=("cn", "jp"), **kw) -> ModelVersion:
    from django.core.files.base import ContentFile

    version = ModelVersion(name=name, arch=kw.pop("arch", "resnet18"), class_names=list(class_names), **kw)
    version.checkpoint.save(f"{name}.pt", ContentFile(b"not a real checkpoint"), save=False)
    version.save()
    if active:
        version.activate()
    return version


def make_prediction(
    painting: Painting,
    version: ModelVersion,
    label: str = "cn",
    confidence: float = 0.9,
    status: str = Status.DONE,
    **kw,
) -> Prediction:
    others = [c for c in version.class_names if c != label]
    probs = {label: confidence, **{c: (1 - confidence) / max(1, len(others)) for c in others}}
    return Prediction.objects.create(
        painting=painting,
        model_version=version,
        label=label,
        confidence=confidence,
        probabilities=probs,
        status=status,
        **kw,
    )
