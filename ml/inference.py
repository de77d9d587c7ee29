"""The Predictor: a checkpoint loaded once, then batches of PIL images in, predictions out.

The Celery worker builds one per process (lazily, in the child) and keeps it; so does
``python -m ml predict`` and ``python -m ml evaluate``.

Two runtimes: plain forward passes (``probabilities``, ``predict`` without Grad-CAM) run through
ONNX Runtime on CPU when it is installed (``ml.runtime``: measured 3-4x faster than PyTorch for
EfficientNet-Lite0 here), and through PyTorch otherwise or on CUDA. Grad-CAM always runs in
PyTorch, which it needs for the backward pass. ``runtime="torch"`` forces PyTorch throughout.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ml.data import to_rgb
from ml.models import forward_with_features, load_checkpoint, normalization, pick_device
from ml.transforms import eval_transform

log = logging.getLogger(__name__)
RUNTIMES = ("auto", "onnxruntime", "torch")


@dataclass
class Prediction:
    label: str
    confidence: float
    probabilities: dict[str, float]
    embedding: np.ndarray
    heatmap: np.ndarray | None = None  # (H, W) in [0, 1], at the input image's size
    overlay: Image.Image | None = field(default=None, repr=False)


class Predictor:
    def __init__(
        self,
        model: nn.Module,
        class_names: Sequence[str],
        image_size: int = 224,
        device: str | torch.device | None = None,
        arch: str = "resnet18",
        runtime: str = "auto",
        checkpoint_path: Path | None = None,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        # channels_last: measured faster than the default layout in PyTorch on CPU (BENCHMARKS.md).
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.class_names = list(class_names)
        self.image_size = image_size
        self.transform = eval_transform(image_size, *normalization(arch))
        self.runtime = runtime
        self.checkpoint_path = checkpoint_path  # where the ONNX graph is cached, beside it
        self._onnx = None  # built on the first plain forward pass, never by Grad-CAM-only users
        self._cam = None
        self.cam_chunk = 4  # images per Grad-CAM pass

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | None = None, runtime: str = "auto") -> Predictor:
        dev = pick_device(device)
        model, ckpt = load_checkpoint(Path(path), dev)
        image_size = ckpt.get("config", {}).get("image_size", 224)
        predictor = cls(model, ckpt["class_names"], image_size, dev, ckpt["arch"], runtime, Path(path))
        predictor.checkpoint = {k: v for k, v in ckpt.items() if not k.endswith("state_dict")}
        return predictor

    def _batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.transform(to_rgb(im)) for im in images])

    def onnx_runner(self):
        """The ONNX Runtime session when this Predictor uses one, else None (built on first use)."""
        if self._onnx is None and self.runtime != "torch":
            if self.device.type != "cpu" and self.runtime == "auto":
                self.runtime = "torch"  # on a GPU PyTorch is the fast path
                return None
            try:
                from ml.runtime import OnnxRunner

                self._onnx = OnnxRunner(self.model, self.image_size, self.checkpoint_path)
            except Exception as exc:
                if self.runtime == "onnxruntime":
                    raise
                log.warning("ONNX Runtime unavailable (%s: %s); using PyTorch", type(exc).__name__, exc)
                self.runtime = "torch"
        return self._onnx

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Logits and penultimate features of a normalised (N, 3, S, S) batch, as float32 arrays."""
        runner = self.onnx_runner()
        if runner is not None:
            return runner(batch.cpu().numpy())
        x = batch.to(self.device, memory_format=torch.channels_last)
        logits, features = forward_with_features(self.model, x)
        return logits.float().cpu().numpy(), features.float().cpu().numpy()

    def probabilities(
        self, images: Sequence[Image.Image], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, C) probabilities and (N, D) penultimate features, batched, no Grad-CAM."""
        probs, feats = [], []
        for i in range(0, len(images), batch_size):
            logits, f = self.forward(self._batch(images[i : i + batch_size]))
            probs.append(torch.from_numpy(logits).float().softmax(1).numpy())
            feats.append(f)
        if not probs:
            return np.zeros((0, len(self.class_names))), np.zeros((0, 0))
        return np.concatenate(probs), np.concatenate(feats)

    def cam_runner(self):
        """The Grad-CAM object, built on first use and kept."""
        if self._cam is None:
            from ml.explain import CamRunner

            self._cam = CamRunner(self.model)
        return self._cam

    def predict(self, images: Sequence[Image.Image], gradcam: bool = False) -> list[Prediction]:
        if not images:
            return []
        heatmaps: list[np.ndarray | None] = [None] * len(images)
        if gradcam:
            from ml.explain import overlay, resize_map

            # Grad-CAM needs a backward pass, whose activations grow with the batch: run it in
            # chunks so that a worker's memory stays bounded whatever batch it was handed.
            probs_parts, feats_parts, heatmaps = [], [], []
            runner = self.cam_runner()
            for i in range(0, len(images), self.cam_chunk):
                chunk = images[i : i + self.cam_chunk]
                x = self._batch(chunk).to(self.device, memory_format=torch.channels_last)
                logits, feats, maps = runner(x)
                probs_parts.append(torch.softmax(logits.float(), 1).cpu().numpy())
                feats_parts.append(feats.float().cpu().numpy())
                heatmaps += [resize_map(m, im.size) for m, im in zip(maps, chunk, strict=True)]
            probs, feats = np.concatenate(probs_parts), np.concatenate(feats_parts)
        else:
            probs, feats = self.probabilities(images, batch_size=len(images))
        out = []
        for i, im in enumerate(images):
            top = int(probs[i].argmax())
            out.append(
                Prediction(
                    label=self.class_names[top],
                    confidence=float(probs[i, top]),
                    probabilities={c: float(p) for c, p in zip(self.class_names, probs[i], strict=True)},
                    embedding=feats[i],
                    heatmap=heatmaps[i],
                    overlay=overlay(to_rgb(im), heatmaps[i]) if heatmaps[i] is not None else None,
                )
            )
        return out

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
        self._onnx = None

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
