"""Datasets: importing labelled folders and zips, freezing the curated set into a ``DatasetVersion``,
and exporting a version in the study's layout.

These workflows span several models (Painting, LabelChange, DatasetVersion, DatasetItem,
DatasetExport), so they live here rather than on one of them. The command, the pages and the worker
task are thin shells over the functions below.

- ``import_dataset(path)`` reads ``{train,val,test}/{class}/``, a flat ``{class}/`` tree, a zip of
  either, or a folder with a ``manifest.csv`` (``ml.data`` finds the files); every file goes through
  ``gallery.uploads.save_painting`` (the checks every upload gets) and its folder becomes its curated
  label through ``Painting.relabel`` (so the label has history). Running it twice changes nothing.
- ``freeze(name, seed, val, test, by)`` snapshots every painting with a curated label; paintings
  without a split get one (``ml.split``: stratified, deterministic, groups and near-duplicates kept
  together), and a set whose existing splits leak a duplicate group is refused, naming the paintings.
- ``export(export_id)`` writes a version's zip: ``data/{split}/{class}/``, ``manifest.csv``,
  ``manifest.jsonl`` and a README, reporting progress on the ``DatasetExport`` row.

PIL and numpy only (``ml.data`` and ``ml.split`` import no torch): the web process stays light.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import tempfile
import uuid
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename, slugify
from PIL import Image, ImageOps

from gallery.models import (
    LABEL_RE,
    DatasetExport,
    DatasetItem,
    DatasetVersion,
    DuplicatePair,
    Painting,
    Split,
)
from gallery.uploads import UploadRefused, inspect_image, save_painting, to_rgb
from ml.data import (
    IMAGE_EXTENSIONS,
    SPLITS,
    Sample,
    find_class_names,
    is_image_file,
    is_split_layout,
    list_samples,
)
from ml.split import NEAR_DUPLICATE_BITS, Item, UnionFind, assign_splits, dhash, find_duplicates

log = logging.getLogger(__name__)

IMPORTED, PRESENT, SKIPPED = "imported", "present", "skipped"


# --------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------


class ImportRefused(ValueError):
    """The whole import cannot start (not a dataset, a damaged zip, class folders that are not class
    names); the message says why. Single bad files are skipped instead, with their reasons."""


@dataclass
class ImportedFile:
    name: str  # the file's path inside the dataset, e.g. "train/cn/mountains.jpg"
    class_name: str
    outcome: str  # imported | present | skipped
    reason: str = ""  # why it was skipped
    painting_id: int | None = None
    relabelled: bool = False  # already present, with another curated label before this import
    split: str = ""


@dataclass
class ImportReport:
    source: str  # what was read: the path, or the uploaded file's name
    layout: str  # "train/val/test" or "class folders"
    has_manifest: bool
    class_names: list[str]
    dry_run: bool
    files: list[ImportedFile] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """{class: {imported, present, relabelled, skipped}}, every class listed."""
        table = {c: {IMPORTED: 0, PRESENT: 0, "relabelled": 0, SKIPPED: 0} for c in self.class_names}
        for f in self.files:
            row = table.setdefault(f.class_name, {IMPORTED: 0, PRESENT: 0, "relabelled": 0, SKIPPED: 0})
            row[f.outcome] += 1
            row["relabelled"] += f.relabelled
        return table

    def totals(self) -> dict[str, int]:
        totals = Counter({IMPORTED: 0, PRESENT: 0, "relabelled": 0, SKIPPED: 0})
        for row in self.counts().values():
            totals.update(row)
        return dict(totals)

    @property
    def skipped(self) -> list[ImportedFile]:
        return sorted((f for f in self.files if f.outcome == SKIPPED), key=lambda f: f.name)


def _visible_dirs(folder: Path) -> list[Path]:
    # As ml.data: "__MACOSX", ".git" and the like are not class folders.
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))


def dataset_root(root: Path) -> Path:
    """Where the class (or split) folders start. A zip, or a copied folder, often wraps the dataset
    in one folder ("sansuha-v1/cn/...", "export/data/train/cn/..."): step into a lone folder as long
    as it holds folders itself; a lone folder of images is a one-class dataset, not a wrapper."""
    while not is_split_layout(root):
        dirs = _visible_dirs(root)
        if len(dirs) != 1 or any(is_image_file(p) for p in root.iterdir()) or not _visible_dirs(dirs[0]):
            break
        root = dirs[0]
    return root


@contextmanager
def _opened(path_or_file, max_files: int | None, max_bytes: int | None) -> Iterator[tuple[Path, list]]:
    """A folder to read, and the (name in the zip, reason) of the entries not extracted. A zip (a path
    or an uploaded file) is extracted into a temporary folder that disappears afterwards."""
    if isinstance(path_or_file, str | Path):
        path = Path(path_or_file)
        if path.is_dir():
            yield path, []
            return
        if not path.is_file():
            raise ImportRefused(f"{path} is neither a folder nor a zip archive.")
        if not zipfile.is_zipfile(path):
            raise ImportRefused(f"{path} is not a zip archive; give a folder or a zip.")
    else:
        if not zipfile.is_zipfile(path_or_file):
            raise ImportRefused("The file is not a zip archive.")
        path_or_file.seek(0)
        path = path_or_file
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRefused(f"The zip archive is damaged ({exc}).") from None
    with archive, tempfile.TemporaryDirectory(prefix="sansuha-import-") as tmp:
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if max_files is not None and len(entries) > max_files:
            raise ImportRefused(
                f"The zip holds {len(entries)} files; this page takes at most {max_files}. "
                "Import larger sets with `python manage.py import_dataset`."
            )
        if max_bytes is not None and sum(i.file_size for i in entries) > max_bytes:
            raise ImportRefused(
                f"The zip unpacks to {sum(i.file_size for i in entries) / 2**30:.1f} GB; this page takes at "
                f"most {max_bytes / 2**30:.1f} GB. Import larger sets with `python manage.py import_dataset`."
            )
        refused = []
        for info in entries:
            if info.file_size > settings.UPLOAD_MAX_BYTES:
                # Not even unpacked: the same limit as an upload, said the same way.
                refused.append(
                    (
                        info.filename,
                        f"The file is {info.file_size / 2**20:.1f} MB; "
                        f"the limit is {settings.UPLOAD_MAX_BYTES / 2**20:.1f} MB.",
                    )
                )
                continue
            try:
                archive.extract(info, tmp)  # extract() drops absolute paths and ".." components
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                refused.append((info.filename, f"The zip entry cannot be unpacked ({exc})."))
        yield Path(tmp), refused


def _class_names(root: Path) -> list[str]:
    try:
        names = find_class_names(root, min_classes=1)
    except ValueError:
        raise ImportRefused(
            f"No class folders found in {root.name or root}: expected {{class}}/ or "
            "{train,val,test}/{class}/ folders of images (a folder's name is its class)."
        ) from None
    bad = [n for n in names if not LABEL_RE.fullmatch(n)]
    if bad:
        raise ImportRefused(
            "These folder names are not class names (1-32 lower-case letters, digits, '-' or '_'): "
            + ", ".join(bad)
            + ". Rename the folders and import again."
        )
    return names


def _class_of(parts: tuple[str, ...], split_layout: bool) -> tuple[str, str]:
    """(class, split) of a path inside the dataset, from its folders."""
    if split_layout and len(parts) > 2 and parts[0] in SPLITS:
        return parts[1], parts[0]
    return (parts[0] if len(parts) > 1 else ""), ""


def _collect(root: Path, names: list[str]) -> tuple[list[tuple[Sample, str]], list[Path]]:
    """(sample, split) for every image file, and the other files inside class folders."""
    split_layout = is_split_layout(root)
    samples: list[tuple[Sample, str]] = []
    for split in SPLITS if split_layout else (None,):
        if split is not None and not (root / split).is_dir():
            continue
        found, _ = list_samples(root, split, class_names=names)
        samples += [(s, split or "") for s in found]
    images = {s.path for s, _ in samples}
    bases = [root / s for s in SPLITS if (root / s).is_dir()] if split_layout else [root]
    others = sorted(
        p
        for base in bases
        for name in names
        if (base / name).is_dir()
        for p in (base / name).rglob("*")
        if p.is_file() and p not in images and not p.name.startswith(".")
    )
    return samples, others


def import_dataset(
    path_or_file,
    *,
    source: str = "",
    license: str = "",
    dry_run: bool = False,
    by=None,
    name: str | None = None,
    progress: Callable[[list], Iterable] | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> ImportReport:
    """Import a labelled dataset; see the module's docstring for the layouts.

    ``path_or_file``: a folder, a zip's path, or an open zip file (an upload). ``source`` and
    ``license`` fill in what a manifest does not say. ``by`` is recorded as the uploader and on each
    label change. ``progress`` wraps the list of files (the command passes tqdm). ``max_files`` and
    ``max_bytes`` bound what a zip may unpack to (the page sets them). With ``dry_run`` every check
    runs but nothing is written: no rows, no files, no label changes.
    """
    name = name or str(path_or_file if isinstance(path_or_file, str | Path) else path_or_file.name)
    with _opened(path_or_file, max_files, max_bytes) as (folder, refused):
        root = dataset_root(folder)
        names = _class_names(root)
        split_layout = is_split_layout(root)
        samples, others = _collect(root, names)
        report = ImportReport(
            source=name,
            layout="train/val/test" if split_layout else "class folders",
            has_manifest=any(s.meta for s, _ in samples),
            class_names=names,
            dry_run=dry_run,
        )
        for zip_name, reason in refused:
            parts = PurePosixPath(zip_name).parts
            try:  # the entry's place relative to the dataset's root inside the zip
                parts = PurePosixPath(zip_name).relative_to(root.relative_to(folder).as_posix()).parts
            except ValueError:
                pass
            cls, _ = _class_of(parts, split_layout)
            if cls in names:
                report.files.append(ImportedFile("/".join(parts), cls, SKIPPED, reason))
        accepted = ", ".join(sorted(IMAGE_EXTENSIONS))
        for path in others:
            rel = path.relative_to(root)
            cls, _ = _class_of(rel.parts, split_layout)
            reason = f"Not an image file name ({path.suffix or 'no extension'}); images end in {accepted}."
            report.files.append(ImportedFile(rel.as_posix(), cls, SKIPPED, reason))
        seen: dict[str, ImportedFile] = {}  # sha256 -> the first file with that content in this import
        for sample, split in progress(samples) if progress else samples:
            report.files.append(
                _import_one(sample, split, root, seen, source, license, dry_run, by, f"import from {name}")
            )
    done = report.totals()
    log.info(
        "import of %s%s: %d imported, %d already present (%d relabelled), %d skipped",
        name,
        " (dry run)" if dry_run else "",
        done[IMPORTED],
        done[PRESENT],
        done["relabelled"],
        done[SKIPPED],
    )
    return report


def _import_one(
    sample: Sample, split: str, root: Path, seen: dict, source: str, license: str, dry_run: bool, by, reason
) -> ImportedFile:
    rel = sample.path.relative_to(root).as_posix()
    result = ImportedFile(rel, sample.class_name, SKIPPED, split=split)
    row = sample.meta  # the manifest's row, or {}
    try:
        size = sample.path.stat().st_size
        if size > settings.UPLOAD_MAX_BYTES:  # refused before reading it into memory
            raise UploadRefused(
                f"The file is {size / 2**20:.1f} MB; the limit is {settings.UPLOAD_MAX_BYTES / 2**20:.1f} MB."
            )
        data = sample.path.read_bytes()
    except OSError as exc:
        result.reason = f"The file cannot be read ({exc})."
        return result
    except UploadRefused as exc:
        result.reason = " ".join(exc.messages)
        return result
    sha256 = hashlib.sha256(data).hexdigest()
    if row.get("sha256") and row["sha256"].lower() != sha256:
        result.reason = (
            "The file's SHA-256 differs from the manifest's: it changed after the manifest was written."
        )
        return result
    first = seen.get(sha256)
    if first is not None and first.class_name != sample.class_name:
        # Importing both would flip the label back and forth on every run.
        result.reason = (
            f"The same file is also {first.name} (class {first.class_name}); a file has one label: "
            "remove one of them."
        )
        return result
    meta = {
        "source": (row.get("source") or source)[:200],
        "license": (row.get("license") or license)[:200],
        "title": (row.get("title") or "")[:300],
        "group": (row.get("group") or "")[:200],
        "split": split or Split.UNASSIGNED,
    }
    try:
        if dry_run:
            inspect_image(data)  # every check an upload gets, nothing stored
            painting = Painting.objects.filter(sha256=sha256).first()
            result.outcome = PRESENT if painting or first else IMPORTED
            result.painting_id = painting.pk if painting else None
            result.relabelled = bool(painting and painting.label != sample.class_name)
        else:
            painting, created = save_painting(data, _original_name(sample), by, **meta)
            change = painting.relabel(sample.class_name, by=by, reason=reason)
            result.outcome = IMPORTED if created else PRESENT
            result.painting_id = painting.pk
            result.relabelled = bool(change and not created)
            if not created:
                _fill_in(painting, meta)
    except UploadRefused as exc:
        result.reason = " ".join(exc.messages)
        return result
    seen.setdefault(sha256, result)
    return result


def _original_name(sample: Sample) -> str:
    """The file's name, less the "<painting id>_" an export put in front of it."""
    name, painting_id = sample.path.name, sample.meta.get("id", "")
    prefix = f"{painting_id}_"
    if painting_id and name.startswith(prefix) and len(name) > len(prefix):
        return name[len(prefix) :]
    return name


