import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import load_image
from ml.split import NEAR_DUPLICATE_BITS, SplitRefused, dhash, hamming, split_dataset
from ml.transforms import reduce_224_jpeg75

from .conftest import make_flat_dataset, run_ml, synthetic_image


def _manifest(out: Path) -> dict[str, str]:
    with (out / "manifest.csv").open() as f:
        return {row["file"].split("/", 1)[1]: row["split"] for row in csv.DictReader(f)}


def test_split_is_deterministic_and_stratified(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=40)
    a = split_dataset(src, tmp_path / "a", 0.15, 0.15, seed=0)
    split_dataset(src, tmp_path / "b", 0.15, 0.15, seed=0)
    split_dataset(src, tmp_path / "c", 0.15, 0.15, seed=1)
    assert _manifest(tmp_path / "a") == _manifest(tmp_path / "b")
    assert _manifest(tmp_path / "a") != _manifest(tmp_path / "c")
    for cls in ("cool", "warm"):
        assert a["counts"]["test"][cls] == 6 and a["counts"]["val"][cls] == 6
        assert a["counts"]["train"][cls] == 28
    assert len(list((tmp_path / "a" / "test" / "warm").iterdir())) == 6


def test_groups_from_the_manifest_stay_in_one_split(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=30)
    rows = []
    for cls in ("cool", "warm"):
        for i, path in enumerate(sorted((src / cls).iterdir())):
            rows.append({"file": f"{cls}/{path.name}", "class": cls, "group": f"{cls}-work{i // 5}"})
    with (src / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "class", "group"])
        w.writeheader()
        w.writerows(rows)
    split_dataset(src, tmp_path / "out", 0.2, 0.2, seed=3)
    with (tmp_path / "out" / "manifest.csv").open() as f:
        placed = list(csv.DictReader(f))
    splits_of_group: dict[str, set] = {}
    for row in placed:
        splits_of_group.setdefault(row["group"], set()).add(row["split"])
    assert all(len(s) == 1 for s in splits_of_group.values())
    assert {s for v in splits_of_group.values() for s in v} == {"train", "val", "test"}


def _with_near_duplicates(tmp_path: Path) -> tuple[Path, list[Path]]:
    src = make_flat_dataset(tmp_path / "src", per_class=30)
    original = src / "warm" / "warm_000.jpg"
    copies = []
    for k in range(5):  # the same picture delivered five ways
        im = load_image(original)
        im = im.resize((im.width * (k + 2) // 2, im.height))  # squashed / stretched
        path = src / "warm" / f"copy_{k}.jpg"
        im.save(path, quality=60 + 5 * k)
        copies.append(path)
    shutil.copy(original, src / "warm" / "exact_copy.jpg")
    return src, [original, src / "warm" / "exact_copy.jpg", *copies]


def test_duplicates_that_would_straddle_splits_are_refused_and_listed(tmp_path):
    src, dups = _with_near_duplicates(tmp_path)
    with pytest.raises(SplitRefused) as refused:
        split_dataset(src, tmp_path / "out", 0.2, 0.2, seed=0)
    message = str(refused.value)
    assert "straddle" in message
    assert "exact" in message and "near" in message
    assert sum(str(p) in message for p in dups) >= 3
    assert not (tmp_path / "out").exists()  # nothing written


def test_merge_duplicates_keeps_each_set_in_one_split(tmp_path):
    src, dups = _with_near_duplicates(tmp_path)
    report = split_dataset(src, tmp_path / "out", 0.2, 0.2, seed=0, merge_duplicates=True)
    placement = _manifest(tmp_path / "out")
    assert len({placement[f"warm/{p.name}"] for p in dups}) == 1
    assert len(report["duplicates"]) >= len(dups) - 1


def test_identical_files_under_different_classes_are_refused(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=5)
    shutil.copy(src / "warm" / "warm_001.jpg", src / "cool" / "mislabelled.jpg")
    with pytest.raises(SplitRefused, match="different classes"):
        split_dataset(src, tmp_path / "out", merge_duplicates=True)


def test_unreadable_files_are_reported_and_left_out(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=10)
    (src / "cool" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    proc = run_ml("split", str(src), str(tmp_path / "out"))
    assert "broken.jpg" in proc.stdout
    assert not list((tmp_path / "out").rglob("broken.jpg"))
    assert len(list((tmp_path / "out").rglob("*.jpg"))) == 20


def test_it_will_not_overwrite_an_existing_folder(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=4)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    proc = run_ml("split", str(src), str(tmp_path / "out"), check=False)
    assert proc.returncode != 0 and "not empty" in proc.stderr
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_dhash_survives_redelivery_but_separates_different_images():
    rng = np.random.default_rng(1)
    a = synthetic_image("warm", rng, (300, 400))
    b = synthetic_image("warm", rng, (300, 400))
    assert hamming(dhash(a), dhash(reduce_224_jpeg75(a))) <= NEAR_DUPLICATE_BITS
    assert hamming(dhash(a), dhash(b)) > NEAR_DUPLICATE_BITS


def test_real_near_duplicates_in_the_shared_data_are_found(shared_dataset):
    # The same Ming painting stored twice by its source, and two different works.
    same = [shared_dataset / "cn" / "otang47-ming_0003.jpg", shared_dataset / "cn" / "otang47-song_0015.jpg"]
    other = shared_dataset / "jp" / sorted(p.name for p in (shared_dataset / "jp").iterdir())[0]
    h = [dhash(load_image(p)) for p in (*same, other)]
    assert hamming(h[0], h[1]) <= NEAR_DUPLICATE_BITS
    assert hamming(h[0], h[2]) > NEAR_DUPLICATE_BITS
    assert isinstance(Image.open(other).size, tuple)


def test_a_held_out_source_goes_whole_to_heldout_and_nothing_duplicating_it_is_kept(tmp_path):
    src = make_flat_dataset(tmp_path / "src", per_class=30)
    # "scanner-b" delivered cool_000..cool_009; the other source re-delivered cool_000 once more.
    shutil.copy(src / "cool" / "cool_000.jpg", src / "cool" / "again_000.jpg")
    rows = [
        {
            "file": f"{p.parent.name}/{p.name}",
            "class": p.parent.name,
            "source": "scanner-b" if p.name < "cool_010" and p.name.startswith("cool_") else "scanner-a",
        }
        for p in sorted(src.glob("*/*.jpg"))
    ]
    with (src / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["file", "class", "source"])
        w.writeheader()
        w.writerows(rows)

    report = split_dataset(src, tmp_path / "out", 0.2, 0.2, seed=0, hold_out_sources=["scanner-b"])

    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "heldout" / "cool").iterdir()) == [
        f"cool_{i:03d}.jpg" for i in range(10)
    ]
    kept = {p.name for s in ("train", "val", "test") for p in (out / s).rglob("*.jpg")}
    assert not kept & {f"cool_{i:03d}.jpg" for i in range(10)}
    assert "again_000.jpg" not in kept, "an exact copy of a held-out image must not be trained on"
    assert [Path(d["kept_out"]).name for d in report["left_out_as_duplicates_of_held_out"]] == [
        "again_000.jpg"
    ]
    assert report["counts"]["heldout"] == {"cool": 10, "warm": 0}
    with pytest.raises(ValueError, match="no image .* has the source nowhere"):
        split_dataset(src, tmp_path / "out2", 0.2, 0.2, seed=0, hold_out_sources=["nowhere"])
