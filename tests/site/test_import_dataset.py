"""manage.py import_dataset (gallery.datasets.import_dataset): every accepted layout, bad files inside,
re-runs and dry runs. Images are generated here, except one test on a slice of the real sansuha-v1."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from gallery.datasets import import_dataset
from gallery.models import LabelChange, Painting

from .factory import image_bytes, make_painting

pytestmark = pytest.mark.django_db

SANSUHA_V1 = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sansuha-v1"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def img(seed: int, fmt: str = "JPEG") -> bytes:
    return image_bytes(fmt, size=(96, 80), seed=seed)


def study_layout(root: Path) -> dict[str, tuple[str, str]]:
    """train/val/test x cn/jp, one or two files each; returns {file name: (class, split)}."""
    expected, seed = {}, 0
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        for cls in ("cn", "jp"):
            for _ in range(per_class):
                seed += 1
                name = f"{cls}-{split}-{seed}.jpg"
                write(root / split / cls / name, img(seed))
                expected[name] = (cls, split)
    return expected


def flat_tree(root: Path, classes=("cn", "jp"), per_class: int = 2, seed: int = 100) -> dict[str, str]:
    expected = {}
    for cls in classes:
        for _ in range(per_class):
            seed += 1
            name = f"{cls}-{seed}.png"
            write(root / cls / name, img(seed, "PNG"))
            expected[name] = cls
    return expected


def zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return zip_path


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_dataset", *map(str, args), stdout=out)
    return out.getvalue()


def by_original_name() -> dict[str, Painting]:
    """Paintings keyed by the file name they were imported from (title is the file's stem)."""
    return {p.title: p for p in Painting.objects.all()}


def media_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def test_the_study_layout_keeps_its_splits_and_sets_labels_with_history(tmp_path):
    expected = study_layout(tmp_path / "data")

    output = run(tmp_path / "data")

    paintings = by_original_name()
    assert len(paintings) == len(expected) == 8
    for name, (cls, split) in expected.items():
        painting = paintings[Path(name).stem]
        assert (painting.label, painting.split) == (cls, split)
        change = painting.label_changes.get()
        assert (change.old_label, change.new_label, change.changed_by) == (None, cls, None)
        assert change.reason == f"import from {tmp_path / 'data'}"
    assert "train/val/test" in output
    assert "8 imported, 0 already present (0 relabelled), 0 skipped" in output


def test_a_flat_class_tree_leaves_the_split_unassigned(tmp_path):
    expected = flat_tree(tmp_path / "set")

    run(tmp_path / "set", "--source", "Palace Museum", "--license", "CC0")

    paintings = by_original_name()
    assert {name: p.label for name, p in paintings.items()} == {Path(n).stem: c for n, c in expected.items()}
    assert {p.split for p in paintings.values()} == {"unassigned"}
    assert {(p.source, p.license) for p in paintings.values()} == {("Palace Museum", "CC0")}


def test_a_zip_of_the_study_layout_inside_a_top_level_folder_keeps_its_splits(tmp_path):
    expected = study_layout(tmp_path / "data")
    archive = zip_folder(tmp_path / "data", tmp_path / "set.zip", prefix="my-set/")

    output = run(archive)

    paintings = by_original_name()
    assert {Path(n).stem: v for n, v in expected.items()} == {
        name: (p.label, p.split) for name, p in paintings.items()
    }
    assert "8 imported" in output


def test_a_zip_of_a_flat_tree_is_imported(tmp_path):
    expected = flat_tree(tmp_path / "set", classes=("cn", "jp", "kr"))
    archive = zip_folder(tmp_path / "set", tmp_path / "flat.zip")

    run(archive)

    assert {name: p.label for name, p in by_original_name().items()} == {
        Path(n).stem: c for n, c in expected.items()
    }


def test_a_single_new_class_can_be_imported(tmp_path):
    """Curators introduce a class by importing its folder: nothing in the code names the classes."""
    flat_tree(tmp_path / "kr-only", classes=("kr",), per_class=3)

    run(zip_folder(tmp_path / "kr-only", tmp_path / "kr.zip"))

    assert set(Painting.objects.values_list("label", flat=True)) == {"kr"}
    assert Painting.objects.count() == 3


def test_a_manifest_folder_keeps_source_group_and_licence(tmp_path):
    root = tmp_path / "with-manifest"
    rows = []
    for i, (cls, source, group) in enumerate(
        [("cn", "otang47-song", "song-1"), ("cn", "otang47-song", "song-1"), ("jp", "wikiart", "")]
    ):
        data = img(200 + i)
        write(root / cls / f"w{i}.jpg", data)
        rows.append({"file": f"{cls}/w{i}.jpg", "class": cls, "source": source, "group": group})
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "class", "source", "group"])
        writer.writeheader()
        writer.writerows(rows)

    output = run(root, "--source", "fallback", "--license", "unknown licence")

    paintings = by_original_name()
    assert {name: (p.source, p.group, p.license) for name, p in paintings.items()} == {
        "w0": ("otang47-song", "song-1", "unknown licence"),
        "w1": ("otang47-song", "song-1", "unknown licence"),
        "w2": ("wikiart", "", "unknown licence"),
    }
    assert "with manifest.csv" in output


