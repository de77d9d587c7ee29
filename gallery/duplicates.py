"""Finding near-duplicate paintings, for the curators' duplicates page and ``manage.py find_duplicates``.

Two signals, both numpy-cheap over the whole collection (no torch in the web process):

- the 128-bit difference hash (``ml.split.dhash``, ``Painting.dhash``) at most
  ``ml.split.NEAR_DUPLICATE_BITS`` bits apart: the same picture resized, re-encoded or re-cropped;
- the active model version's embeddings (``Prediction.embedding``, float32) with a cosine similarity
  of at least ``EMBEDDING_MIN_COSINE``: the same work scanned twice, in different colours.

Pairs are stored as ``DuplicatePair`` rows (a.pk < b.pk, one row per two paintings). A pair already
there (open, or dismissed by a curator) is left as it is, so a dismissed pair never comes back.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from classifier.models import ModelVersion, Prediction, Status
from gallery.models import DuplicatePair, Painting
from gallery.uploads import to_rgb
from ml.split import NEAR_DUPLICATE_BITS, Item, dhash
from ml.split import find_duplicates as find_hash_duplicates

log = logging.getLogger(__name__)

# Cosine similarity of two paintings' embeddings at or above which they are listed as possible
# duplicates. The penultimate features of a fine-tuned classifier put different works of one school
# close together (0.8-0.95 is common between two Song landscapes), so only near-identity counts: the
# same work rescanned or re-photographed lands above 0.97. A curator still decides each pair.
EMBEDDING_MIN_COSINE = 0.97

# The duplicates page's button searches inside the request up to this many paintings (a few seconds
# at most); beyond, the page points to `manage.py find_duplicates`.
IN_PROCESS_LIMIT = 5000

# Rows of the similarity matrix computed at once: memory stays at BLOCK x n floats.
_BLOCK = 1024


@dataclass
class Search:
    """What one search did."""

    hashed: int = 0  # difference hashes computed now from image files
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (painting id, why)
    dhash_pairs: int = 0
    embedding_pairs: int = 0
    created: int = 0  # new DuplicatePair rows (0 on a dry run)
    pairs: list[tuple[int, int, str, float]] = field(default_factory=list)  # (a, b, kind, distance)


def image_dhash(painting: Painting) -> int:
    """The painting's difference hash from its image file, computed as an upload computes it
    (EXIF orientation applied, RGB), so that hashes from both paths compare."""
    with painting.image.open("rb") as f, Image.open(f) as im:
        im.seek(0)
        return dhash(to_rgb(ImageOps.exif_transpose(im)))


def collect_dhashes(
    save: bool = True, progress: Callable[[Iterable], Iterable] = iter
) -> tuple[dict[int, int], int, list[tuple[int, str]]]:
    """Every painting's difference hash by id; those without one are hashed from their image file (and
    saved unless ``save`` is false). Returns (hashes, how many were computed, unreadable paintings)."""
    hashes = {
        pk: int(value, 16)
        for pk, value in Painting.objects.exclude(dhash="").order_by().values_list("pk", "dhash")
    }
    missing = Painting.objects.filter(dhash="").order_by("pk").only("pk", "image")
    computed, unreadable = 0, []
    for painting in progress(missing):
        try:
            value = image_dhash(painting)
        except Exception as exc:  # noqa: BLE001 - a missing or damaged file is reported, not fatal
            unreadable.append((painting.pk, f"{type(exc).__name__}: {exc}"))
            log.warning("painting %s: cannot hash its image: %s", painting.pk, exc)
            continue
        hashes[painting.pk] = value
        computed += 1
        if save:
            Painting.objects.filter(pk=painting.pk).update(dhash=f"{value:032x}")
    return hashes, computed, unreadable


def dhash_pairs(hashes: dict[int, int], max_bits: int = NEAR_DUPLICATE_BITS) -> list[tuple[int, int, int]]:
    """(a, b, bits apart) for every two paintings whose hashes are at most ``max_bits`` apart, a < b.
    The comparison is ``ml.split``'s, the one that keeps near duplicates inside one split."""
    ids = sorted(hashes)
    # sha256 is unique per painting, so ml.split's "exact" pairs cannot occur: only "near" ones come back.
    items = [Item(sample=None, sha256=str(pk), dhash=hashes[pk]) for pk in ids]
    return [(ids[i], ids[j], bits) for i, j, _, bits in find_hash_duplicates(items, max_bits=max_bits)]


