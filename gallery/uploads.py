"""Accepting uploads: the checks on an uploaded file and the atomic save, shared by the upload
page, the API and ``import`` commands, so that nothing is written twice.

The content decides, never the file name: Pillow identifies the format, ``verify()`` checks the
structure, and a full decode proves every pixel is there.
"""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from gallery.models import Painting
from ml.split import dhash  # PIL and numpy only: no torch in the web process

log = logging.getLogger(__name__)

# Pillow's format names. MPO is the multi-picture JPEG many cameras write.
ACCEPTED_FORMATS = {
    "JPEG": "jpg",
    "MPO": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "TIFF": "tif",
    "BMP": "bmp",
    "GIF": "gif",
}
THUMBNAIL_SIDE = 480


class UploadRefused(ValidationError):
    """The file is refused; the message says why, in words for the person who uploaded it."""


@dataclass
class InspectedImage:
    data: bytes
    format: str
    width: int  # after EXIF orientation
    height: int
    sha256: str
    thumbnail: bytes
    dhash: str  # 128-bit difference hash, hex (ml.split.dhash), for near-duplicate detection


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB for thumbnails: palette, alpha (on white), 16-bit, CMYK and greyscale images alike."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def inspect_image(data: bytes) -> InspectedImage:
    """Check an uploaded file's content against the limits; raise UploadRefused saying why."""
    if not data:
        raise UploadRefused(_("The file is empty."))
    if len(data) > settings.UPLOAD_MAX_BYTES:
        raise UploadRefused(
            _("The file is %(size)s; the limit is %(limit)s.")
            % {"size": _mb(len(data)), "limit": _mb(settings.UPLOAD_MAX_BYTES)}
        )
    accepted = ", ".join(sorted({"JPEG", "PNG", "WebP", "TIFF", "BMP", "GIF"}))
    with warnings.catch_warnings():
        # A DecompressionBombWarning becomes an error: we refuse such files outright.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt = probe.format
                width, height = probe.size
                if fmt not in ACCEPTED_FORMATS:
                    raise UploadRefused(
                        _("%(format)s images are not accepted; send one of: %(accepted)s.")
                        % {"format": fmt, "accepted": accepted}
                    )
                if width * height > settings.UPLOAD_MAX_PIXELS:
                    raise UploadRefused(
                        _("The image is %(w)s x %(h)s pixels; the limit is %(limit)s megapixels.")
                        % {"w": width, "h": height, "limit": settings.UPLOAD_MAX_PIXELS // 1_000_000}
                    )
                probe.verify()
            with Image.open(io.BytesIO(data)) as im:
                im.seek(0)  # GIF, multi-page TIFF: the first frame
                im.load()  # a full decode: truncated or corrupt files fail here
                oriented = ImageOps.exif_transpose(im)
                rgb = to_rgb(oriented)
        except UploadRefused:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            if isinstance(exc, UnidentifiedImageError):
                raise UploadRefused(
                    _(
                        "This file is not an image we can read (its content was checked, not its name). "
                        "Send one of: %(accepted)s."
                    )
                    % {"accepted": accepted}
                ) from None
            raise UploadRefused(
                _("The image has too many pixels to decode safely; the limit is %(limit)s megapixels.")
                % {"limit": settings.UPLOAD_MAX_PIXELS // 1_000_000}
            ) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise UploadRefused(
                _("The image is damaged or truncated and cannot be decoded (%(reason)s).") % {"reason": exc}
            ) from None
    width, height = rgb.size
    if min(width, height) < settings.UPLOAD_MIN_SIDE:
        raise UploadRefused(
            _("The image is %(w)s x %(h)s pixels; each side must be at least %(min)s.")
            % {"w": width, "h": height, "min": settings.UPLOAD_MIN_SIDE}
        )
    if max(width, height) / min(width, height) > settings.UPLOAD_MAX_ASPECT:
        raise UploadRefused(
            _("The image's sides are in a ratio over %(ratio)s : 1; even handscrolls stay within that.")
            % {"ratio": int(settings.UPLOAD_MAX_ASPECT)}
        )
    thumb = rgb.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return InspectedImage(
        data=data,
        format=fmt,
        width=width,
        height=height,
        sha256=hashlib.sha256(data).hexdigest(),
        thumbnail=buf.getvalue(),
        dhash=f"{dhash(rgb):032x}",
    )


@dataclass
class UploadResult:
    name: str
    painting: Painting | None = None
    created: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.painting is not None


def save_painting(data: bytes, filename: str, user=None, **meta) -> tuple[Painting, bool]:
    """Store an upload: the row and its files together or not at all; the prediction queued after
    commit. A file already in the collection (same sha256) returns the existing painting."""
    info = inspect_image(data)
    existing = Painting.objects.filter(sha256=info.sha256).first()
    if existing:
        return existing, False
    stem = get_valid_filename(PurePosixPath(filename).stem)[:80] or "painting"
    painting = Painting(
        sha256=info.sha256,
        width=info.width,
        height=info.height,
        format=info.format,
        dhash=info.dhash,
        uploaded_by=user if getattr(user, "is_authenticated", False) else None,
        title=meta.pop("title", "") or stem.replace("_", " "),
        **meta,
    )
    painting.image.save(f"{stem}.{ACCEPTED_FORMATS[info.format]}", ContentFile(data), save=False)
    painting.thumbnail.save(f"{stem}.jpg", ContentFile(info.thumbnail), save=False)
    try:
        with transaction.atomic():
            painting.save()
            from classifier.models import request_prediction

            request_prediction(painting)
    except BaseException as exc:
        # No row, so no files either.
        painting.image.delete(save=False)
        painting.thumbnail.delete(save=False)
        if isinstance(exc, IntegrityError):  # the same file uploaded at the same moment
            winner = Painting.objects.filter(sha256=info.sha256).first()
            if winner:
                return winner, False
        raise
    return painting, True


def iter_zip(data: bytes) -> Iterator[tuple[str, bytes | None, str]]:
    """(name, content, error) for each file inside a zip, within the upload limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        yield "", None, _("The zip archive is damaged.")
        return
    entries = [
        i
        for i in archive.infolist()
        if not i.is_dir()
        and not i.filename.startswith(("__MACOSX/", "."))
        and not PurePosixPath(i.filename).name.startswith(".")
    ]
    if len(entries) > settings.UPLOAD_MAX_FILES_IN_ZIP:
        yield (
            "",
            None,
            _("The zip holds %(n)s files; the limit is %(max)s.")
            % {"n": len(entries), "max": settings.UPLOAD_MAX_FILES_IN_ZIP},
        )
        return
    for info in entries:
        if info.file_size > settings.UPLOAD_MAX_BYTES:
            yield (
                info.filename,
                None,
                _("The file is %(size)s; the limit is %(limit)s.")
                % {"size": _mb(info.file_size), "limit": _mb(settings.UPLOAD_MAX_BYTES)},
            )
            continue
        yield info.filename, archive.read(info), ""


def accept_uploads(files, user=None, **meta) -> list[UploadResult]:
    """Every uploaded file (zips unpacked) through ``save_painting``; one result per file."""
    results = []
    for f in files:
        if f.size is not None and f.size > settings.UPLOAD_MAX_BYTES and not f.name.lower().endswith(".zip"):
            # Refuse before reading a huge file into memory.
            results.append(
                UploadResult(
                    f.name,
                    error=_("The file is %(size)s; the limit is %(limit)s.")
                    % {"size": _mb(f.size), "limit": _mb(settings.UPLOAD_MAX_BYTES)},
                )
            )
            continue
        data = f.read()
        if zipfile.is_zipfile(io.BytesIO(data)) and not data.startswith(b"\xff\xd8"):
            named = iter_zip(data)
        else:
            named = iter([(f.name, data, "")])
        for name, content, error in named:
            name = name or f.name
            if error:
                results.append(UploadResult(name, error=error))
                continue
            try:
                painting, created = save_painting(content, name, user, **meta)
                results.append(UploadResult(name, painting, created))
            except UploadRefused as exc:
                results.append(UploadResult(name, error=" ".join(exc.messages)))
    return results