def _fill_in(painting: Painting, meta: dict) -> None:
    """An already-present painting keeps what it has; the import only fills in a split and a group it
    lacks (never moving a painting to another split: that could leak a frozen test set)."""
    updates = {}
    if painting.split == Split.UNASSIGNED and meta["split"] != Split.UNASSIGNED:
        updates["split"] = meta["split"]
    if not painting.group and meta["group"]:
        updates["group"] = meta["group"]
    if updates:
        Painting.objects.filter(pk=painting.pk).update(**updates)


# --------------------------------------------------------------------------------------------------
# Freeze
# --------------------------------------------------------------------------------------------------


def _group_key(p: Painting) -> str:
    return f"group:{p.group}" if p.group else f"painting:{p.pk}"


def _dhash_of(p: Painting) -> int | None:
    """The painting's 128-bit dHash; computed (and stored) for rows from before uploads kept one."""
    if p.dhash:
        return int(p.dhash, 16)
    try:
        with p.image.open("rb") as f, Image.open(f) as im:
            im.seek(0)
            value = dhash(to_rgb(ImageOps.exif_transpose(im)))  # as an upload computes it
    except Exception as exc:  # noqa: BLE001 - an unreadable file only loses its duplicate check
        log.warning("painting %s: no dHash (%s)", p.pk, exc)
        return None
    Painting.objects.filter(pk=p.pk).update(dhash=f"{value:032x}")
    return value


