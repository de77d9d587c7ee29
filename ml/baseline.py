"""A baseline that keeps the network honest: colour histograms + logistic regression.

It sees only colour statistics, no shapes, no strokes, no composition. Whatever accuracy it
reaches is what "ink versus colour print" alone buys on a data set; the network's figures are
worth reading only by how far they rise above it. Evaluated by the same code as the network
(ml.evaluate.write_report): same metrics, same shortcut check, same artifacts (no t-SNE/Grad-CAM).

``python -m ml baseline --data DATA --out OUT``
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.data import list_samples, load_samples
from ml.evaluate import EVAL_LONG_SIDE, write_report

log = logging.getLogger(__name__)

BINS = 8  # per HSV channel: an 8 x 8 x 8 joint histogram


def colour_histogram(im: Image.Image) -> np.ndarray:
    """Normalised joint HSV histogram (512 values) plus per-channel mean and std (6 values)."""
    hsv = np.asarray(im.convert("RGB").resize((128, 128)).convert("HSV"), dtype=np.float32)
    flat = hsv.reshape(-1, 3)
    hist, _ = np.histogramdd(flat, bins=BINS, range=[(0, 256)] * 3)
    hist = hist.flatten() / flat.shape[0]
    return np.concatenate([np.sqrt(hist), flat.mean(0) / 255, flat.std(0) / 255])


def features(images: Sequence[Image.Image]) -> np.ndarray:
    return np.stack([colour_histogram(im) for im in images])


class ColourBaseline:
    def __init__(self, class_names: Sequence[str], seed: int = 0) -> None:
        self.class_names = list(class_names)
        # class_weight="balanced": the same answer to the class imbalance as the network's loss.
        self.model = make_pipeline(
            StandardScaler(),
            LogisticRegression(max_iter=2000, class_weight="balanced", C=0.1, random_state=seed),
        )

    def fit(self, images: Sequence[Image.Image], labels: Sequence[int]) -> ColourBaseline:
        self.model.fit(features(images), labels)
        return self

    def predict_proba(self, images: Sequence[Image.Image]) -> np.ndarray:
        proba = self.model.predict_proba(features(images))
        # Columns follow the labels seen in training; widen to every class.
        full = np.zeros((len(images), len(self.class_names)))
        full[:, self.model.classes_] = proba
        return full


def run_baseline(data: Path, out: Path, seed: int = 0, split: str = "test") -> dict:
    data, out = Path(data), Path(out)
    train_samples, class_names = list_samples(data, "train")
    train_samples, train_images, bad_train = load_samples(train_samples, EVAL_LONG_SIDE)
    baseline = ColourBaseline(class_names, seed).fit(train_images, [s.label for s in train_samples])
    del train_images
    samples, _ = list_samples(data, split, class_names)
    samples, images, bad = load_samples(samples, EVAL_LONG_SIDE)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "baseline.pkl").open("wb") as f:
        pickle.dump(baseline, f)
    extra = {
        "arch": "colour-histogram + logistic regression",
        "data": str(data),
        "split": split,
        "skipped_files": [str(b) for b in bad_train + bad],
    }
    result = write_report(
        out,
        f"colour baseline on {data.name}/{split}",
        class_names,
        samples,
        images,
        baseline.predict_proba,
        extra=extra,
    )
    log.info("baseline written to %s", out)
    (out / "config.json").write_text(json.dumps({"bins": BINS, "seed": seed}, indent=2))
    return result