def test_a_zip_of_a_manifest_folder_keeps_its_metadata(tmp_path):
    root = tmp_path / "m"
    write(root / "cn" / "a.jpg", img(300))
    write(root / "jp" / "b.jpg", img(301))
    (root / "manifest.csv").write_text(
        "file,class,source,group\ncn/a.jpg,cn,museum-a,g1\njp/b.jpg,jp,museum-b,g2\n"
    )

    run(zip_folder(root, tmp_path / "m.zip", prefix="m/"))

    assert {p.title: (p.label, p.source, p.group) for p in Painting.objects.all()} == {
        "a": ("cn", "museum-a", "g1"),
        "b": ("jp", "museum-b", "g2"),
    }


def bad_files(root: Path) -> dict[str, str]:
    """Files that must be skipped, with words their reason must contain."""
    write(root / "cn" / "truncated.jpg", image_bytes("JPEG", size=(400, 400), seed=9)[:1500])
    write(root / "cn" / "text-renamed.jpg", b"hello, I am text" * 20)
    write(root / "jp" / "tiny.png", image_bytes("PNG", size=(20, 20)))
    write(root / "jp" / "notes.txt", b"collected in 2024")
    write(root / "jp" / "empty.jpg", b"")
    return {
        "cn/truncated.jpg": "damaged or truncated",
        "cn/text-renamed.jpg": "not an image",
        "jp/tiny.png": "at least",
        "jp/notes.txt": "Not an image file name",
        "jp/empty.jpg": "empty",
    }


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_bad_files_inside_are_skipped_with_their_reasons(tmp_path, as_zip):
    root = tmp_path / "set"
    good = flat_tree(root)
    expected_bad = bad_files(root)
    path = zip_folder(root, tmp_path / "set.zip") if as_zip else root

    output = run(path)
    report = import_dataset(path, dry_run=True)  # the same outcome, as data

    assert Painting.objects.count() == len(good)
    assert {f.name: f.reason for f in report.skipped}.keys() == expected_bad.keys()
    for name, words in expected_bad.items():
        reason = next(f.reason for f in report.skipped if f.name == name)
        assert words in reason
        assert f"  {name}: {reason}" in output
    assert f"{len(expected_bad)} file(s) skipped" in output
    assert report.counts()["cn"]["skipped"] == 2 and report.counts()["jp"]["skipped"] == 3


def test_an_oversized_file_in_a_zip_is_skipped_without_unpacking_it(tmp_path, settings):
    flat_tree(tmp_path / "set")
    write(tmp_path / "set" / "cn" / "huge.png", image_bytes("PNG", size=(600, 600), seed=5))
    settings.UPLOAD_MAX_BYTES = 200_000

    report = import_dataset(zip_folder(tmp_path / "set", tmp_path / "s.zip", prefix="set/"))

    assert [(f.name, f.class_name) for f in report.skipped] == [("cn/huge.png", "cn")]
    assert "limit is" in report.skipped[0].reason
    assert Painting.objects.count() == 4


def test_running_it_again_changes_nothing(tmp_path, media_in_tmp):
    study_layout(tmp_path / "data")
    bad_files(tmp_path / "data" / "train")
    run(tmp_path / "data")
    before = (
        sorted(Painting.objects.values_list("pk", "sha256", "label", "split", "title")),
        LabelChange.objects.count(),
        media_files(media_in_tmp),
    )

    output = run(tmp_path / "data")

    after = (
        sorted(Painting.objects.values_list("pk", "sha256", "label", "split", "title")),
        LabelChange.objects.count(),
        media_files(media_in_tmp),
    )
    assert after == before
    assert "0 imported, 8 already present (0 relabelled), 5 skipped" in output