def near_duplicates(paintings: list[Painting]) -> list[tuple[Painting, Painting, int]]:
    """(a, b, dHash bits apart) for the near-duplicate pairs among ``paintings`` (ml.split's rule,
    NEAR_DUPLICATE_BITS), less the pairs a curator dismissed as different works."""
    items, owners = [], []
    for p in paintings:
        value = _dhash_of(p)
        if value is not None:
            sample = Sample(path=Path(p.image.name), label=0, class_name=p.label or "", group=_group_key(p))
            items.append(Item(sample=sample, sha256=p.sha256, dhash=value))
            owners.append(p)
    dismissed = {
        frozenset(pair)
        for pair in DuplicatePair.objects.filter(status=DuplicatePair.Status.DISMISSED).values_list("a", "b")
    }
    return [
        (owners[i], owners[j], d)
        for i, j, _, d in find_duplicates(items, NEAR_DUPLICATE_BITS)
        if frozenset((owners[i].pk, owners[j].pk)) not in dismissed
    ]


def _describe(p: Painting) -> str:
    return f"#{p.pk} “{p.display_title}” ({p.split})"


def _leaks(
    members: dict[str, list[Painting]], pairs: list[tuple[Painting, Painting, int]], components: UnionFind
) -> list[str]:
    """One message per duplicate set whose paintings already sit in different splits."""
    messages = []
    pairs_of: dict[str, list] = defaultdict(list)
    for a, b, d in pairs:
        pairs_of[components.find(_group_key(a))].append((a, b, d))
    for root in sorted(members):
        assigned = [p for p in members[root] if p.split != Split.UNASSIGNED]
        if len({p.split for p in assigned}) < 2:
            continue
        reasons = []
        by_group = defaultdict(list)
        for p in assigned:
            if p.group:
                by_group[p.group].append(p)
        for group, ps in sorted(by_group.items()):
            if len({p.split for p in ps}) > 1:
                reasons.append(f"group “{group}” is split: " + ", ".join(_describe(p) for p in ps))
        for a, b, d in pairs_of[root]:
            if Split.UNASSIGNED not in (a.split, b.split) and a.split != b.split:
                reasons.append(f"{_describe(a)} and {_describe(b)} are near-duplicates ({d} bits apart)")
        if not reasons:  # linked only through unassigned paintings: name the whole set
            linked = ", ".join(f"#{p.pk}" for p in members[root])
            reasons.append(
                "duplicates and groups link "
                + ", ".join(_describe(p) for p in assigned)
                + f" (through {linked})"
            )
        messages.append(reasons)
    return messages


