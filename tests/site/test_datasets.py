"""gallery.datasets: freezing the curated set (stratified, deterministic, duplicate sets kept together,
leaking sets refused) and exporting a version (checked file by file, and imported back)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from gallery import datasets
from gallery.datasets import export, freeze, import_dataset, request_export
from gallery.models import DatasetExport, DatasetItem, DatasetVersion, DuplicatePair, Painting
from gallery.uploads import save_painting
from ml.data import list_samples

from .factory import image_bytes, make_curator, make_painting

pytestmark = pytest.mark.django_db

_rng = random.Random(1234)


def far_hash() -> int:
    """A random 128-bit dHash: two of them sit ~64 bits apart, far from NEAR_DUPLICATE_BITS."""
    return _rng.getrandbits(128)


def labelled(
    label: str, split: str = "unassigned", group: str = "", dhash: int | None = None, **kw
) -> Painting:
    value = far_hash() if dhash is None else dhash
    return make_painting(label=label, split=split, group=group, dhash=f"{value:032x}", **kw)


def splits_of(version: DatasetVersion) -> dict[int, str]:
    return dict(version.items.values_list("painting_id", "split"))


# --------------------------------------------------------------------------------------------------
# Freezing
# --------------------------------------------------------------------------------------------------


def test_freezing_gives_unassigned_paintings_stratified_splits():
    for _ in range(40):
        labelled("cn")
    for _ in range(20):
        labelled("jp")
    make_painting(title="not labelled yet")  # no curated label: not in the set

    version = freeze("v1", seed=0, val=0.15, test=0.15)

    assert version.class_names == ["cn", "jp"]
    assert version.counts == {
        "train": {"cn": 28, "jp": 14},
        "val": {"cn": 6, "jp": 3},
        "test": {"cn": 6, "jp": 3},
    }
    assert version.items.count() == 60 and version.newly_assigned == 60
    # The paintings carry their new split, and the items snapshot it with the label.
    for item in version.items.select_related("painting"):
        assert item.split == item.painting.split != "unassigned"
        assert item.label == item.painting.label
    assert Painting.objects.filter(label__isnull=True).get().split == "unassigned"


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    for i in range(30):
        labelled("cn" if i % 3 else "jp")

    first = splits_of(freeze("a", seed=7))
    Painting.objects.update(split="unassigned")
    again = splits_of(freeze("b", seed=7))
    Painting.objects.update(split="unassigned")
    other = splits_of(freeze("c", seed=8))

    assert first == again
    assert first != other
    assert Counter(first.values()) == Counter(other.values())  # stratified the same way


def test_paintings_that_already_have_a_split_keep_it():
    kept = {labelled("cn", split="test").pk: "test", labelled("jp", split="val").pk: "val"}
    for _ in range(10):
        labelled("cn")
        labelled("jp")

    version = freeze("v1")

    assert {pk: splits_of(version)[pk] for pk in kept} == kept
    assert version.newly_assigned == 20


def test_a_group_stays_inside_one_split():
    groups = {
        f"work-{g}": [labelled("cn" if g % 2 else "jp", group=f"work-{g}") for _ in range(3)]
        for g in range(12)
    }

    splits = splits_of(freeze("v1", seed=3))

    for members in groups.values():
        assert len({splits[p.pk] for p in members}) == 1
    assert set(splits.values()) == {"train", "val", "test"}


def test_near_duplicates_stay_inside_one_split():
    pairs = []
    for i in range(15):
        base = far_hash()
        a = labelled("cn" if i % 2 else "jp", dhash=base)
        b = labelled("cn" if i % 2 else "jp", dhash=base ^ 0b1011)  # 3 bits apart
        pairs.append((a, b))

    splits = splits_of(freeze("v1"))

    assert all(splits[a.pk] == splits[b.pk] for a, b in pairs)
    assert set(splits.values()) == {"train", "val", "test"}


def test_a_near_duplicate_of_a_test_painting_joins_the_test_split():
    base = far_hash()
    in_test = labelled("cn", split="test", dhash=base)
    copy = labelled("cn", dhash=base ^ 1)
    grouped = labelled("jp", group="scroll-7")
    labelled("jp", split="val", group="scroll-7")
    for _ in range(6):
        labelled("cn")
        labelled("jp")

    splits = splits_of(freeze("v1"))

    assert splits[copy.pk] == splits[in_test.pk] == "test"
    assert splits[grouped.pk] == "val"


def test_paintings_without_a_stored_dhash_are_hashed_from_their_files():
    data = image_bytes("JPEG", size=(120, 90), seed=42)
    make_painting(data=data, label="cn", split="train")
    make_painting(data=data, label="cn", split="test")  # the same picture, filed twice
    labelled("jp", split="train")
    labelled("jp", split="test")

    with pytest.raises(ValidationError, match="near-duplicates"):
        freeze("v1")


def test_freezing_refuses_a_leaking_group_and_names_its_paintings():
    a = labelled("cn", split="train", group="fan-12", title="Fan, left half")
    b = labelled("cn", split="test", group="fan-12", title="Fan, right half")
    labelled("jp", split="train")
    before = sorted(Painting.objects.values_list("pk", "split"))

    with pytest.raises(ValidationError) as refused:
        freeze("v1")

    messages = refused.value.messages
    assert "Freezing refused: 1 duplicate set(s)" in messages[0]
    assert (
        messages[1]
        == f"group “fan-12” is split: #{a.pk} “Fan, left half” (train), #{b.pk} “Fan, right half” (test)"
    )
    assert not DatasetVersion.objects.exists() and not DatasetItem.objects.exists()
    assert sorted(Painting.objects.values_list("pk", "split")) == before


def test_freezing_refuses_near_duplicates_in_different_splits_and_names_the_pair():
    base = far_hash()
    a = labelled("cn", split="train", dhash=base, title="Autumn Mountains")
    b = labelled("cn", split="val", dhash=base ^ 0b111, title="Autumn Mountains (rescan)")
    labelled("jp")
    labelled("jp")

    with pytest.raises(ValidationError) as refused:
        freeze("v1")

    assert (
        f"#{a.pk} “Autumn Mountains” (train) and #{b.pk} “Autumn Mountains (rescan)” (val) are "
        "near-duplicates (3 bits apart)"
    ) in refused.value.messages
    assert Painting.objects.filter(split="unassigned").count() == 2  # nothing assigned either


def test_a_pair_a_curator_dismissed_does_not_block_freezing():
    base = far_hash()
    a = labelled("cn", split="train", dhash=base)
    b = labelled("cn", split="test", dhash=base ^ 0b11)
    labelled("jp", split="train")
    DuplicatePair.objects.create(a=a, b=b, kind="dhash", distance=2, status="dismissed")

    version = freeze("v1")

    assert splits_of(version)[a.pk] == "train" and splits_of(version)[b.pk] == "test"


def test_freezing_needs_two_classes_and_a_new_name():
    labelled("cn")
    with pytest.raises(ValidationError, match="at least two"):
        freeze("v1")
    labelled("jp")
    freeze("v1")
    with pytest.raises(ValidationError, match="exists already"):
        freeze("v1")
    with pytest.raises(ValidationError, match="fractions"):
        freeze("v2", val=0.6, test=0.5)


def test_the_freeze_command_prints_the_counts_and_reports_refusals():
    for _ in range(10):
        labelled("cn")
        labelled("kr")
    out = io.StringIO()

    call_command("freeze_dataset", "2025-06", "--seed", "1", "--val", "0.2", "--test", "0.2", stdout=out)

    version = DatasetVersion.objects.get(name="2025-06")
    assert (version.seed, version.val_fraction, version.test_fraction) == (1, 0.2, 0.2)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["split", "cn", "kr", "total"]
    assert lines[1].split() == ["train", "6", "6", "12"]
    assert "20 paintings, 20 newly given a split" in lines[-1]

    labelled("cn", split="train", group="g")
    labelled("cn", split="test", group="g")
    with pytest.raises(CommandError, match="group “g” is split"):
        call_command("freeze_dataset", "2025-07", stdout=io.StringIO())


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------


def real_paintings(per_class: dict[str, int], seed: int = 0) -> list[Painting]:
    """Paintings saved the way uploads are (real sha256 and dHash), labelled, some grouped."""
    paintings = []
    for cls, n in per_class.items():
        for i in range(n):
            seed += 1
            fmt = "PNG" if i % 3 == 0 else "JPEG"
            painting, _ = save_painting(
                image_bytes(fmt, size=(96, 72), seed=seed),
                f"{cls} scroll {i}.{fmt.lower()}",
                source=f"museum-{i % 2}",
                license="CC0" if i % 2 else "public domain",
            )
            if i < 2:
                Painting.objects.filter(pk=painting.pk).update(group=f"{cls}-album")
            painting.relabel(cls, reason="test")
            paintings.append(painting)
    return paintings


@pytest.fixture
def frozen(db) -> DatasetVersion:
    real_paintings({"cn": 9, "jp": 6, "kr": 3})
    return freeze("2025-06 spring", seed=0, by=make_curator())


def build(version: DatasetVersion, django_capture_on_commit_callbacks) -> DatasetExport:
    """Request an export as the page does, then run the worker's function here."""
    with django_capture_on_commit_callbacks(execute=False) as queued:
        requested = request_export(version)
    assert len(queued) == 1 and requested.status == "pending"
    return export(requested.pk)