def test_a_painting_already_present_gets_the_folder_label_with_history(tmp_path):
    data = img(1)
    existing = make_painting(data=data, sha256=hashlib.sha256(data).hexdigest(), label="jp")
    write(tmp_path / "set" / "cn" / "again.jpg", data)
    write(tmp_path / "set" / "jp" / "other.jpg", img(2))

    output = run(tmp_path / "set")

    existing.refresh_from_db()
    assert existing.label == "cn"
    change = existing.label_changes.get()
    assert (change.old_label, change.new_label) == ("jp", "cn")
    assert Painting.objects.count() == 2
    assert "1 imported, 1 already present (1 relabelled)" in output


def test_the_same_file_under_two_classes_keeps_the_first_and_says_why(tmp_path):
    data = img(7)
    write(tmp_path / "set" / "cn" / "one.jpg", data)
    write(tmp_path / "set" / "jp" / "one-copy.jpg", data)

    report = import_dataset(tmp_path / "set")
    again = import_dataset(tmp_path / "set")

    assert Painting.objects.get().label == "cn"
    assert [(f.name, f.outcome) for f in report.skipped] == [("jp/one-copy.jpg", "skipped")]
    assert "also cn/one.jpg (class cn)" in report.skipped[0].reason
    assert LabelChange.objects.count() == 1 and again.totals()["relabelled"] == 0


def test_dry_run_writes_nothing_but_says_what_would_happen(tmp_path, media_in_tmp):
    study_layout(tmp_path / "data")
    bad_files(tmp_path / "data" / "val")

    output = run(tmp_path / "data", "--dry-run")

    assert Painting.objects.count() == 0 and LabelChange.objects.count() == 0
    assert media_files(media_in_tmp) == []
    assert "dry run: nothing was written" in output
    assert "would import" in output
    total_line = next(line for line in output.splitlines() if line.startswith("total"))
    assert total_line.split() == ["total", "8", "0", "0", "5"]


def test_class_folders_that_are_not_class_names_are_refused_before_anything_is_written(tmp_path):
    flat_tree(tmp_path / "set", classes=("Chinese Paintings", "jp"))

    with pytest.raises(CommandError, match="Chinese Paintings"):
        run(tmp_path / "set")
    assert Painting.objects.count() == 0


def test_a_path_that_is_no_dataset_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CommandError, match="not a zip"):
        run(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="No class folders"):
        run(tmp_path / "empty")


@pytest.mark.skipif(not SANSUHA_V1.is_dir(), reason="needs ../shared/datasets/sansuha-v1")
def test_twenty_real_files_of_sansuha_v1_keep_their_manifest_metadata(tmp_path):
    with (SANSUHA_V1 / "manifest.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    # Ten of each class, from several sources.
    chosen = [r for r in rows if r["class"] == "cn"][::130][:10] + [r for r in rows if r["class"] == "jp"][
        :10
    ]
    root = tmp_path / "slice"
    for row in chosen:
        write(root / row["file"], (SANSUHA_V1 / row["file"]).read_bytes())
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(chosen)

    output = run(root, "--license", "internal use only")

    assert "20 imported, 0 already present (0 relabelled), 0 skipped" in output
    paintings = {p.sha256: p for p in Painting.objects.all()}
    assert len(paintings) == 20
    for row in chosen:
        painting = paintings[row["sha256"]]  # the manifest's hash is the stored file's
        assert painting.label == row["class"]
        assert (painting.source, painting.group) == (row["source"], row["group"])
        assert painting.license == "internal use only"
        assert painting.title == Path(row["file"]).stem.replace("_", " ")
        assert (painting.width, painting.height) == (int(row["width"]), int(row["height"]))
    assert len({p.source for p in paintings.values()}) >= 3


def test_a_file_that_changed_since_its_manifest_is_skipped(tmp_path):
    root = tmp_path / "set"
    write(root / "cn" / "a.jpg", img(1))
    write(root / "jp" / "b.jpg", img(2))
    (root / "manifest.csv").write_text(
        f"file,class,sha256\ncn/a.jpg,cn,{hashlib.sha256(img(1)).hexdigest()}\njp/b.jpg,jp,{'0' * 64}\n"
    )

    report = import_dataset(root)

    assert [f.name for f in report.skipped] == ["jp/b.jpg"]
    assert "SHA-256 differs from the manifest" in report.skipped[0].reason
    assert Painting.objects.get().title == "a"