def freeze(
    name: str, seed: int = 0, val: float = 0.15, test: float = 0.15, by=None, notes: str = ""
) -> DatasetVersion:
    """Freeze every painting with a curated label into a new ``DatasetVersion``.

    Paintings with a split keep it; the others get one, stratified by class and deterministic for
    ``seed``, whole duplicate sets at a time (a manifest group, or near-duplicates by dHash). A set
    whose paintings already sit in different splits is a leak: nothing is written and a
    ValidationError lists the paintings. The returned version carries ``newly_assigned``: how many
    paintings got their split now.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the dataset version a name.")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValidationError("The validation and test fractions must be in [0, 1) and sum to less than 1.")
    if DatasetVersion.objects.filter(name=name).exists():
        raise ValidationError(f"A dataset version named “{name}” exists already; choose another name.")
    with transaction.atomic():
        # Locked until the snapshot is written: a relabel meanwhile waits rather than half-applies.
        paintings = list(
            Painting.objects.select_for_update()
            .exclude(label__isnull=True)
            .exclude(label="")
            .order_by("pk")
            .defer("thumbnail")
        )
        class_names = sorted({p.label for p in paintings})
        if len(class_names) < 2:
            raise ValidationError(
                f"Curated labels name {len(class_names)} class(es) ({', '.join(class_names) or 'none'}); "
                "a dataset needs at least two. Label more paintings first."
            )
        components = UnionFind()
        for p in paintings:
            components.find(_group_key(p))
        pairs = near_duplicates(paintings)
        for a, b, _ in pairs:
            components.union(_group_key(a), _group_key(b))
        members: dict[str, list[Painting]] = defaultdict(list)
        for p in paintings:
            members[components.find(_group_key(p))].append(p)
        leaks = _leaks(members, pairs, components)
        if leaks:
            raise ValidationError(
                [
                    f"Freezing refused: {len(leaks)} duplicate set(s) straddle splits already "
                    f"(near-duplicates: dHash at most {NEAR_DUPLICATE_BITS} bits apart). Put each set in "
                    "one split, or dismiss the pairs that are different works, and freeze again."
                ]
                + [line for lines in leaks for line in lines]
            )
        newly = _assign(members, val, test, seed)
        counts = {s: {c: 0 for c in class_names} for s in SPLITS}
        for p in paintings:
            counts[p.split][p.label] += 1
        try:
            with transaction.atomic():
                version = DatasetVersion.objects.create(
                    name=name,
                    seed=seed,
                    val_fraction=val,
                    test_fraction=test,
                    class_names=class_names,
                    counts=counts,
                    created_by=by if getattr(by, "is_authenticated", False) else None,
                    notes=notes,
                )
        except IntegrityError:
            raise ValidationError(
                f"A dataset version named “{name}” exists already; choose another name."
            ) from None
        DatasetItem.objects.bulk_create(
            [
                DatasetItem(dataset_version=version, painting=p, label=p.label, split=p.split)
                for p in paintings
            ],
            batch_size=1000,
        )
        for split in SPLITS:
            ids = [p.pk for p in newly if p.split == split]
            if ids:
                Painting.objects.filter(pk__in=ids).update(split=split)
    version.newly_assigned = len(newly)
    log.info("froze %s: %d paintings, %d newly assigned a split", name, len(paintings), len(newly))
    return version


def _assign(members: dict[str, list[Painting]], val: float, test: float, seed: int) -> list[Painting]:
    """Give every unassigned painting a split (in memory); return them."""
    newly, loose = [], []
    for root, ps in members.items():
        assigned = {p.split for p in ps} - {Split.UNASSIGNED}
        for p in ps:
            if p.split != Split.UNASSIGNED:
                continue
            if assigned:  # the set already has its split: join it
                p.split = next(iter(assigned))
                newly.append(p)
            else:
                loose.append((root, p))
    if loose:
        names = assign_splits([r for r, _ in loose], [p.label for _, p in loose], val, test, seed)
        for (_, p), split in zip(loose, names, strict=True):
            p.split = split
            newly.append(p)
    return newly


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------

MANIFEST_FIELDS = ["id", "file", "label", "split", "sha256", "source", "license", "group", "title"]
PROGRESS_EVERY = 25  # items between progress writes: a live bar without a write per file


def item_path(item: DatasetItem) -> str:
    """The file's place in the export: data/{split}/{class}/{painting id}_{name}.{ext}."""
    original = PurePosixPath(item.painting.image.name)
    stem = get_valid_filename(original.stem)[:80] or "painting"
    return f"data/{item.split}/{item.label}/{item.painting_id}_{stem}{original.suffix.lower()}"


