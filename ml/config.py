"""The one config dataclass. It is stored inside every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ARCHS = ("resnet18", "efficientnet_lite0")
PRESETS = ("robust", "study")
IMBALANCE = ("weighted_loss", "none")


@dataclass
class TrainConfig:
    arch: str = "resnet18"
    weights: str = "none"  # "imagenet", "none" or a path to a state dict / checkpoint
    preset: str = "robust"  # "study" reproduces the original transforms exactly
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    image_size: int = 224
    seed: int = 0
    # How the ~9.5:1 class imbalance is handled. "weighted_loss" weights CrossEntropyLoss by
    # inverse class frequency (computed on the train split), so that each class contributes
    # equally to the gradient; the sampler stays a plain shuffle, so every image is seen once
    # per epoch. "none" is the study's plain loss.
    imbalance: str = "weighted_loss"
    # The metric on the validation split that picks the checkpoint. Balanced accuracy by default:
    # with 9.5:1 classes, plain accuracy rewards predicting the majority class.
    select_on: str = "balanced_accuracy"
    # DataLoader workers; -1 picks 0 on the CPU (the model needs both cores) and 4 on CUDA.
    num_workers: int = -1
    # Images are decoded once and kept in memory with their long side at most this (pixels).
    cache_long_side: int = 448
    # Robust preset only: the share of training images turned greyscale, whatever their class
    # (ml.transforms.train_transform). 0 keeps colour in every image.
    greyscale_p: float = 0.0

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.imbalance not in IMBALANCE:
            raise ValueError(f"unknown imbalance {self.imbalance!r}; choose one of {', '.join(IMBALANCE)}")
        if self.select_on not in ("balanced_accuracy", "accuracy"):
            raise ValueError("select_on must be 'balanced_accuracy' or 'accuracy'")
        if not 0 <= self.greyscale_p <= 1:
            raise ValueError("greyscale_p must be between 0 and 1")
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