def read_zip(path: Path) -> tuple[zipfile.ZipFile, list[dict]]:
    archive = zipfile.ZipFile(path)
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    return archive, rows


def test_the_export_matches_its_manifest_file_by_file(
    frozen, django_capture_on_commit_callbacks, media_in_tmp
):
    done = build(frozen, django_capture_on_commit_callbacks)

    assert (done.status, done.done_items, done.total_items) == ("done", 18, 18)
    path = Path(done.file.path)
    assert path.parent == media_in_tmp / "exports" and path.suffix == ".zip"
    archive, rows = read_zip(path)
    assert list(rows[0]) == datasets.MANIFEST_FIELDS
    items = {i.painting_id: i for i in frozen.items.select_related("painting")}
    assert sorted(int(r["id"]) for r in rows) == sorted(items)
    for row in rows:
        item = items[int(row["id"])]
        content = archive.read(row["file"])
        assert hashlib.sha256(content).hexdigest() == row["sha256"] == item.painting.sha256
        assert content == item.painting.image.read()  # the original file, byte for byte
        assert (row["label"], row["split"]) == (item.label, item.split)
        assert row["file"].startswith(f"data/{item.split}/{item.label}/{item.painting_id}_")
        assert (row["source"], row["license"], row["group"]) == (
            item.painting.source,
            item.painting.license,
            item.painting.group,
        )
    image_files = {n for n in archive.namelist() if n.startswith("data/")}
    assert image_files == {r["file"] for r in rows}
    jsonl = [json.loads(line) for line in archive.read("manifest.jsonl").decode().splitlines()]
    assert [{k: str(v) for k, v in r.items()} for r in jsonl] == rows
    readme = archive.read("README.md").decode()
    assert "2025-06 spring" in readme and "curator" in readme
    assert "python -m ml train --data data --out runs/x" in readme
    assert "| train | " in readme and "| all | 9 | 6 | 3 | 18 |" in readme