def manifest_row(item: DatasetItem) -> dict:
    p = item.painting
    return {
        "id": p.pk,
        "file": item_path(item),
        "label": item.label,
        "split": item.split,
        "sha256": p.sha256,
        "source": p.source,
        "license": p.license,
        "group": p.group,
        "title": p.title,
    }


def _items(version: DatasetVersion):
    return (
        version.items.select_related("painting")
        .only(
            "label",
            "split",
            "painting",
            *(
                f"painting__{f}"
                for f in ("image", "sha256", "source", "license", "group", "title", "created")
            ),
        )
        .order_by("split", "label", "painting_id")
    )


def manifest_rows(version: DatasetVersion) -> Iterator[dict]:
    """The version's manifest, straight from the database (the downloads need no worker)."""
    for item in _items(version).iterator(chunk_size=500):
        yield manifest_row(item)


def csv_lines(rows: Iterable[dict]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buf.tell() > 1 << 16:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(row, ensure_ascii=False) + "\n"


def request_export(version: DatasetVersion, by=None) -> DatasetExport:
    """A new export row, sent to the worker once the transaction commits."""
    export = DatasetExport.objects.create(
        dataset_version=version,
        total_items=version.items.count(),
        requested_by=by if getattr(by, "is_authenticated", False) else None,
    )
    transaction.on_commit(lambda: _queue(export.pk))
    return export


def _queue(export_id: int) -> None:
    from gallery.tasks import export_dataset

    try:
        export_dataset.apply_async((export_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds of connection errors
        log.warning("broker unavailable, export %s not queued: %s", export_id, exc)
        DatasetExport.objects.filter(pk=export_id, status=DatasetExport.Status.PENDING).update(
            status=DatasetExport.Status.FAILED,
            error=f"The worker's queue could not be reached ({exc}). Build the export again once it is up.",
            finished=timezone.now(),
        )


def _readme(export: DatasetExport, counts: dict[str, dict[str, int]], class_names: list[str]) -> str:
    version = export.dataset_version
    zip_name = Path(export.file.name or f"{slugify(version.name)}.zip").name
    who = version.created_by.get_username() if version.created_by else "—"
    requester = export.requested_by.get_username() if export.requested_by else "—"
    header = "| split | " + " | ".join(class_names) + " | total |"
    lines = [header, "|" + "---|" * (len(class_names) + 2)]
    for split in SPLITS:
        row = [counts.get(split, {}).get(c, 0) for c in class_names]
        lines.append(f"| {split} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    total = [sum(counts.get(s, {}).get(c, 0) for s in SPLITS) for c in class_names]
    lines.append("| all | " + " | ".join(map(str, total)) + f" | {sum(total)} |")
    notes = f"\n{version.notes.strip()}\n" if version.notes.strip() else ""
    return f"""# Sansuha dataset “{version.name}”

Frozen {version.created:%Y-%m-%d %H:%M} UTC by {who} (split seed {version.seed}, validation
{version.val_fraction:.0%}, test {version.test_fraction:.0%}); exported {timezone.now():%Y-%m-%d %H:%M} UTC by
{requester}.
{notes}
{chr(10).join(lines)}

## What is inside

- `data/{{train,val,test}}/{{class}}/`: the original files, each named `<painting id>_<name>`.
- `manifest.csv` and `manifest.jsonl`: one row per file: {", ".join(MANIFEST_FIELDS)}.
  `sha256` is the file's own hash; `group` marks files of one work (kept inside one split).

Licences differ per file (the `license` column); check them before sharing the images further.

## Train a model on it

    unzip {zip_name} -d {slugify(version.name) or "dataset"} && cd {slugify(version.name) or "dataset"}
    python -m ml train --data data --out runs/x
    python -m ml evaluate --checkpoint runs/x/best.pt --data data --out runs/x/eval

## Import it into another Sansuha site

    python manage.py import_dataset {zip_name}
"""


def export(export_id: int) -> DatasetExport:
    """Write the export's zip into MEDIA_ROOT/exports/, updating its progress; safe to run twice.

    Each file is checked against its painting's SHA-256 on the way: an export never ships a file
    that changed on disk since it was uploaded.
    """
    exp = DatasetExport.objects.select_related("dataset_version__created_by", "requested_by").get(
        pk=export_id
    )
    if exp.status == DatasetExport.Status.DONE and exp.file and exp.file.storage.exists(exp.file.name):
        return exp
    version = exp.dataset_version
    items = list(_items(version))
    DatasetExport.objects.filter(pk=exp.pk).update(
        status=DatasetExport.Status.RUNNING, done_items=0, total_items=len(items), error="", finished=None
    )
    folder = Path(settings.MEDIA_ROOT) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"exports/{slugify(version.name) or 'dataset'}-{exp.pk}.zip"
    final = Path(settings.MEDIA_ROOT) / name
    # Never a half-written zip under the final name; a unique name per run, should a redelivered task
    # build the same export alongside.
    part = folder / f".{final.name}.{uuid.uuid4().hex}.part"
    try:
        rows = []
        counts: dict[str, dict[str, int]] = defaultdict(Counter)
        with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for n, item in enumerate(items, 1):
                row = manifest_row(item)
                _add_file(archive, item, row["file"])
                rows.append(row)
                counts[item.split][item.label] += 1
                if n % PROGRESS_EVERY == 0:
                    DatasetExport.objects.filter(pk=exp.pk).update(done_items=n)
            archive.writestr("manifest.csv", "".join(csv_lines(rows)))
            archive.writestr("manifest.jsonl", "".join(jsonl_lines(rows)))
            exp.file.name = name
            archive.writestr("README.md", _readme(exp, counts, version.class_names))
        os.replace(part, final)
    except Exception as exc:
        part.unlink(missing_ok=True)
        DatasetExport.objects.filter(pk=exp.pk).update(
            status=DatasetExport.Status.FAILED, error=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
        raise
    DatasetExport.objects.filter(pk=exp.pk).update(
        status=DatasetExport.Status.DONE, done_items=len(items), file=name, finished=timezone.now()
    )
    exp.refresh_from_db()
    log.info("exported %s: %d files to %s", version.name, len(items), name)
    return exp


class FileChanged(RuntimeError):
    """A painting's file on disk no longer matches the SHA-256 it was uploaded with."""


def _add_file(archive: zipfile.ZipFile, item: DatasetItem, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname, date_time=item.painting.created.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED  # JPEG, PNG, WebP are compressed already
    info.external_attr = 0o644 << 16
    h = hashlib.sha256()
    with item.painting.image.open("rb") as src, archive.open(info, "w", force_zip64=True) as dst:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            dst.write(chunk)
    if h.hexdigest() != item.painting.sha256:
        raise FileChanged(
            f"painting {item.painting_id}'s file {item.painting.image.name} no longer matches its SHA-256"
        )