def embedding_pairs(
    model_version: ModelVersion | None = None, min_cosine: float = EMBEDDING_MIN_COSINE
) -> list[tuple[int, int, float]]:
    """(a, b, 1 - cosine similarity) for every two paintings whose embeddings by ``model_version``
    (default: the active one; finished predictions only) are at least ``min_cosine`` alike, a < b."""
    model_version = model_version or ModelVersion.objects.active()
    if model_version is None:
        return []
    rows = list(
        Prediction.objects.filter(model_version=model_version, status=Status.DONE)
        .exclude(embedding=None)
        .order_by("painting_id")
        .values_list("painting_id", "embedding")
    )
    if len(rows) < 2:
        return []
    rows = [(pk, bytes(e)) for pk, e in rows]
    width = Counter(len(e) for _, e in rows).most_common(1)[0][0]
    rows = [(pk, e) for pk, e in rows if len(e) == width]  # a stray size cannot be compared
    ids = np.array([pk for pk, _ in rows])
    matrix = np.frombuffer(b"".join(e for _, e in rows), dtype=np.float32).reshape(len(rows), -1)
    matrix = matrix / (np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-12)
    pairs = []
    for start in range(0, len(rows), _BLOCK):
        sims = matrix[start : start + _BLOCK] @ matrix.T
        for i, j in zip(*np.nonzero(sims >= min_cosine), strict=True):
            i = start + int(i)
            if j > i:  # each pair once, never a painting with itself
                pairs.append((int(ids[i]), int(ids[j]), max(0.0, 1.0 - float(sims[i - start, j]))))
    return pairs


def find_duplicates(
    max_bits: int = NEAR_DUPLICATE_BITS,
    min_cosine: float = EMBEDDING_MIN_COSINE,
    dry_run: bool = False,
    progress: Callable[[Iterable], Iterable] = iter,
) -> Search:
    """Hash what has no hash yet, find both kinds of pairs and store the new ones as open
    ``DuplicatePair`` rows. A pair both signals find is stored once, as a dHash pair. ``dry_run``
    writes nothing (hashes included); ``progress`` wraps the loop over images being hashed."""
    search = Search()
    hashes, search.hashed, search.unreadable = collect_dhashes(save=not dry_run, progress=progress)
    found: dict[tuple[int, int], tuple[str, float]] = {}
    for a, b, bits in dhash_pairs(hashes, max_bits):
        found[(a, b)] = (DuplicatePair.Kind.DHASH, float(bits))
    search.dhash_pairs = len(found)
    for a, b, distance in embedding_pairs(min_cosine=min_cosine):
        if (a, b) not in found:
            found[(a, b)] = (DuplicatePair.Kind.EMBEDDING, distance)
            search.embedding_pairs += 1
    search.pairs = [(a, b, kind, distance) for (a, b), (kind, distance) in sorted(found.items())]
    if dry_run or not found:
        return search
    before = DuplicatePair.objects.count()
    DuplicatePair.objects.bulk_create(
        [
            DuplicatePair(a_id=a, b_id=b, kind=kind, distance=distance)
            for a, b, kind, distance in search.pairs
        ],
        ignore_conflicts=True,  # known pairs (open or dismissed) stay as they are
        batch_size=1000,
    )
    search.created = DuplicatePair.objects.count() - before
    log.info("duplicates: %s new pairs of %s found", search.created, len(found))
    return search