def test_the_export_reads_as_the_study_layout(frozen, django_capture_on_commit_callbacks, tmp_path):
    done = build(frozen, django_capture_on_commit_callbacks)
    zipfile.ZipFile(done.file.path).extractall(tmp_path / "unzipped")

    samples, names = list_samples(tmp_path / "unzipped" / "data", "train")

    assert names == ["cn", "jp", "kr"]
    assert len(samples) == frozen.items.filter(split="train").count()
    assert {s.source for s in samples} == {"museum-0", "museum-1"}  # the manifest beside data/ is read


def test_progress_is_written_while_the_export_runs(frozen, django_capture_on_commit_callbacks, monkeypatch):
    seen = []
    add_file = datasets._add_file

    def add_and_look(archive, item, arcname):
        export_row = DatasetExport.objects.get()
        seen.append((export_row.status, export_row.done_items))
        add_file(archive, item, arcname)

    monkeypatch.setattr(datasets, "PROGRESS_EVERY", 4)
    monkeypatch.setattr(datasets, "_add_file", add_and_look)
    build(frozen, django_capture_on_commit_callbacks)

    assert {status for status, _ in seen} == {"running"}
    assert [n for _, n in seen] == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 16, 16]
    assert DatasetExport.objects.get().done_items == 18


def test_a_file_changed_on_disk_fails_the_export_and_leaves_no_zip(
    frozen, django_capture_on_commit_callbacks, media_in_tmp
):
    victim = frozen.items.select_related("painting").first().painting
    Path(victim.image.path).write_bytes(image_bytes("JPEG", size=(96, 72), seed=999))

    with pytest.raises(datasets.FileChanged):
        build(frozen, django_capture_on_commit_callbacks)

    failed = DatasetExport.objects.get()
    assert failed.status == "failed" and f"painting {victim.pk}" in failed.error
    assert not failed.file and list((media_in_tmp / "exports").iterdir()) == []


