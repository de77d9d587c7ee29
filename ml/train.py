"""Training as the original study: CrossEntropyLoss, Adam lr 1e-3, 10 epochs, batch 32,
validation every epoch, best-validation checkpoint kept.

Differences from the study, all deliberate and recorded in the checkpoint's config:
the checkpoint is picked on the *validation* split only (balanced accuracy by default; the test
split is never read here), the loss is weighted against the class imbalance, and the default
``robust`` preset randomises how images were delivered (see ml.transforms).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ml import metrics
from ml.config import TrainConfig
from ml.data import ImageListDataset, list_samples, load_samples
from ml.models import (
    build_model,
    forward_with_features,
    normalization,
    pick_device,
    save_checkpoint,
)
from ml.transforms import eval_transform, train_transform

log = logging.getLogger(__name__)

EpochCallback = Callable[[dict], None]


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: list[int], n_classes: int) -> torch.Tensor:
    """Inverse class frequency, scaled so that a balanced set gets weight 1 for every class."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        raise ValueError(f"the train split has no image of some class (counts {counts.tolist()})")
    return torch.tensor(len(labels) / (n_classes * counts), dtype=torch.float32)


def make_loader(
    dataset: ImageListDataset, batch_size: int, shuffle: bool, seed: int, workers: int
) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        generator=generator,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    desc: str = "train",
) -> dict:
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, leave=False, unit="batch", disable=None)
    for x, y in bar:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{total_loss / seen:.4f}")
    return {"loss": total_loss / max(seen, 1), "accuracy": correct / max(seen, 1)}


