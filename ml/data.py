"""Finding, decoding and caching images.

Two layouts are read, with class names taken from folder names (any number >= 2):

- the study's layout ``DATA/{train,val,test}/{class}/*``
- a flat tree ``DATA/{class}/*``

A ``manifest.csv`` beside the class folders (as in ``shared/datasets/sansuha-v1`` and as written
by ``python -m ml split``) adds each file's ``source`` and ``group``.

Every image is decoded once, EXIF orientation applied, converted to RGB and kept in memory at a
working resolution (long side <= ``cache_long_side``), so the training loop never decodes a JPEG.
Unreadable files are logged with their path and skipped; one bad file never stops a run.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
SPLITS = ("train", "val", "test")
# Scans of handscrolls are large; anything beyond this many pixels is refused as a likely
# decompression bomb rather than decoded.
Image.MAX_IMAGE_PIXELS = 180_000_000


@dataclass
class Sample:
    path: Path
    label: int
    class_name: str
    source: str = ""
    group: str = ""
    meta: dict[str, str] = field(default_factory=dict)


@dataclass
class BadFile:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def is_split_layout(root: Path) -> bool:
    """True for the study's ``root/{train,val,test}/{class}/`` layout, or any part of it: a folder
    holding only ``test/{class}/`` is a test set from elsewhere, to evaluate a model on."""
    return any((root / s).is_dir() for s in SPLITS)


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def find_class_names(root: Path, min_classes: int = 2) -> list[str]:
    """Class names of a dataset: folder names, sorted, united over splits in the study's layout.

    Training needs two classes; the site's import also reads a single new class (``min_classes=1``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if is_split_layout(root):
        names = sorted({c for s in SPLITS if (root / s).is_dir() for c in _class_dirs(root / s)})
    else:
        names = _class_dirs(root)
    if len(names) < min_classes:
        raise ValueError(
            f"{root} holds {len(names)} class folder(s) ({', '.join(names) or 'none'}); "
            f"expected at least {min_classes}, as DATA/{{class}}/ or DATA/{{train,val,test}}/{{class}}/"
        )
    return names


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a manifest.csv keyed by their ``file`` column (a path relative to the manifest)."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f) if row.get("file")}


def _manifest_for(root: Path) -> tuple[dict[str, dict[str, str]], Path]:
    for candidate in (root / "manifest.csv", root.parent / "manifest.csv"):
        rows = read_manifest(candidate)
        if rows:
            return rows, candidate.parent
    return {}, root


def list_samples(
    root: Path, split: str | None = None, class_names: Sequence[str] | None = None
) -> tuple[list[Sample], list[str]]:
    """The image files of one split (study layout) or of the whole flat tree.

    ``class_names`` fixes the label indices (a checkpoint's classes); by default they come from the
    folders. Folders whose class is not in ``class_names`` are refused, not silently dropped.
    """
    root = Path(root)
    names = list(class_names) if class_names is not None else find_class_names(root)
    if is_split_layout(root):
        if split is None:
            raise ValueError(f"{root} is split into train/val/test; say which split to read")
        base = root / split
        if not base.is_dir():
            raise FileNotFoundError(f"{root} has no '{split}' split folder")
    else:
        if split not in (None, "all"):
            raise ValueError(
                f"{root} is a flat {{class}}/ tree with no '{split}' split: read all of it with "
                "--split all (paintings the model has never seen), or make splits with: "
                "python -m ml split SRC OUT"
            )
        base = root
    unknown = sorted(set(_class_dirs(base)) - set(names))
    if unknown:
        raise ValueError(
            f"{base} has class folder(s) {', '.join(unknown)} that the model does not know "
            f"(its classes: {', '.join(names)})"
        )
    manifest, manifest_root = _manifest_for(root)
    samples = []
    for label, name in enumerate(names):
        folder = base / name
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if is_image_file(p)):
            row = manifest.get(path.relative_to(manifest_root).as_posix(), {})
            samples.append(
                Sample(
                    path=path,
                    label=label,
                    class_name=name,
                    source=row.get("source", ""),
                    group=row.get("group", "") or path.name,
                    meta=row,
                )
            )
    return samples, names


def load_image(path: Path) -> Image.Image:
    """Decode an image file fully: EXIF orientation applied, first frame, converted to RGB.

    Transparent images are composited on white (paper), 16-bit and CMYK images are converted.
    Raises an exception (OSError, ValueError, Image.DecompressionBombError...) on bad files.
    """
    with Image.open(path) as im:
        im.seek(0)  # GIF / multi-page TIFF: the first frame
        im = ImageOps.exif_transpose(im)
        return to_rgb(im)


def to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping at 255.
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im.convert("RGBA"), mask=im.convert("RGBA").getchannel("A"))
        return background
    return im.convert("RGB")


def shrink(im: Image.Image, long_side: int) -> Image.Image:
    """Downscale (never upscale) so that the long side is at most ``long_side``."""
    if max(im.size) <= long_side:
        return im
    scale = long_side / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def try_load(path: Path, long_side: int | None = None) -> Image.Image | BadFile:
    try:
        im = load_image(path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "skip this file"
        return BadFile(path, f"{type(exc).__name__}: {exc}")
    return shrink(im, long_side) if long_side else im


def load_samples(
    samples: Sequence[Sample], long_side: int | None = None, workers: int = 4
) -> tuple[list[Sample], list[Image.Image], list[BadFile]]:
    """Decode every sample once (threads: PIL releases the GIL while decoding).

    Returns the samples that decoded, their images, and the files that did not, each logged with
    its path and reason.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda s: try_load(s.path, long_side), samples))
    kept, images, bad = [], [], []
    for sample, result in zip(samples, results, strict=True):
        if isinstance(result, BadFile):
            log.warning("skipping unreadable image %s", result)
            bad.append(result)
        else:
            kept.append(sample)
            images.append(result)
    return kept, images, bad


class ImageListDataset:
    """A map-style dataset over already-decoded PIL images (a torch Dataset by duck typing)."""

    def __init__(
        self,
        images: Sequence[Image.Image],
        labels: Sequence[int],
        transform: Callable[[Image.Image], object],
    ) -> None:
        if len(images) != len(labels):
            raise ValueError("images and labels differ in length")
        self.images = list(images)
        self.labels = list(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[object, int]:
        return self.transform(self.images[i]), self.labels[i]
