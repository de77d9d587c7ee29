"""Every figure ml/ writes. Each one is readable without the code: title, axes, legend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display, also inside the worker
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

_COLOURS = plt.get_cmap("tab10").colors


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history: Sequence[dict], path: Path, title: str = "") -> Path:
    """Train and validation loss (left axis) and validation accuracy (right axis) per epoch."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", color=_COLOURS[0], label="train loss")
    ax.plot(epochs, [h["val_loss"] for h in history], "s-", color=_COLOURS[1], label="val loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_xticks(epochs)
    ax.grid(alpha=0.3)
    acc = ax.twinx()
    acc.plot(epochs, [h["val_accuracy"] for h in history], "^--", color=_COLOURS[2], label="val accuracy")
    if "val_balanced_accuracy" in history[0]:
        acc.plot(
            epochs,
            [h["val_balanced_accuracy"] for h in history],
            "v--",
            color=_COLOURS[3],
            label="val balanced accuracy",
        )
    acc.set_ylabel("accuracy")
    acc.set_ylim(0, 1.02)
    lines = ax.get_legend_handles_labels()
    lines2 = acc.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    ax.set_title(f"Training curves{': ' + title if title else ''}")
    return _save(fig, path)


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> Path:
    cm = np.asarray(cm)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.4 * n + 2.5, 1.4 * n + 2))
    row_sums = cm.sum(1, keepdims=True).clip(min=1)
    ax.imshow(cm / row_sums, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            share = cm[i, j] / row_sums[i, 0]
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n({100 * share:.0f}% of row)",
                ha="center",
                va="center",
                color="white" if share > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix{': ' + title if title else ''}", fontsize=10)
    return _save(fig, path)


def plot_tsne(
    points: np.ndarray,
    y_true: Sequence[int],
    y_pred: Sequence[int],
    class_names: Sequence[str],
    path: Path,
    title: str = "",
) -> Path:
    """2-D t-SNE of penultimate features: colour = true class, marker = correct (o) or wrong (x)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    fig, ax = plt.subplots(figsize=(7, 6))
    for c, name in enumerate(class_names):
        for ok, marker, label in ((True, "o", "correct"), (False, "X", "wrong")):
            sel = (y_true == c) & ((y_true == y_pred) == ok)
            if sel.any():
                ax.scatter(
                    points[sel, 0],
                    points[sel, 1],
                    c=[_COLOURS[c % 10]],
                    marker=marker,
                    s=22 if ok else 70,
                    alpha=0.75 if ok else 1.0,
                    edgecolors="black" if not ok else "none",
                    linewidths=0.6,
                    label=f"true {name}, {label} ({int(sel.sum())})",
                )
    ax.set_xlabel("t-SNE dimension 1")
    ax.set_ylabel("t-SNE dimension 2")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"t-SNE of penultimate features{': ' + title if title else ''}", fontsize=10)
    return _save(fig, path)


def _thumb(im: Image.Image, side: int = 224) -> Image.Image:
    im = im.copy()
    im.thumbnail((side, side))
    return im


def plot_pairs(
    pairs: Sequence[tuple[Image.Image, Image.Image]], captions: Sequence[str], path: Path, title: str
) -> Path:
    """Rows of (image, Grad-CAM overlay) pairs, two pairs per row."""
    per_row = 2
    rows = max(1, -(-len(pairs) // per_row))
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(4 * per_row * 1.6, 3.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, ((image, overlay), caption) in enumerate(zip(pairs, captions, strict=True)):
        r, c = divmod(k, per_row)
        axes[r, 2 * c].imshow(_thumb(image))
        axes[r, 2 * c].set_title(caption, fontsize=8)
        axes[r, 2 * c + 1].imshow(_thumb(overlay))
        axes[r, 2 * c + 1].set_title("Grad-CAM (red = most used)", fontsize=8)
    if not pairs:
        axes[0, 0].text(0, 0.5, "no test image of this class", fontsize=11)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)


def plot_grid(images: Sequence[Image.Image], captions: Sequence[str], path: Path, title: str) -> Path:
    per_row = 6
    rows = max(1, -(-len(images) // per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(2.3 * per_row, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, (image, caption) in enumerate(zip(images, captions, strict=True)):
        ax = axes[divmod(k, per_row)]
        ax.imshow(_thumb(image, 200))
        ax.set_title(caption, fontsize=7)
    if not images:
        axes[0, 0].text(0, 0.5, "none", fontsize=12)
    fig.suptitle(title, fontsize=11)
    return _save(fig, path)
