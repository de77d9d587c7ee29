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


def test_onnx_runtime_and_pytorch_give_the_same_predictions(trained_run):
    rng = np.random.default_rng(10)
    images = [synthetic_image(c, rng, (96 + 7 * i, 80)) for i, c in enumerate(["warm", "cool"] * 3)]
    with (
        Predictor.from_checkpoint(trained_run / "best.pt", "cpu", runtime="torch") as eager,
        Predictor.from_checkpoint(trained_run / "best.pt", "cpu", runtime="onnxruntime") as onnx,
    ):
        p_eager, f_eager = eager.probabilities(images, batch_size=4)
        p_onnx, f_onnx = onnx.probabilities(images, batch_size=4)
        assert onnx.onnx_runner() is not None and eager.onnx_runner() is None
    assert p_onnx.shape == (6, 2) and f_onnx.shape == (6, 512)
    np.testing.assert_allclose(p_onnx, p_eager, atol=1e-4)
    np.testing.assert_allclose(f_onnx, f_eager, rtol=1e-3, atol=1e-4)
    assert [int(i) for i in p_onnx.argmax(1)] == [1, 0] * 3  # warm, cool in class order (cool, warm)


def test_the_onnx_graph_is_cached_beside_the_checkpoint_and_rebuilt_when_stale(trained_run, tmp_path):
    import os
    import shutil

    checkpoint = tmp_path / "best.pt"
    shutil.copy(trained_run / "best.pt", checkpoint)
    im = synthetic_image("warm", np.random.default_rng(11))
    with Predictor.from_checkpoint(checkpoint, "cpu", runtime="onnxruntime") as p:
        first = p.probabilities([im])[0]
    graph = tmp_path / "best.onnx"
    assert graph.is_file() and graph.stat().st_size > 1_000_000
    cached = graph.stat()
    with Predictor.from_checkpoint(checkpoint, "cpu", runtime="onnxruntime") as p:
        np.testing.assert_allclose(p.probabilities([im])[0], first, atol=1e-6)
    again = graph.stat()
    assert (again.st_ino, again.st_mtime_ns) == (cached.st_ino, cached.st_mtime_ns), (
        "a fresh cache must be read, not rewritten"
    )
    old = checkpoint.stat().st_mtime - 10
    os.utime(graph, (old, old))  # the checkpoint is now newer than its graph
    with Predictor.from_checkpoint(checkpoint, "cpu", runtime="onnxruntime") as p:
        p.probabilities([im])
    assert graph.stat().st_ino != cached.st_ino, "a stale cache must be rebuilt"
    assert graph.stat().st_mtime >= checkpoint.stat().st_mtime
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unknown_runtime_is_refused(trained_run):
    with pytest.raises(ValueError, match="runtime must be one of"):
        Predictor.from_checkpoint(trained_run / "best.pt", "cpu", runtime="tensorrt")


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