@torch.inference_mode()
def predict_loader(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, penultimate features and labels for every item of a loader."""
    model.eval()
    probs, feats, labels = [], [], []
    for x, y in loader:
        logits, f = forward_with_features(model, x.to(device))
        probs.append(torch.softmax(logits.float(), 1).cpu())
        feats.append(f.float().cpu())
        labels.append(y)
    return (torch.cat(probs).numpy(), torch.cat(feats).numpy(), torch.cat(labels).numpy())


def validate(
    model: nn.Module, loader: DataLoader, criterion: nn.Module, device: torch.device, class_names
) -> dict:
    probs, _, labels = predict_loader(model, loader, device)
    loss = criterion(torch.log(torch.from_numpy(probs).clamp_min(1e-12)), torch.from_numpy(labels))
    summary = metrics.summarize(labels.tolist(), probs.argmax(1).tolist(), class_names)
    return {
        "loss": float(loss),
        "accuracy": summary["accuracy"],
        "balanced_accuracy": summary["balanced_accuracy"],
    }


def _workers(config: TrainConfig, device: torch.device) -> int:
    if config.num_workers >= 0:
        return config.num_workers
    return min(4, os.cpu_count() or 1) if device.type == "cuda" else 0


@dataclass
class PreparedData:
    class_names: list[str]
    train: ImageListDataset
    val: ImageListDataset
    train_counts: list[int]
    bad: list


def prepare_data(data: Path, config: TrainConfig) -> PreparedData:
    """Decode the train and val splits once, into datasets with the config's transforms."""
    train_samples, class_names = list_samples(data, "train")
    val_samples, _ = list_samples(data, "val", class_names)
    log.info("decoding %d train and %d val images once", len(train_samples), len(val_samples))
    train_samples, train_images, bad_train = load_samples(train_samples, config.cache_long_side)
    val_samples, val_images, bad_val = load_samples(val_samples, config.cache_long_side)
    if not train_samples or not val_samples:
        raise ValueError(f"{data}: the train and val splits both need readable images")
    train_labels = [s.label for s in train_samples]
    val_labels = [s.label for s in val_samples]
    counts = np.bincount(train_labels, minlength=len(class_names)).tolist()
    log.info("classes %s; train counts %s; val %d", class_names, counts, len(val_labels))
    mean, std = normalization(config.arch)
    train_tf = train_transform(config.preset, config.image_size, mean, std, config.greyscale_p)
    return PreparedData(
        class_names=class_names,
        train=ImageListDataset(train_images, train_labels, train_tf),
        val=ImageListDataset(val_images, val_labels, eval_transform(config.image_size, mean, std)),
        train_counts=counts,
        bad=bad_train + bad_val,
    )


def train(
    data: Path,
    out: Path,
    config: TrainConfig,
    device: str | None = None,
    resume: Path | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> Path:
    """Train on ``data/train``, pick the checkpoint on ``data/val``; returns ``out/best.pt``."""
    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    set_seed(config.seed)

    prepared = prepare_data(data, config)
    class_names, train_ds, val_ds = prepared.class_names, prepared.train, prepared.val
    train_labels, counts = train_ds.labels, prepared.train_counts
    workers = _workers(config, dev)
    train_loader = make_loader(train_ds, config.batch_size, True, config.seed, workers)
    val_loader = make_loader(val_ds, config.batch_size, False, config.seed, workers)

    model = build_model(config.arch, len(class_names), config.weights).to(dev)
    weight = class_weights(train_labels, len(class_names)) if config.imbalance == "weighted_loss" else None
    criterion = nn.CrossEntropyLoss(weight=weight.to(dev) if weight is not None else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    history: list[dict] = []
    best_score, start_epoch = -1.0, 1
    if resume:
        ckpt = torch.load(resume, map_location="cpu", weights_only=False)
        if ckpt.get("class_names") != class_names:
            raise ValueError(f"{resume} was trained on classes {ckpt.get('class_names')}, not {class_names}")
        model.load_state_dict(ckpt["model_state_dict"])
        optimizer.load_state_dict(ckpt["optimizer_state_dict"])
        history = ckpt.get("history", [])
        best_score = max((h["val_" + config.select_on] for h in history), default=-1.0)
        start_epoch = ckpt["epoch"] + 1
        if "rng_state" in ckpt:
            torch.set_rng_state(ckpt["rng_state"])
        log.info("resuming from %s after epoch %d", resume, ckpt["epoch"])

    common = {
        "class_names": class_names,
        "arch": config.arch,
        "config": config.to_dict(),
        "train_counts": counts,
        "data": str(data),
    }
    best_path = out / "best.pt"
    for epoch in range(start_epoch, config.epochs + 1):
        started = time.perf_counter()
        tr = train_one_epoch(
            model, train_loader, criterion, optimizer, dev, desc=f"epoch {epoch}/{config.epochs}"
        )
        train_seconds = time.perf_counter() - started
        va = validate(model, val_loader, criterion, dev, class_names)
        row = {
            "epoch": epoch,
            "train_loss": tr["loss"],
            "train_accuracy": tr["accuracy"],
            "val_loss": va["loss"],
            "val_accuracy": va["accuracy"],
            "val_balanced_accuracy": va["balanced_accuracy"],
            "train_seconds": train_seconds,
            "seconds": time.perf_counter() - started,
        }
        history.append(row)
        score = row["val_" + config.select_on]
        improved = score > best_score
        state = {
            "epoch": epoch,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "val_accuracy": va["accuracy"],
            "val_balanced_accuracy": va["balanced_accuracy"],
            "history": history,
            "rng_state": torch.get_rng_state(),
            **common,
        }
        save_checkpoint(out / "last.pt", **state)
        if improved:
            best_score = score
            save_checkpoint(best_path, **state)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.3f | val loss %.4f acc %.3f bal.acc %.3f | %.0fs%s",
            epoch,
            config.epochs,
            tr["loss"],
            tr["accuracy"],
            va["loss"],
            va["accuracy"],
            va["balanced_accuracy"],
            row["seconds"],
            "  * best" if improved else "",
        )
        (out / "history.json").write_text(json.dumps(history, indent=2))
        if on_epoch_end:
            on_epoch_end(row)

    (out / "config.json").write_text(json.dumps({**common, "device": str(dev)}, indent=2))
    bad = [str(b) for b in prepared.bad]
    if bad:
        (out / "skipped_files.txt").write_text("\n".join(bad) + "\n")
        log.warning("%d unreadable file(s) skipped, listed in %s", len(bad), out / "skipped_files.txt")
    from ml.plots import plot_history

    plot_history(history, out / "loss_accuracy.png", title=f"{config.arch} ({config.preset} preset)")
    return best_path
