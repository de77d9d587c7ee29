import csv
import json

import pytest
from PIL import Image

from ml.metrics import wilson_interval

ARTIFACTS = [
    "classification_report.txt",
    "metrics.json",
    "predictions.csv",
    "confusion_matrix.png",
    "tsne.png",
    "gradcam_cool.png",
    "gradcam_warm.png",
    "correct_preds.png",
    "wrong_preds.png",
]


def test_evaluate_writes_every_artifact(evaluated_run):
    for name in ARTIFACTS:
        path = evaluated_run / name
        assert path.is_file() and path.stat().st_size > 0, name
    for name in ARTIFACTS:
        if name.endswith(".png"):
            with Image.open(evaluated_run / name) as im:
                assert im.width > 300 and im.height > 200, name


def test_metrics_hold_the_interval_the_shortcut_check_and_per_class_figures(evaluated_run, split_data):
    m = json.loads((evaluated_run / "metrics.json").read_text())
    low, high = m["accuracy_ci95"]
    assert low <= m["accuracy"] <= high
    assert (low, high) == pytest.approx(wilson_interval(m["correct"], m["n"]))
    assert m["split"] == "test"
    assert set(m["per_class"]) == {"cool", "warm"}
    assert sum(map(sum, m["confusion_matrix"])) == m["n"] == len(list((split_data / "test").rglob("*.jpg")))
    assert set(m["shortcut_check"]) == {"as_delivered", "reduced_224_jpeg75", "upscaled_640_sharpened"}
    assert m["shortcut_check"]["as_delivered"]["accuracy"] == m["accuracy"]
    assert "evaluate" in m["command"]


def test_the_colour_check_exposes_a_model_that_only_learned_colour(evaluated_run):
    """The synthetic classes differ by colour alone (warm vs cool): in greyscale the model that
    separates them perfectly must fall to about chance, and the check must say so."""
    m = json.loads((evaluated_run / "metrics.json").read_text())
    grey = m["colour_check"]["greyscale"]
    assert m["accuracy"] >= 0.9
    assert grey["balanced_accuracy"] <= 0.7
    assert grey["accuracy_drop_points"] == pytest.approx(100 * (m["accuracy"] - grey["accuracy"]))
    assert set(grey["recall"]) == {"cool", "warm"}
    assert "colour check" in (evaluated_run / "classification_report.txt").read_text()


def test_predictions_csv_has_a_probability_per_class(evaluated_run):
    with (evaluated_run / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {"file", "true", "predicted", "p_cool", "p_warm"} <= set(rows[0])
    for row in rows:
        assert abs(float(row["p_cool"]) + float(row["p_warm"]) - 1) < 2e-3
        assert row["predicted"] == max(("cool", "warm"), key=lambda c: float(row[f"p_{c}"]))


def test_report_is_readable_text(evaluated_run):
    text = (evaluated_run / "classification_report.txt").read_text()
    for words in ("precision", "Wilson 95% interval", "balanced accuracy", "macro-F1", "shortcut check"):
        assert words in text


def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 10)[0] == 0.0
    low, high = wilson_interval(81, 100)  # by hand: centre 0.7985, half-width 0.0763
    assert low == pytest.approx(0.7222, abs=1e-3) and high == pytest.approx(0.8749, abs=1e-3)
