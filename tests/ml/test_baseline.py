import json

from .conftest import run_ml


def test_colour_baseline_is_evaluated_by_the_same_code(split_data, tmp_path):
    out = tmp_path / "baseline"
    run_ml("baseline", "--data", str(split_data), "--out", str(out))
    m = json.loads((out / "metrics.json").read_text())
    # The synthetic classes differ by colour alone: the colour baseline must get them right.
    assert m["accuracy"] >= 0.9
    assert m["arch"].startswith("colour-histogram")
    assert set(m["shortcut_check"]) == {"as_delivered", "reduced_224_jpeg75", "upscaled_640_sharpened"}
    for name in (
        "classification_report.txt",
        "confusion_matrix.png",
        "predictions.csv",
        "correct_preds.png",
        "wrong_preds.png",
    ):
        assert (out / name).is_file(), name
