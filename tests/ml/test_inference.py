import numpy as np
import pytest
from PIL import Image

from ml.inference import Predictor

from .conftest import run_ml, synthetic_image


@pytest.fixture(scope="module")
def predictor(trained_run):
    with Predictor.from_checkpoint(trained_run / "best.pt", "cpu") as p:
        yield p


def test_predictions_carry_probabilities_label_and_embedding(predictor):
    rng = np.random.default_rng(5)
    images = [synthetic_image("warm", rng), synthetic_image("cool", rng)]
    out = predictor.predict(images)
    assert [p.label for p in out] == ["warm", "cool"]
    for p in out:
        assert sum(p.probabilities.values()) == pytest.approx(1, abs=1e-5)
        assert p.confidence == max(p.probabilities.values())
        assert p.embedding.shape == (512,)
        assert p.heatmap is None


def test_gradcam_maps_have_the_image_size_and_values_in_0_1(predictor):
    rng = np.random.default_rng(6)
    images = [synthetic_image("warm", rng, (300, 120)), synthetic_image("cool", rng, (90, 200))]
    for im, p in zip(images, predictor.predict(images, gradcam=True), strict=True):
        assert p.heatmap.shape == (im.height, im.width)
        assert p.heatmap.min() >= 0 and p.heatmap.max() <= 1 and p.heatmap.max() > 0.5
        assert p.overlay.size == im.size and p.overlay.mode == "RGB"


def test_gradcam_and_plain_passes_agree(predictor):
    im = synthetic_image("warm", np.random.default_rng(7))
    (plain,) = predictor.predict([im])
    (cam,) = predictor.predict([im], gradcam=True)
    assert cam.probabilities == pytest.approx(plain.probabilities, abs=1e-5)
    np.testing.assert_allclose(cam.embedding, plain.embedding, atol=1e-4)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_repeated_calls_do_not_grow_memory(predictor):
    """As pytorch-grad-cam's own test_context_release: run many times, memory stays flat."""
    im = Image.fromarray(np.random.default_rng(8).integers(0, 255, (160, 120, 3), dtype=np.uint8))
    for _ in range(10):  # warm up allocator caches
        predictor.predict([im, im], gradcam=True)
        predictor.predict([im, im])
    before = _rss_mb()
    for _ in range(60):
        predictor.predict([im, im], gradcam=True)
        predictor.predict([im, im])
    grown = _rss_mb() - before
    assert grown < 25, f"RSS grew by {grown:.1f} MB over 120 calls"
    assert predictor.cam_runner().cam.activations_and_grads.activations == []


def test_predict_command_prints_a_table(trained_run, tmp_path):
    rng = np.random.default_rng(9)
    synthetic_image("warm", rng).save(tmp_path / "a.png")
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    proc = run_ml(
        "predict", str(trained_run / "best.pt"), str(tmp_path / "a.png"), str(tmp_path / "broken.jpg")
    )
    lines = proc.stdout.splitlines()
    assert "predicted" in lines[0] and "p_warm" in lines[0]
    assert any("a.png" in line and "warm" in line for line in lines[1:])
    assert any("broken.jpg" in line and "unreadable" in line for line in lines)
