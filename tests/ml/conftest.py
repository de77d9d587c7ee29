"""Small images the tests make themselves: two synthetic, separable classes.

Class ``warm`` is reddish noise, class ``cool`` bluish noise, in assorted sizes and aspect
ratios, so that the pipeline's resizing, caching and batching all get exercised.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets" / "sansuha-v1"


def synthetic_image(cls: str, rng: np.random.Generator, size: tuple[int, int] | None = None) -> Image.Image:
    w, h = size or (int(rng.integers(48, 160)), int(rng.integers(48, 160)))
    base = np.array([200, 70, 50] if cls == "warm" else [50, 80, 200], dtype=np.float32)
    pixels = base + rng.normal(0, 35, size=(h, w, 3))
    # A few strokes so that there is something spatial for Grad-CAM to find.
    for _ in range(3):
        y = int(rng.integers(0, h))
        pixels[y : y + 4, :, :] *= 0.4
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_flat_dataset(root: Path, per_class: int = 20, classes=("cool", "warm"), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            kind = cls if cls in ("warm", "cool") else ("warm" if i % 2 else "cool")
            synthetic_image(kind, rng).save(root / cls / f"{cls}_{i:03d}.jpg", quality=90)
    return root


def run_ml(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m ml ARGS`` in a fresh interpreter, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "ml", *args], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"python -m ml {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def split_data(tmp_path_factory) -> Path:
    """A synthetic dataset in the study's layout, made through ``python -m ml split``."""
    flat = make_flat_dataset(tmp_path_factory.mktemp("flat"), per_class=24)
    out = tmp_path_factory.mktemp("data") / "split"
    run_ml("split", str(flat), str(out), "--val", "0.25", "--test", "0.25", "--seed", "0")
    return out


@pytest.fixture(scope="session")
def trained_run(split_data, tmp_path_factory) -> Path:
    """A short real training run through the CLI (ResNet-18 from scratch, 64 px, 3 epochs)."""
    out = tmp_path_factory.mktemp("run")
    run_ml(
        "train",
        "--data",
        str(split_data),
        "--out",
        str(out),
        "--epochs",
        "3",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--seed",
        "0",
        "--device",
        "cpu",
    )
    return out


@pytest.fixture(scope="session")
def evaluated_run(trained_run, split_data) -> Path:
    out = trained_run / "eval"
    run_ml(
        "evaluate",
        "--checkpoint",
        str(trained_run / "best.pt"),
        "--data",
        str(split_data),
        "--out",
        str(out),
        "--device",
        "cpu",
    )
    return out


@pytest.fixture()
def shared_dataset() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared dataset not found at {SHARED}")
    return SHARED
