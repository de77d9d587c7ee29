"""ONNX Runtime for batched inference on CPU, where it is measured fastest (BENCHMARKS.md).

On this kind of machine ONNX Runtime runs EfficientNet-Lite0's depthwise convolutions about
3-4x faster than PyTorch eager (channels_last included), and ResNet-18 ~1.2x faster. The
``Predictor`` therefore runs its plain forward passes (probabilities and embeddings: evaluation,
``ml predict``, mislabel features) through ONNX Runtime on CPU. Grad-CAM still runs in PyTorch:
it needs autograd.

The exported graph returns both the logits and the penultimate features, with a dynamic batch
axis. Exporting takes several seconds, so the file is cached beside the checkpoint
(``best.pt`` -> ``best.onnx``) and rebuilt when the checkpoint is newer; when that folder is not
writable the graph is kept in memory only.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.models import forward_with_features

log = logging.getLogger(__name__)


class _LogitsAndFeatures(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return forward_with_features(self.model, x)


def export_onnx(model: nn.Module, image_size: int, path: Path) -> None:
    """Write the model as an ONNX graph: ``x`` (N, 3, S, S) -> ``logits`` (N, C), ``features`` (N, D)."""
    for noisy in ("onnx_ir", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    was_training = model.training
    wrapper = _LogitsAndFeatures(model).eval()
    example = torch.zeros(2, 3, image_size, image_size)
    try:
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                input_names=["x"],
                output_names=["logits", "features"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                dynamo=True,
                external_data=False,  # one self-contained file (< 2 GB)
                verbose=False,
            )
    finally:
        # The exporter may flip train/eval on the way; leave the caller's model as it was.
        model.train(was_training)


def cached_onnx(model: nn.Module, image_size: int, checkpoint: Path | None) -> bytes:
    """The exported graph, from ``checkpoint``'s ``.onnx`` sibling when that is newer, else exported anew."""
    cache = checkpoint.with_suffix(".onnx") if checkpoint is not None else None
    if cache is not None and cache.is_file() and cache.stat().st_mtime >= checkpoint.stat().st_mtime:
        return cache.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "model.onnx"
        export_onnx(model, image_size, exported)
        graph = exported.read_bytes()
    if cache is not None:
        partial = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        try:
            partial.write_bytes(graph)
            partial.replace(cache)  # atomic: a concurrent reader sees the old file or the new one
        except OSError as exc:
            log.info("could not cache the ONNX graph at %s (%s); keeping it in memory", cache, exc)
            partial.unlink(missing_ok=True)
    return graph


class OnnxRunner:
    """One ONNX Runtime session over a model's logits and features."""

    def __init__(self, model: nn.Module, image_size: int = 224, checkpoint: Path | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # Same thread budget as PyTorch in this process, so the two are compared (and share a
        # worker's cores) on equal terms.
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        graph = cached_onnx(model, image_size, checkpoint)
        self.session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, features = self.session.run(None, {"x": np.ascontiguousarray(x, dtype=np.float32)})
        return logits, features
