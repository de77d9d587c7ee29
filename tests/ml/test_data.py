from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data import find_class_names, list_samples, load_image, load_samples

from .conftest import make_flat_dataset


def test_class_names_are_folder_names_for_any_number_of_classes(tmp_path):
    make_flat_dataset(tmp_path, per_class=2, classes=("cn", "jp", "kr"))
    assert find_class_names(tmp_path) == ["cn", "jp", "kr"]
    samples, names = list_samples(tmp_path)
    assert [s.class_name for s in samples].count("kr") == 2
    assert {s.label for s in samples} == {0, 1, 2}


def test_it_refuses_a_single_class(tmp_path):
    make_flat_dataset(tmp_path, per_class=2, classes=("cn",))
    with pytest.raises(ValueError, match="at least 2"):
        find_class_names(tmp_path)


def test_it_reads_the_study_layout_with_classes_united_over_splits(tmp_path):
    for split, classes in (("train", ("a", "b")), ("val", ("a", "b")), ("test", ("a",))):
        make_flat_dataset(tmp_path / split, per_class=2, classes=classes)
    samples, names = list_samples(tmp_path, "test")
    assert names == ["a", "b"]
    assert len(samples) == 2 and all(s.label == 0 for s in samples)
    with pytest.raises(ValueError, match="say which split"):
        list_samples(tmp_path)


def test_a_test_set_from_elsewhere_needs_only_its_test_folder(tmp_path):
    """Paintings from another source, to evaluate a model on: DATA/test/{class}/ with no train/val.
    A flat folder is read whole with split "all", and asking it for "test" says how."""
    outside = make_flat_dataset(tmp_path / "elsewhere" / "test", per_class=3, classes=("cn", "jp"))
    samples, _ = list_samples(outside.parent, "test", class_names=["cn", "jp"])
    assert sorted(s.label for s in samples) == [0, 0, 0, 1, 1, 1]
    flat = make_flat_dataset(tmp_path / "flat", per_class=2, classes=("cn", "jp"))
    assert len(list_samples(flat, "all", class_names=["cn", "jp"])[0]) == 4
    with pytest.raises(ValueError, match="--split all"):
        list_samples(flat, "test", class_names=["cn", "jp"])


def test_unreadable_files_are_skipped_and_reported_by_path(tmp_path):
    make_flat_dataset(tmp_path, per_class=3)
    good = tmp_path / "warm" / "warm_000.jpg"
    truncated = tmp_path / "warm" / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:200])
    not_an_image = tmp_path / "cool" / "notes.png"
    not_an_image.write_text("this is not a PNG")
    samples, _ = list_samples(tmp_path)
    kept, images, bad = load_samples(samples, long_side=64)
    assert len(kept) == len(images) == 6
    assert {b.path for b in bad} == {truncated, not_an_image}
    assert all(b.reason for b in bad)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    im.save(tmp_path / "rotated.jpg", exif=exif)
    assert load_image(tmp_path / "rotated.jpg").size == (20, 40)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("CMYK", (10, 10), (0, 255, 255, 0)),
        lambda: Image.new("LA", (10, 10), (128, 0)),
        lambda: Image.new("RGBA", (10, 10), (255, 0, 0, 0)),
        lambda: Image.new("P", (10, 10), 3),
        lambda: Image.fromarray(np.full((10, 10), 60000, dtype=np.uint16)),
    ],
    ids=["cmyk", "grey-alpha", "transparent", "palette", "16-bit"],
)
def test_every_mode_becomes_rgb(tmp_path, make):
    path = tmp_path / "x.tiff"
    make().save(path)
    im = load_image(path)
    assert im.mode == "RGB" and im.size == (10, 10)


def test_transparency_is_composited_on_white_and_16_bit_is_scaled(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert load_image(tmp_path / "clear.png").getpixel((0, 0)) == (255, 255, 255)
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png").getpixel((0, 0))[0] >= 250


def test_manifest_gives_source_and_group(shared_dataset: Path):
    samples, names = list_samples(shared_dataset)
    assert names == ["cn", "jp"]
    sources = {s.source for s in samples}
    assert {"wikiart-ukiyoe", "otang47-song"} <= sources
    assert all(s.group for s in samples)
