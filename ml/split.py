"""A stratified, deterministic, leak-free train/val/test split in the study's layout.

``python -m ml split SRC OUT --val 0.15 --test 0.15 --seed 0``

- Stratified: each class is split in the asked proportions on its own.
- Deterministic: the same files and seed give the same split, whatever the file system's order.
- Groups: files sharing a ``group`` in SRC's ``manifest.csv`` (the same work) stay in one split.
- Duplicates: exact duplicates (same sha256) and near duplicates (128-bit difference hash, at
  most ``NEAR_DUPLICATE_BITS`` bits apart) that would land in different splits make the split refuse,
  listing them; ``--merge-duplicates`` instead treats each such set as one group. Exact duplicates
  filed under different classes are always refused: that is a labelling error to fix first.
- Unreadable files are reported by path and left out.

OUT gets ``{train,val,test}/{class}/`` (hard links where possible, else copies), a
``manifest.csv`` with each file's split, source, group and hashes, and ``split_report.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.data import BadFile, Sample, is_split_layout, list_samples, load_image

log = logging.getLogger(__name__)

# Difference-hash distance (of 128 bits) at or below which two images count as near duplicates.
# Chosen by looking at every pair under 40 bits in sansuha-v1: the same scan re-encoded, resized
# or re-cropped sits at 0-10 bits; a colour-shifted rescan of one work sat at 15, but so did two
# different fan paintings, and album leaves of one series start at 16. At 12 the pairs found are
# all the same work; rescans with very different colour can be missed.
NEAR_DUPLICATE_BITS = 12


class SplitRefused(ValueError):
    """The split would leak (or the labels contradict each other); the message lists the files."""


@dataclass
class Item:
    sample: Sample
    sha256: str
    dhash: int  # 128 bits


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dhash(im: Image.Image) -> int:
    """128-bit difference hash: in a 9x8 (and an 8x9) greyscale thumbnail, is each pixel brighter
    than its right (lower) neighbour? Insensitive to size, aspect ratio, JPEG quality and mild
    colour changes."""
    grey = im.convert("L")
    wide = np.asarray(grey.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    tall = np.asarray(grey.resize((8, 9), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = np.concatenate([(wide[:, 1:] > wide[:, :-1]).ravel(), (tall[1:] > tall[:-1]).ravel()])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def _hash_file(sample: Sample) -> Item | BadFile:
    try:
        im = load_image(sample.path)
        return Item(sample, sha256_file(sample.path), dhash(im))
    except Exception as exc:  # noqa: BLE001 - any failure means "report and skip"
        return BadFile(sample.path, f"{type(exc).__name__}: {exc}")


def hash_samples(samples: list[Sample], workers: int = 4) -> tuple[list[Item], list[BadFile]]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_hash_file, samples))
    items = [r for r in results if isinstance(r, Item)]
    bad = [r for r in results if isinstance(r, BadFile)]
    for b in bad:
        log.warning("skipping unreadable image %s", b)
    return items, bad


def find_duplicates(
    items: list[Item], max_bits: int = NEAR_DUPLICATE_BITS
) -> list[tuple[int, int, str, int]]:
    """Pairs (i, j, "exact" | "near", hamming distance) of duplicate items, i < j."""
    pairs = []
    by_sha: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_sha[it.sha256].append(i)
    exact = set()
    for idx in by_sha.values():
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                pairs.append((idx[a], idx[b], "exact", 0))
                exact.add((idx[a], idx[b]))
    if len(items) > 1:
        mask = (1 << 64) - 1
        hashes = np.array([(it.dhash >> 64, it.dhash & mask) for it in items], dtype=np.uint64)
        for i in range(len(items) - 1):
            dist = np.bitwise_count(np.bitwise_xor(hashes[i + 1 :], hashes[i])).sum(1)
            for k in np.nonzero(dist <= max_bits)[0]:
                j = i + 1 + int(k)
                if (i, j) not in exact:
                    pairs.append((i, j, "near", int(dist[k])))
    return pairs


class UnionFind:
    """Union-find over string keys; the smaller key names a set, so the same data gives the same names."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def assign_splits(groups: list[str], classes: list[str], val: float, test: float, seed: int) -> list[str]:
    """A split name per item: stratified by class, whole groups at a time, deterministic."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    # A group counts towards its majority class.
    by_class: dict[str, list[str]] = defaultdict(list)
    for g, idx in members.items():
        majority = Counter(classes[i] for i in idx).most_common(1)[0][0]
        by_class[majority].append(g)
    rng = random.Random(seed)
    split = [""] * len(groups)
    for cls in sorted(by_class):
        gs = sorted(by_class[cls])
        rng.shuffle(gs)
        total = sum(len(members[g]) for g in gs)
        want = {"test": round(test * total), "val": round(val * total)}
        for name, frac in (("test", test), ("val", val)):
            if frac > 0 and want[name] == 0 and total >= 3:
                want[name] = 1  # a tiny class still appears in every split
        have = {"test": 0, "val": 0}
        for g in gs:
            name = next((n for n in ("test", "val") if have[n] < want[n]), "train")
            if name != "train":
                have[name] += len(members[g])
            for i in members[g]:
                split[i] = name
    return split


def _describe(item: Item, split: str = "") -> str:
    return f"{item.sample.path} ({item.sample.class_name}{', ' + split if split else ''})"


def plan_split(
    items: list[Item], val: float, test: float, seed: int, merge_duplicates: bool = False
) -> tuple[list[str], list[tuple[int, int, str, int]]]:
    """Split names for ``items`` and the duplicate pairs found; raises SplitRefused on a leak."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError("--val and --test must be fractions in [0, 1) that sum to less than 1")
    dups = find_duplicates(items)
    conflicts = [
        (i, j)
        for i, j, kind, _ in dups
        if kind == "exact" and items[i].sample.class_name != items[j].sample.class_name
    ]
    if conflicts:
        raise SplitRefused(
            "identical files filed under different classes; fix their labels first:\n"
            + "\n".join(f"  {_describe(items[i])} == {_describe(items[j])}" for i, j in conflicts)
        )
    uf = UnionFind()
    for it in items:
        uf.find(it.sample.group)
    if merge_duplicates:
        for i, j, _, _ in dups:
            uf.union(items[i].sample.group, items[j].sample.group)
    groups = [uf.find(it.sample.group) for it in items]
    splits = assign_splits(groups, [it.sample.class_name for it in items], val, test, seed)
    leaks = [(i, j, kind, d) for i, j, kind, d in dups if splits[i] != splits[j]]
    if leaks:
        raise SplitRefused(
            f"{len(leaks)} duplicate pair(s) would straddle splits (near = dHash distance "
            f"<= {NEAR_DUPLICATE_BITS} bits):\n"
            + "\n".join(
                f"  {kind:<5} d={d:<2} {_describe(items[i], splits[i])}  ~  {_describe(items[j], splits[j])}"
                for i, j, kind, d in leaks
            )
            + "\nLook at them; remove true duplicates from SRC, or re-run with --merge-duplicates "
            "to keep each set inside one split."
        )
    return splits, dups


