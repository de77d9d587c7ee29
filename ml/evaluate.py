"""Evaluation on the test split, which nothing else reads: training picks its checkpoint on val.

Writes into OUT:

- ``classification_report.txt`` per-class precision/recall/F1, accuracy with its Wilson 95%
  interval, the shortcut check and per-source accuracy, in words a reader can quote
- ``metrics.json``               the same numbers, machine-readable, with the command and data
- ``predictions.csv``            file, true, predicted, confidence, probability per class
- ``confusion_matrix.png``, ``tsne.png``, ``gradcam_<class>.png``, ``correct_preds.png``,
  ``wrong_preds.png``

The **shortcut check** scores the test split three times: as delivered, after every image is
reduced to 224 x 224 and re-encoded as JPEG q75 (how the shared data's Japanese prints arrived),
and after every image is upscaled to 640 px and sharpened (how a crisp scan arrives). A model
that learned the painting loses little; one that learned the delivery collapses.

The **colour check** scores it once more in greyscale: how much of the decision is "ink or colour
print" (see ml.transforms.COLOUR_CHECK). No target: it is there to be read beside the colour
baseline, which collapses by construction.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ml import metrics, plots
from ml.data import Sample, list_samples, load_samples
from ml.transforms import COLOUR_CHECK, DELIVERIES

log = logging.getLogger(__name__)

ProbaFn = Callable[[Sequence[Image.Image]], np.ndarray]
# Test images are kept up to this size: enough for the 640 px shortcut delivery and the plots.
EVAL_LONG_SIDE = 1024


def shortcut_check(
    predict_proba: ProbaFn,
    images: Sequence[Image.Image],
    labels: Sequence[int],
    class_names: Sequence[str],
    probs: np.ndarray | None = None,
    deliveries: dict = DELIVERIES,
) -> dict:
    """Accuracy and balanced accuracy under each delivery, and the drop in points from as-delivered.

    ``probs``: the as-delivered probabilities when the caller already has them.
    """
    results = {}
    for name, deliver in deliveries.items():
        if deliver is None and probs is not None:
            preds = probs.argmax(1).tolist()
        else:
            delivered = images if deliver is None else [deliver(im) for im in images]
            preds = predict_proba(delivered).argmax(1).tolist()
        m = metrics.summarize(labels, preds, class_names)
        results[name] = {
            "accuracy": m["accuracy"],
            "accuracy_ci95": m["accuracy_ci95"],
            "balanced_accuracy": m["balanced_accuracy"],
            "recall": {c: m["per_class"][c]["recall"] for c in class_names},
        }
    base = results["as_delivered"]
    for r in results.values():
        r["accuracy_drop_points"] = 100 * (base["accuracy"] - r["accuracy"])
        r["balanced_accuracy_drop_points"] = 100 * (base["balanced_accuracy"] - r["balanced_accuracy"])
    return results


def per_source(samples: Sequence[Sample], y_pred: Sequence[int], class_names) -> dict:
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        if s.source:
            by_source[s.source].append(i)
    out = {}
    for source, idx in sorted(by_source.items()):
        m = metrics.summarize([samples[i].label for i in idx], [y_pred[i] for i in idx], class_names)
        out[source] = {"n": m["n"], "accuracy": m["accuracy"], "accuracy_ci95": m["accuracy_ci95"]}
    return out


def _report_text(
    title: str, m: dict, shortcut: dict, sources: dict, class_names, colour: dict | None = None
) -> str:
    lines = [title, "=" * len(title), ""]
    lines.append(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for c in class_names:
        pc = m["per_class"][c]
        lines.append(
            f"{c:<14}{pc['precision']:>10.3f}{pc['recall']:>10.3f}{pc['f1']:>10.3f}{pc['support']:>10d}"
        )
    lines += [
        "",
        f"accuracy           {metrics.format_accuracy(m)}  (Wilson 95% interval)",
        f"balanced accuracy  {100 * m['balanced_accuracy']:.1f}%",
        f"macro-F1           {100 * m['macro_f1']:.1f}%",
        "",
        "confusion matrix (rows = true, columns = predicted): " + ", ".join(class_names),
    ]
    lines += ["  " + " ".join(f"{v:>6d}" for v in row) for row in m["confusion_matrix"]]
    if shortcut:
        lines += ["", "shortcut check (same test images, delivered differently)"]
        lines.append(f"  {'delivery':<26}{'accuracy':>10}{'drop':>8}{'bal.acc':>10}{'drop':>8}")
        for name, r in shortcut.items():
            lines.append(
                f"  {name:<26}{100 * r['accuracy']:>9.1f}%{r['accuracy_drop_points']:>+7.1f}"
                f"{100 * r['balanced_accuracy']:>9.1f}%{r['balanced_accuracy_drop_points']:>+7.1f}"
            )
        lines.append("  (drop in points from as-delivered; positive = worse. Target: at most 2.)")
    if colour:
        g = colour["greyscale"]
        recalls = ", ".join(f"{c} {100 * r:.1f}%" for c, r in g["recall"].items())
        lines += [
            "",
            "colour check (same test images in greyscale: how much the decision rests on colour)",
            f"  accuracy {100 * g['accuracy']:.1f}% ({g['accuracy_drop_points']:+.1f}), balanced "
            f"{100 * g['balanced_accuracy']:.1f}% ({g['balanced_accuracy_drop_points']:+.1f}); "
            f"recall per class: {recalls}",
        ]
    if sources:
        lines += ["", "accuracy per source"]
        for source, r in sources.items():
            lo, hi = r["accuracy_ci95"]
            lines.append(
                f"  {source:<24}{100 * r['accuracy']:>6.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] n={r['n']}"
            )
    return "\n".join(lines) + "\n"


def _caption(true: str, pred: str, conf: float) -> str:
    return f"true {true} / pred {pred}\nconfidence {conf:.2f}"


def write_report(
    out: Path,
    title: str,
    class_names: Sequence[str],
    samples: Sequence[Sample],
    images: Sequence[Image.Image],
    predict_proba: ProbaFn,
    probs: np.ndarray | None = None,
    features: np.ndarray | None = None,
    cam: Callable[[Sequence[Image.Image]], list] | None = None,
    extra: dict | None = None,
    cam_per_class: int = 6,
    grid_size: int = 24,
) -> dict:
    """Score ``images`` with ``predict_proba`` and write every artifact into ``out``.

    ``probs`` are the as-delivered probabilities when already computed (with ``features``, the
    penultimate features for the t-SNE); ``cam`` explains a few images for the Grad-CAM figures.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    class_names = list(class_names)
    labels = [s.label for s in samples]
    if probs is None:
        probs = predict_proba(images)
    preds = probs.argmax(1)
    m = metrics.summarize(labels, preds.tolist(), class_names)
    log.info("running the shortcut check (%d images x %d deliveries)", len(images), len(DELIVERIES))
    shortcut = shortcut_check(predict_proba, images, labels, class_names, probs)
    colour = shortcut_check(predict_proba, images, labels, class_names, probs, COLOUR_CHECK)
    sources = per_source(samples, preds.tolist(), class_names)
    result = {
        "title": title,
        "command": " ".join(sys.argv),
        **(extra or {}),
        **m,
        "shortcut_check": shortcut,
        "colour_check": colour,
        "per_source": sources,
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    (out / "classification_report.txt").write_text(
        _report_text(title, m, shortcut, sources, class_names, colour)
    )

    with (out / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "true", "predicted", "confidence", "source", *[f"p_{c}" for c in class_names]])
        for s, p in zip(samples, probs, strict=True):
            w.writerow(
                [
                    str(s.path),
                    s.class_name,
                    class_names[int(p.argmax())],
                    f"{p.max():.4f}",
                    s.source,
                    *[f"{v:.4f}" for v in p],
                ]
            )

    plots.plot_confusion(
        np.array(m["confusion_matrix"]),
        class_names,
        out / "confusion_matrix.png",
        f"{title}\naccuracy {metrics.format_accuracy(m)}",
    )

    if features is not None and len(features) >= 5:
        from sklearn.manifold import TSNE

        points = TSNE(
            n_components=2, perplexity=min(30, len(features) - 1), init="pca", random_state=0
        ).fit_transform(features)
        plots.plot_tsne(points, labels, preds, class_names, out / "tsne.png", title)

    conf = probs.max(1)
    correct = [i for i in range(len(samples)) if preds[i] == labels[i]]
    wrong = sorted((i for i in range(len(samples)) if preds[i] != labels[i]), key=lambda i: -conf[i])
    # Correct predictions: round-robin over classes so the minority class is shown too.
    by_class = [[i for i in correct if labels[i] == c] for c in range(len(class_names))]
    shown = [grp[k] for k in range(max(map(len, by_class), default=0)) for grp in by_class if k < len(grp)]
    for name, idx, what in (
        ("correct_preds.png", shown[:grid_size], "Correct"),
        ("wrong_preds.png", wrong[:grid_size], "Wrong (most confident first)"),
    ):
        plots.plot_grid(
            [images[i] for i in idx],
            [_caption(class_names[labels[i]], class_names[preds[i]], conf[i]) for i in idx],
            out / name,
            f"{what} predictions: {len(idx)} of "
            f"{len(correct) if name.startswith('correct') else len(wrong)} shown ({title})",
        )

    if cam is not None:
        for c, name in enumerate(class_names):
            of_class = [i for i in range(len(samples)) if labels[i] == c]
            # Half the examples the model gets right (most confident), half it gets wrong.
            right = sorted((i for i in of_class if preds[i] == c), key=lambda i: -conf[i])
            missed = sorted((i for i in of_class if preds[i] != c), key=lambda i: -conf[i])
            k_wrong = min(len(missed), cam_per_class // 2)
            idx = missed[:k_wrong] + right[: cam_per_class - k_wrong]
            results = cam([images[i] for i in idx]) if idx else []
            plots.plot_pairs(
                [(images[i], r.overlay) for i, r in zip(idx, results, strict=True)],
                [_caption(name, r.label, r.confidence) for r in results],
                out / f"gradcam_{name}.png",
                f"Grad-CAM, true class {name}: where the model looked for its prediction",
            )
    log.info(
        "test accuracy %s; balanced %.3f; macro-F1 %.3f; report in %s",
        metrics.format_accuracy(m),
        m["balanced_accuracy"],
        m["macro_f1"],
        out,
    )
    return result


def evaluate_checkpoint(
    checkpoint: Path,
    data: Path,
    out: Path,
    device: str | None = None,
    split: str = "test",
    batch_size: int = 32,
) -> dict:
    from ml.inference import Predictor

    with Predictor.from_checkpoint(checkpoint, device) as predictor:
        class_names = predictor.class_names
        samples, _ = list_samples(Path(data), split, class_names)
        samples, images, bad = load_samples(samples, EVAL_LONG_SIDE)
        if not samples:
            raise ValueError(f"no readable images in the '{split}' split of {data}")
        probs, features = predictor.probabilities(images, batch_size)

        def predict_proba(ims: Sequence[Image.Image]) -> np.ndarray:
            return predictor.probabilities(ims, batch_size)[0]

        def cam(ims: Sequence[Image.Image]) -> list:
            results = []
            for i in range(0, len(ims), 8):
                results += predictor.predict(ims[i : i + 8], gradcam=True)
            return results

        ck = predictor.checkpoint
        extra = {
            "checkpoint": str(checkpoint),
            "arch": ck["arch"],
            "config": ck.get("config", {}),
            "checkpoint_epoch": ck.get("epoch"),
            "val_accuracy": ck.get("val_accuracy"),
            "data": str(data),
            "split": split,
            "skipped_files": [str(b) for b in bad],
        }
        title = f"{ck['arch']} on {Path(data).name}/{split}"
        return write_report(
            out, title, class_names, samples, images, predict_proba, probs, features, cam, extra
        )
