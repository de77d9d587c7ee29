"""Queue or run classification with the active model."""

from django.core.management.base import BaseCommand, CommandError

from classifier.models import ModelVersion, Prediction, Status, enqueue, request_prediction
from gallery.models import Painting


class Command(BaseCommand):
    help = (
        "Classify paintings with the active model: --pending (those without a finished prediction, the "
        "default), --all (again, every painting) or --painting ID. Queues tasks for the worker, or with "
        "--sync runs them here in batches (imports torch)."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--pending", action="store_true")
        which.add_argument("--all", action="store_true")
        which.add_argument("--painting", type=int, action="append")
        parser.add_argument("--sync", action="store_true", help="run in this process instead of the worker")
        parser.add_argument("--batch-size", type=int, default=16)

    def handle(self, *args, pending=False, all=False, painting=None, sync=False, batch_size=16, **options):
        version = ModelVersion.objects.active()
        if version is None:
            raise CommandError(
                "no active model: train one (python -m ml train ...) and register it with "
                "`python manage.py import_model CHECKPOINT --activate`"
            )
        paintings = Painting.objects.all()
        if painting:
            paintings = paintings.filter(pk__in=painting)
            if paintings.count() != len(set(painting)):
                raise CommandError("no painting with id(s) " + ", ".join(map(str, painting)))
        if all or painting:
            Prediction.objects.filter(model_version=version, painting__in=paintings).update(
                status=Status.PENDING, queued_at=None, error=""
            )
        for p in paintings.exclude(predictions__model_version=version).iterator():
            request_prediction(p, version)
        todo = list(
            Prediction.objects.filter(model_version=version, painting__in=paintings)
            .exclude(status=Status.DONE)
            .values_list("pk", flat=True)
        )
        if not sync:
            sent = sum(enqueue(pk) for pk in todo)
            self.stdout.write(f"{sent} of {len(todo)} prediction(s) queued for the worker with {version}")
            return
        from tqdm import tqdm

        from classifier.inference import classify

        done = 0
        with tqdm(total=len(todo), unit="painting", disable=None) as bar:
            for pk in todo:
                n = classify(pk, batch_size)
                done += n
                bar.update(n)
        failed = Prediction.objects.filter(pk__in=todo, status=Status.FAILED).count()
        self.stdout.write(
            self.style.SUCCESS(f"classified {done} painting(s) with {version}; {failed} failed")
        )
