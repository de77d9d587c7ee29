"""Register a checkpoint trained with ``python -m ml train`` as a model version."""

import json
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from classifier.models import ModelVersion, Prediction


def read_checkpoint_header(path: Path) -> dict:
    """The checkpoint's self-description, without keeping torch in this process longer than needed.

    torch is imported here, in a management command, never in the web process."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - whatever the file is, it is not a checkpoint
        raise CommandError(f"{path} is not a checkpoint from `python -m ml train` ({exc})") from None
    if not isinstance(ckpt, dict):
        raise CommandError(f"{path} is not a checkpoint from `python -m ml train`")
    missing = [k for k in ("model_state_dict", "class_names", "arch") if k not in ckpt]
    if missing:
        raise CommandError(f"{path} is not a checkpoint from `python -m ml train` (no {', '.join(missing)})")
    return {k: ckpt.get(k) for k in ("arch", "class_names", "config", "epoch", "val_accuracy", "history")}


class Command(BaseCommand):
    help = (
        "Register a checkpoint trained with `python -m ml train` as a model version. Metrics are read "
        "from an evaluation's metrics.json (beside the checkpoint in eval/, or --metrics)."
    )

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", type=Path)
        parser.add_argument("--name", help="unique name (default: the run folder's name)")
        parser.add_argument("--metrics", type=Path, help="metrics.json from `python -m ml evaluate`")
        parser.add_argument(
            "--activate",
            action="store_true",
            help="make it the active model and queue predictions for every painting that has none by it",
        )

    def handle(self, *args, checkpoint: Path, name=None, metrics=None, activate=False, **options):
        if not checkpoint.is_file():
            raise CommandError(f"no such file: {checkpoint}")
        header = read_checkpoint_header(checkpoint)
        name = name or checkpoint.resolve().parent.name
        if ModelVersion.objects.filter(name=name).exists():
            raise CommandError(f"a model version named {name!r} exists; pass --name")
        metrics_path = metrics or checkpoint.parent / "eval" / "metrics.json"
        found = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        with checkpoint.open("rb") as f:
            version = ModelVersion(
                name=name, arch=header["arch"], class_names=header["class_names"], metrics=found
            )
            version.checkpoint.save(f"{name}.pt", File(f), save=False)
            version.save()
        self.stdout.write(
            self.style.SUCCESS(
                f"registered {version} with classes {', '.join(version.class_names)}"
                + (
                    f"; test accuracy {100 * found['accuracy']:.1f}%"
                    if "accuracy" in found
                    else "; no metrics found"
                )
            )
        )
        if activate:
            queued = version.activate_and_reclassify()
            pending = Prediction.objects.filter(model_version=version).exclude(status="done").count()
            self.stdout.write(
                f"activated; {queued} painting(s) queued for classification ({pending} pending)"
            )
