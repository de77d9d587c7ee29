"""Train a model version on a frozen dataset version (or freeze one now), evaluate it on that version's
test split, and register it with its metrics and artifacts."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError

from classifier.models import ModelVersion, TrainingRun
from classifier.services import (
    TrainingError,
    TrainOptions,
    check_dataset_version,
    freeze_dataset_version,
    run_training,
)
from gallery.models import DatasetVersion
from ml.config import ARCHS, PRESETS

# ml's per-epoch lines (ml.train), its evaluation summary (ml.evaluate) and the workflow's steps.
LOGGERS = ("ml", "classifier.services")


@contextmanager
def log_to(stream):
    """Show the INFO lines of ml and of the workflow in the terminal while the command runs."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # once, here, not again through the root logger
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


class Command(BaseCommand):
    help = (
        "Train a model on a dataset version (--dataset-version ID; --freeze freezes the curated set "
        "now; neither: the newest version), evaluate it on that version's test split, register it as a "
        "model version with its metrics and every artifact (report, confusion matrix, curves, t-SNE, "
        "Grad-CAM, correct/wrong grids, predictions) under MEDIA_ROOT/models/NAME/, and score every "
        "painting of the version for likely mislabelling. Imports torch; a GPU is used when present."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--dataset-version", type=int, metavar="ID", help="train on this dataset version")
        which.add_argument("--freeze", action="store_true", help="freeze the curated set now and train on it")
        parser.add_argument("--dataset-name", default="", help="with --freeze: the new version's name")
        parser.add_argument("--val", type=float, default=0.15, help="with --freeze: validation fraction")
        parser.add_argument("--test", type=float, default=0.15, help="with --freeze: test fraction")
        parser.add_argument("--arch", choices=ARCHS, default="resnet18")
        parser.add_argument(
            "--weights", default="none", help="imagenet, none (from scratch) or the path of a checkpoint"
        )
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--preset", choices=PRESETS, default="robust")
        parser.add_argument("--image-size", type=int, default=224, help="input side in pixels")
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--seed", type=int, default=0, help="for training, and the split with --freeze")
        parser.add_argument("--device", default="", help="cuda or cpu (default: cuda when available)")
        parser.add_argument("--name", default="", help="the model version's name (default: made up)")
        parser.add_argument(
            "--activate",
            action="store_true",
            help="make it the active model and queue the gallery for classification by it",
        )

    def handle(self, *args, **opts):
        try:
            options = TrainOptions(
                arch=opts["arch"],
                weights=opts["weights"],
                epochs=opts["epochs"],
                preset=opts["preset"],
                seed=opts["seed"],
                image_size=opts["image_size"],
                batch_size=opts["batch_size"],
                name=opts["name"],
                activate=opts["activate"],
                device=opts["device"],
            )
            if options.name and ModelVersion.objects.filter(name=options.name).exists():
                raise TrainingError(f"a model version named {options.name!r} exists; choose another --name")
            dataset_version = self.dataset_version(opts)
            check_dataset_version(dataset_version)
        except TrainingError as exc:
            raise CommandError(str(exc)) from None
        run = TrainingRun.objects.create(dataset_version=dataset_version, options=options.to_dict())
        with log_to(self.stdout):
            try:
                version = run_training(run)
            except TrainingError as exc:
                raise CommandError(f"training run {run.pk} failed: {exc}") from None
        m = version.metrics
        low, high = m["accuracy_ci95"]
        lines = [
            f"model version {version.name} (id {version.pk}), classes {', '.join(version.class_names)}",
            f"  test accuracy {100 * m['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}] (n={m['n']}), "
            f"balanced {100 * m['balanced_accuracy']:.1f}%, macro-F1 {100 * m['macro_f1']:.1f}%",
            f"  artifacts in MEDIA_ROOT/{version.artifacts_dir}/ (report: eval/classification_report.txt)",
        ]
        mislabel = m.get("mislabel", {})
        if "flagged" in mislabel:
            lines.append(
                f"  mislabel scores for {mislabel['n']} painting(s); "
                f"{mislabel['flagged']} likely mislabelled (see the review queue)"
            )
        elif mislabel.get("skipped"):
            lines.append(f"  no mislabel scores: {mislabel['skipped']}")
        for left_out in m.get("left_out", []):
            lines.append(f"  left out: {left_out}")
        lines.append("  active: yes" if version.is_active else "  not active (activate it on /models/)")
        self.stdout.write(self.style.SUCCESS(lines[0]))
        self.stdout.write("\n".join(lines[1:]))

    def dataset_version(self, opts) -> DatasetVersion:
        if opts["freeze"]:
            version = freeze_dataset_version(
                name=opts["dataset_name"], seed=opts["seed"], val=opts["val"], test=opts["test"]
            )
            counts = ", ".join(f"{s} {sum(c.values())}" for s, c in version.counts.items())
            self.stdout.write(f"froze dataset version {version.name} (id {version.pk}): {counts}")
            return version
        if opts["dataset_version"] is not None:
            version = DatasetVersion.objects.filter(pk=opts["dataset_version"]).first()
            if version is None:
                raise TrainingError(f"no dataset version with id {opts['dataset_version']}")
            return version
        version = DatasetVersion.objects.order_by("-created", "-pk").first()
        if version is None:
            raise TrainingError(
                "no dataset version yet: freeze the curated set with --freeze (or on the datasets page)"
            )
        self.stdout.write(f"training on the newest dataset version, {version.name} (id {version.pk})")
        return version
