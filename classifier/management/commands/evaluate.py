"""Evaluate a model version again on a dataset version's test split."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from classifier.management.commands.train import log_to
from classifier.models import ModelVersion
from classifier.services import TrainingError, evaluate_model_version
from gallery.models import DatasetVersion


class Command(BaseCommand):
    help = (
        "Evaluate MODEL_VERSION (id or name) again on the test split of the dataset version it was "
        "trained on, or of --dataset-version ID, and update its metrics and the report, plots and "
        "predictions in its folder under MEDIA_ROOT/models/ (overwritten). Imports torch."
    )

    def add_arguments(self, parser):
        parser.add_argument("model_version", metavar="MODEL_VERSION", help="id or name")
        parser.add_argument("--dataset-version", type=int, metavar="ID")

    def handle(self, *args, model_version: str, dataset_version=None, **options):
        lookup = {"pk": int(model_version)} if model_version.isdigit() else {"name": model_version}
        version = ModelVersion.objects.filter(**lookup).first()
        if version is None:
            raise CommandError(f"no model version {model_version!r} (give its id or name)")
        dataset = None
        if dataset_version is not None:
            dataset = DatasetVersion.objects.filter(pk=dataset_version).first()
            if dataset is None:
                raise CommandError(f"no dataset version with id {dataset_version}")
        with log_to(self.stdout):
            try:
                version = evaluate_model_version(version, dataset)
            except TrainingError as exc:
                raise CommandError(str(exc)) from None
        m = version.metrics
        low, high = m["accuracy_ci95"]
        self.stdout.write(
            self.style.SUCCESS(
                f"{version.name} on {m['dataset_version_name']}: test accuracy {100 * m['accuracy']:.1f}% "
                f"[{100 * low:.1f}, {100 * high:.1f}] (n={m['n']}), balanced "
                f"{100 * m['balanced_accuracy']:.1f}%, macro-F1 {100 * m['macro_f1']:.1f}%; "
                f"artifacts in MEDIA_ROOT/{version.artifacts_dir}/eval/"
            )
        )
