"""The Predictor: a checkpoint loaded once, then batches of PIL images in, predictions out.

The Celery worker builds one per process (lazily, in the child) and keeps it; so does
``python -m ml predict`` and ``python -m ml evaluate``.
"""

from __future__ import annotations

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
    ) -> None:
        self.device = pick_device(device) if not isinstance(device, torch.device) else device
        # channels_last: measured faster for batched inference on CPU (see BENCHMARKS.md).
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.class_names = list(class_names)
        self.transform = eval_transform(image_size, *normalization(arch))
        self._cam = None
        self.cam_chunk = 4  # images per Grad-CAM pass

    @classmethod
    def from_checkpoint(cls, path: Path | str, device: str | None = None) -> Predictor:
        dev = pick_device(device)
        model, ckpt = load_checkpoint(Path(path), dev)
        image_size = ckpt.get("config", {}).get("image_size", 224)
        predictor = cls(model, ckpt["class_names"], image_size, dev, ckpt["arch"])
        predictor.checkpoint = {k: v for k, v in ckpt.items() if not k.endswith("state_dict")}
        return predictor

    def _batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        batch = torch.stack([self.transform(to_rgb(im)) for im in images])
        return batch.to(self.device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def probabilities(
        self, images: Sequence[Image.Image], batch_size: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, C) probabilities and (N, D) penultimate features, batched, no Grad-CAM."""
        probs, feats = [], []
        for i in range(0, len(images), batch_size):
            logits, f = forward_with_features(self.model, self._batch(images[i : i + batch_size]))
            probs.append(torch.softmax(logits.float(), 1).cpu())
            feats.append(f.float().cpu())
        if not probs:
            return np.zeros((0, len(self.class_names))), np.zeros((0, 0))
        return torch.cat(probs).numpy(), torch.cat(feats).numpy()

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
                logits, feats, maps = runner(self._batch(chunk))
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

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
