"""Model building, offline pretrained weights and self-describing checkpoints.

Nothing is downloaded: ImageNet weights come from local files, with a message saying which file
to put where when one is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

log = logging.getLogger(__name__)

RESNET18_IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's IMAGENET1K_V1


def resnet18_imagenet_path() -> Path:
    """Where torchvision keeps IMAGENET1K_V1 for ResNet-18: $TORCH_HOME/hub/checkpoints/."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_IMAGENET_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"ResNet-18 ImageNet weights not found at {path}. Nothing can be downloaded here: "
            f"copy torchvision's {RESNET18_IMAGENET_FILE} (from "
            "https://download.pytorch.org/models/resnet18-f37072fd.pth, on a machine with network) "
            f"into {path.parent}/ (or set TORCH_HOME), or train with --weights none."
        )
    return path


def _fresh(arch: str, num_classes: int, imagenet: bool) -> nn.Module:
    if arch == "resnet18":
        model = tvm.resnet18(weights=None)
        if imagenet:
            model.load_state_dict(torch.load(resnet18_imagenet_path(), map_location="cpu"))
        model.fc = nn.Linear(model.fc.in_features, num_classes)  # the study's new head
        return model
    if arch == "efficientnet_lite0":
        from ml.efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(num_classes=num_classes, imagenet=imagenet)
    raise ValueError(f"unknown arch {arch!r}")


def normalization(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Input mean/std for an architecture: what its ImageNet weights were trained with.

    ResNet-18 uses torchvision's ImageNet statistics (the study's Normalize). EfficientNet-Lite0's
    weights come from TensorFlow, trained on (x - 127) / 128; see ml.efficientnet_lite.
    """
    if arch == "efficientnet_lite0":
        from ml.efficientnet_lite import IMAGENET_LITE_MEAN, IMAGENET_LITE_STD

        return IMAGENET_LITE_MEAN, IMAGENET_LITE_STD
    from ml.transforms import IMAGENET_MEAN, IMAGENET_STD

    return IMAGENET_MEAN, IMAGENET_STD


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The final Linear layer; its input is the penultimate (embedding) vector."""
    for name in ("fc", "classifier"):
        layer = getattr(model, name, None)
        if isinstance(layer, nn.Linear):
            return layer
    raise TypeError(f"no final Linear layer found on {type(model).__name__}")


def gradcam_target_layer(model: nn.Module) -> nn.Module:
    """The last convolutional block, where Grad-CAM looks."""
    if isinstance(model, tvm.ResNet):
        return model.layer4[-1]
    from ml.efficientnet_lite import gradcam_target_layer as lite_target

    return lite_target(model)


def load_weights_file(model: nn.Module, path: Path) -> None:
    """Load a state dict or one of our checkpoints; a classifier of another size is left fresh."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    state = obj.get("model_state_dict", obj) if isinstance(obj, dict) else obj
    own = model.state_dict()
    head = {k for k in own if k.startswith(("fc.", "classifier."))}
    skipped = [k for k in head if k in state and state[k].shape != own[k].shape]
    state = {k: v for k, v in state.items() if k not in skipped}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in head]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    if skipped:
        log.info("weights from %s loaded; classifier re-initialised for the new classes", path)


def build_model(arch: str, num_classes: int, weights: str = "none") -> nn.Module:
    """``weights``: ``"imagenet"``, ``"none"`` or a path to a state dict or checkpoint."""
    if num_classes < 2:
        raise ValueError("a classifier needs at least 2 classes")
    if weights in ("none", "", None):
        return _fresh(arch, num_classes, imagenet=False)
    if weights == "imagenet":
        return _fresh(arch, num_classes, imagenet=True)
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"--weights: no such file {path} (or use 'imagenet' or 'none')")
    model = _fresh(arch, num_classes, imagenet=False)
    load_weights_file(model, path)
    return model


def forward_with_features(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and the penultimate features (the classifier's input) in one forward pass."""
    captured: list[torch.Tensor] = []
    handle = classifier_layer(model).register_forward_pre_hook(lambda _m, inputs: captured.append(inputs[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    return logits, captured[0]


def save_checkpoint(path: Path, **fields: Any) -> None:
    """Write atomically: a crash mid-write never leaves a truncated best.pt behind."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(fields, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model from the checkpoint file alone."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model_state_dict", "class_names", "arch"):
        if key not in ckpt:
            raise ValueError(f"{path} is not a Sansuha checkpoint (no '{key}')")
    model = _fresh(ckpt["arch"], len(ckpt["class_names"]), imagenet=False)
    model.load_state_dict(ckpt["model_state_dict"])
    return model.to(device).eval(), ckpt


def pick_device(requested: str | None = None) -> torch.device:
    if requested in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but no CUDA device is available")
    return device