def test_running_the_export_twice_keeps_the_first_zip(frozen, django_capture_on_commit_callbacks):
    done = build(frozen, django_capture_on_commit_callbacks)
    stamp = Path(done.file.path).stat().st_mtime_ns

    again = export(done.pk)

    assert again.file.name == done.file.name and Path(again.file.path).stat().st_mtime_ns == stamp


def test_the_worker_task_builds_the_export():
    from gallery.tasks import export_dataset

    real_paintings({"cn": 2, "jp": 2})
    version = freeze("tiny")
    requested = DatasetExport.objects.create(dataset_version=version)

    assert export_dataset.apply(args=(requested.pk,)).get() == 4
    requested.refresh_from_db()
    assert requested.status == "done" and requested.file


def test_the_streamed_manifests_equal_the_zip_manifest(frozen, django_capture_on_commit_callbacks):
    _, zip_rows = read_zip(Path(build(frozen, django_capture_on_commit_callbacks).file.path))

    csv_rows = list(csv.DictReader(io.StringIO("".join(datasets.csv_lines(datasets.manifest_rows(frozen))))))
    jsonl_rows = [
        json.loads(line)
        for line in "".join(datasets.jsonl_lines(datasets.manifest_rows(frozen))).splitlines()
    ]

    assert csv_rows == zip_rows
    assert [{k: str(v) for k, v in r.items()} for r in jsonl_rows] == zip_rows


def test_an_export_imported_into_an_empty_gallery_gives_the_same_set(
    frozen, django_capture_on_commit_callbacks, tmp_path
):
    done = build(frozen, django_capture_on_commit_callbacks)
    zip_copy = tmp_path / "export.zip"
    zip_copy.write_bytes(Path(done.file.path).read_bytes())

    def snapshot():
        return sorted(
            Painting.objects.values_list("sha256", "label", "split", "group", "source", "license", "title")
        )

    expected = sorted(frozen.items.values_list("painting__sha256", "label", "split"))
    before = snapshot()
    DatasetVersion.objects.all().delete()
    Painting.objects.all().delete()

    report = import_dataset(zip_copy)

    assert report.totals()["imported"] == 18 and not report.skipped
    assert sorted(Painting.objects.values_list("sha256", "label", "split")) == expected
    assert snapshot() == before  # groups, sources, licences and titles come back too
    assert set(Painting.objects.values_list("label_changes__reason", flat=True)) == {
        "import from " + str(zip_copy)
    }