def _place(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def split_dataset(
    src: Path,
    out: Path,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    merge_duplicates: bool = False,
    dry_run: bool = False,
    hold_out_sources: Sequence[str] = (),
) -> dict:
    """Split ``src`` into ``out/{train,val,test}/{class}/``. ``hold_out_sources``: every image of
    these manifest sources goes to ``out/heldout/{class}/`` instead, and nothing that duplicates one
    of them is kept in train/val/test: a test on a source the model never saw
    (``python -m ml evaluate --split heldout``)."""
    src, out = Path(src), Path(out)
    if is_split_layout(src):
        raise ValueError(f"{src} is already split into train/val/test; give a flat {{class}}/ tree")
    if out.exists() and any(out.iterdir()) and not dry_run:
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder (nothing overwritten)")
    samples, class_names = list_samples(src)
    log.info("hashing %d files in %s", len(samples), src)
    items, bad = hash_samples(samples)
    held_out_dups: list[dict] = []
    if hold_out_sources:
        unknown = sorted(set(hold_out_sources) - {it.sample.source for it in items})
        if unknown:
            raise ValueError(f"no image of {src} has the source {', '.join(unknown)} (manifest.csv)")
        held = [it for it in items if it.sample.source in hold_out_sources]
        kept = [it for it in items if it.sample.source not in hold_out_sources]
        # A kept image that duplicates a held-out one would let the model see the "unseen" source.
        everything = held + kept
        leaking = set()
        for i, j, kind, dist in find_duplicates(everything):
            if (i < len(held)) != (j < len(held)):
                k = max(i, j)
                leaking.add(k - len(held))
                held_out_dups.append(
                    {
                        "kept_out": str(everything[k].sample.path),
                        "heldout": str(everything[min(i, j)].sample.path),
                        "kind": kind,
                        "distance": dist,
                    }
                )
        kept = [it for n, it in enumerate(kept) if n not in leaking]
        items = kept
    else:
        held = []
    splits, dups = plan_split(items, val, test, seed, merge_duplicates)
    items, splits = items + held, splits + ["heldout"] * len(held)

    counts = {
        s: {c: 0 for c in class_names} for s in ("train", "val", "test", *(["heldout"] if held else []))
    }
    for it, s in zip(items, splits, strict=True):
        counts[s][it.sample.class_name] += 1
    report = {
        "src": str(src),
        "out": str(out),
        "val": val,
        "test": test,
        "seed": seed,
        "merge_duplicates": merge_duplicates,
        "near_duplicate_bits": NEAR_DUPLICATE_BITS,
        "class_names": class_names,
        "counts": counts,
        "duplicates": [
            {
                "a": str(items[i].sample.path),
                "b": str(items[j].sample.path),
                "kind": k,
                "distance": d,
                "split": splits[i],
            }
            for i, j, k, d in dups
        ],
        "skipped_files": [str(b) for b in bad],
        "held_out_sources": list(hold_out_sources),
        "left_out_as_duplicates_of_held_out": held_out_dups,
    }
    if dry_run:
        return report
    rows = []
    for it, s in zip(items, splits, strict=True):
        rel = Path(s) / it.sample.class_name / it.sample.path.relative_to(src / it.sample.class_name)
        _place(it.sample.path, out / rel)
        rows.append(
            {
                "file": rel.as_posix(),
                "class": it.sample.class_name,
                "split": s,
                "source": it.sample.source,
                "group": it.sample.group,
                "sha256": it.sha256,
                "dhash": f"{it.dhash:032x}",
                "original": str(it.sample.path),
                "label_confidence": it.sample.meta.get("label_confidence", ""),
            }
        )
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "split_report.json").write_text(json.dumps(report, indent=2))
    return report
