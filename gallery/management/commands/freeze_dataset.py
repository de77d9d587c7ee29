"""Freeze the curated set into a dataset version."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gallery.datasets import freeze
from ml.data import SPLITS


class Command(BaseCommand):
    help = (
        "Freeze every painting with a curated label into a dataset version NAME. Paintings keep their "
        "split; those without one get one (stratified, deterministic for --seed, groups and near-duplicates "
        "kept inside one split). Refuses, listing the paintings, when duplicates already straddle splits."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a unique name, e.g. 2025-06 or v3")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--val", type=float, default=0.15, help="validation fraction for new splits")
        parser.add_argument("--test", type=float, default=0.15, help="test fraction for new splits")
        parser.add_argument("--notes", default="")

    def handle(self, *args, name, seed=0, val=0.15, test=0.15, notes="", **options):
        try:
            version = freeze(name, seed=seed, val=val, test=test, notes=notes)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from None
        classes = version.class_names
        width = max(len(c) for c in classes) + 2
        self.stdout.write(
            f"{'split':<8}" + "".join(f"{c:>{max(width, 8)}}" for c in classes) + f"{'total':>8}"
        )
        for split in SPLITS:
            counts = [version.counts[split][c] for c in classes]
            self.stdout.write(
                f"{split:<8}" + "".join(f"{n:>{max(width, 8)}}" for n in counts) + f"{sum(counts):>8}"
            )
        total = sum(sum(c.values()) for c in version.counts.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"dataset version {version.name} (id {version.pk}): {total} paintings, "
                f"{version.newly_assigned} newly given a split"
            )
        )
