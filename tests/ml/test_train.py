import json

import pytest
import torch
from PIL import Image

from ml.data import list_samples, load_samples
from ml.inference import Predictor
from ml.models import build_model, load_checkpoint, resnet18_imagenet_path
from ml.train import class_weights
from ml.transforms import eval_transform

from .conftest import run_ml


def test_short_training_lowers_the_loss(trained_run):
    history = json.loads((trained_run / "history.json").read_text())
    assert len(history) == 3
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (trained_run / "loss_accuracy.png").stat().st_size > 10_000


def test_the_trained_model_beats_chance_on_the_test_split(trained_run, split_data):
    predictor = Predictor.from_checkpoint(trained_run / "best.pt", "cpu")
    samples, _ = list_samples(split_data, "test", predictor.class_names)
    samples, images, _ = load_samples(samples)
    probs, _ = predictor.probabilities(images)
    accuracy = (probs.argmax(1) == [s.label for s in samples]).mean()
    assert accuracy >= 0.75, accuracy


def test_checkpoint_holds_the_study_keys_and_rebuilds_the_model(trained_run):
    ckpt = torch.load(trained_run / "best.pt", map_location="cpu", weights_only=False)
    for key in (
        "epoch",
        "model_state_dict",
        "optimizer_state_dict",
        "val_accuracy",
        "class_names",
        "arch",
        "config",
        "history",
    ):
        assert key in ckpt, key
    assert ckpt["class_names"] == ["cool", "warm"]
    assert ckpt["config"]["image_size"] == 64 and ckpt["config"]["lr"] == 1e-3
    best = max(h["val_balanced_accuracy"] for h in ckpt["history"])
    assert ckpt["val_balanced_accuracy"] == best


def test_checkpoint_round_trip_gives_identical_outputs(trained_run, tmp_path):
    model, ckpt = load_checkpoint(trained_run / "best.pt")
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    # The file alone rebuilds it, and a state dict loads through --weights PATH as well.
    torch.save(model.state_dict(), tmp_path / "state.pt")
    again = build_model(ckpt["arch"], 2, str(tmp_path / "state.pt")).eval()
    reloaded, _ = load_checkpoint(trained_run / "best.pt")
    with torch.no_grad():
        assert torch.equal(reloaded(x), expected)
        assert torch.equal(again(x), expected)


def test_resume_continues_from_the_last_epoch(trained_run, split_data, tmp_path):
    out = tmp_path / "resumed"
    run_ml(
        "train",
        "--data",
        str(split_data),
        "--out",
        str(out),
        "--epochs",
        "4",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--resume",
        str(trained_run / "last.pt"),
    )
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]


def test_class_weights_balance_the_classes():
    w = class_weights([0] * 90 + [1] * 10, 2)
    assert torch.allclose(w * torch.tensor([90.0, 10.0]), torch.tensor([50.0, 50.0]))


def test_missing_resnet_imagenet_weights_name_the_file_and_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as missing:
        build_model("resnet18", 2, "imagenet")
    assert "resnet18-f37072fd.pth" in str(missing.value)
    assert str(tmp_path / "hub" / "checkpoints") in str(missing.value)


def test_resnet_imagenet_weights_are_genuine_when_present():
    """Runs where torchvision's file has been put in place (it cannot be downloaded here)."""
    try:
        path = resnet18_imagenet_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    from skimage import data as photos
    from torchvision import models as tvm

    model = tvm.resnet18()
    model.load_state_dict(torch.load(path, map_location="cpu"))
    model.eval()
    tf = eval_transform()
    with torch.no_grad():
        cat = model(tf(Image.fromarray(photos.chelsea())).unsqueeze(0)).argmax().item()
        coffee = model(tf(Image.fromarray(photos.coffee())).unsqueeze(0)).argmax().item()
    assert 281 <= cat <= 285
    assert coffee in (967, 968)


def test_the_greyscale_share_is_checked_and_stored_in_the_config():
    from ml.config import TrainConfig

    with pytest.raises(ValueError, match="greyscale_p"):
        TrainConfig(greyscale_p=1.5)
    assert TrainConfig.from_dict(TrainConfig(greyscale_p=0.3).to_dict()).greyscale_p == 0.3
