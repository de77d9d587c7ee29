"""Grad-CAM (pytorch-grad-cam) on the last convolutional block.

The CAM object registers hooks on the model it wraps, so it gets a model of its own (a copy of
the predictor's, ~45 MB for ResNet-18): plain inference never runs through those hooks, and
nothing accumulates between calls.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from torch import nn

from ml.models import classifier_layer, gradcam_target_layer


class CamRunner:
    """Builds its GradCAM once and reuses it; use as a context manager to release the hooks."""

    def __init__(self, model: nn.Module) -> None:
        self.model = copy.deepcopy(model).eval()
        self.cam = GradCAM(model=self.model, target_layers=[gradcam_target_layer(self.model)])

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """Logits, penultimate features and (N, H, W) maps in [0, 1] explaining the top class."""
        captured: list[torch.Tensor] = []
        handle = classifier_layer(self.model).register_forward_pre_hook(
            lambda _m, inp: captured.append(inp[0].detach())
        )
        try:
            maps = self.cam(input_tensor=x, targets=None)  # None: explain the predicted class
            logits = self.cam.outputs.detach()
        finally:
            handle.remove()
            # Drop the graph and the stored activations now rather than at the next call.
            self.cam.outputs = None
            self.cam.activations_and_grads.clear()
            self.model.zero_grad(set_to_none=True)
        return logits, captured[0], maps

    def close(self) -> None:
        self.cam.activations_and_grads.release()

    def __enter__(self) -> CamRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def resize_map(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a map in [0, 1] to ``size`` = (width, height), staying in [0, 1]."""
    im = Image.fromarray(heatmap.astype(np.float32), mode="F").resize(size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)


def overlay(image: Image.Image, heatmap: np.ndarray, image_weight: float = 0.5) -> Image.Image:
    """The heatmap (already at the image's size) blended over the image, jet colour map."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return Image.fromarray(show_cam_on_image(rgb, heatmap, use_rgb=True, image_weight=image_weight))
