"""Import a labelled dataset (folders or a zip) into the gallery, with curated labels."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from gallery.datasets import IMPORTED, PRESENT, SKIPPED, ImportRefused, import_dataset


class Command(BaseCommand):
    help = (
        "Import labelled paintings: PATH is the study's layout {train,val,test}/{class}/ (the splits are "
        "kept), a flat {class}/ tree, a zip of either, or a folder with a manifest.csv (its source, group "
        "and licence columns are kept). A folder's name is the class: it becomes each painting's curated "
        "label, with history. Every file gets the checks an upload gets; bad ones are skipped with their "
        "reasons. Files already in the gallery (same SHA-256) are not stored twice, so running it again "
        "changes nothing. --dry-run checks everything and writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="a dataset folder or a zip of one")
        parser.add_argument("--source", default="", help="source of paintings a manifest does not name")
        parser.add_argument("--license", default="", help="licence of paintings a manifest does not name")
        parser.add_argument("--dry-run", action="store_true", help="say what would happen; write nothing")

    def handle(self, *args, path: Path, source="", license="", dry_run=False, **options):
        from tqdm import tqdm

        def progress(files):
            return tqdm(files, unit="file", desc="importing" if not dry_run else "checking", disable=None)

        try:
            report = import_dataset(path, source=source, license=license, dry_run=dry_run, progress=progress)
        except ImportRefused as exc:
            raise CommandError(str(exc)) from None

        manifest = ", with manifest.csv" if report.has_manifest else ""
        self.stdout.write(
            f"{report.source}: {report.layout}{manifest}; classes {', '.join(report.class_names)}"
        )
        new = "would import" if dry_run else "imported"
        columns = ["class", new, "already present", "relabelled", "skipped"]
        width = max(len(c) for c in report.class_names + ["total"]) + 2
        self.stdout.write(f"{columns[0]:<{width}}" + "".join(f"{c:>17}" for c in columns[1:]))
        rows = list(report.counts().items()) + [("total", report.totals())]
        for name, counts in rows:
            values = [counts[IMPORTED], counts[PRESENT], counts["relabelled"], counts[SKIPPED]]
            self.stdout.write(f"{name:<{width}}" + "".join(f"{v:>17}" for v in values))
        if report.skipped:
            self.stdout.write(self.style.WARNING(f"{len(report.skipped)} file(s) skipped:"))
            for f in report.skipped:
                self.stdout.write(f"  {f.name}: {f.reason}")
        totals = report.totals()
        if dry_run:
            self.stdout.write(self.style.NOTICE("dry run: nothing was written"))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{totals[IMPORTED]} imported, {totals[PRESENT]} already present "
                    f"({totals['relabelled']} relabelled), {totals[SKIPPED]} skipped"
                )
            )
