"""``python manage.py find_duplicates [--max-bits N] [--min-cosine X] [--dry-run]``"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from gallery.duplicates import EMBEDDING_MIN_COSINE, find_duplicates
from ml.split import NEAR_DUPLICATE_BITS


class Command(BaseCommand):
    help = (
        "Find near-duplicate paintings (difference hash, and the active model's embeddings) and list "
        "the new pairs on the curators' duplicates page. Paintings without a hash are hashed from their "
        "image file. Pairs already listed or dismissed stay as they are."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--max-bits",
            type=int,
            default=NEAR_DUPLICATE_BITS,
            help=f"dHash bits apart (of 128) at most (default {NEAR_DUPLICATE_BITS}).",
        )
        parser.add_argument(
            "--min-cosine",
            type=float,
            default=EMBEDDING_MIN_COSINE,
            help=f"Embedding cosine similarity at least (default {EMBEDDING_MIN_COSINE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would be found; write nothing, hashes included.",
        )

    def handle(self, *args, max_bits: int, min_cosine: float, dry_run: bool, **options) -> None:
        if not 0 <= max_bits <= 128:
            raise CommandError("--max-bits must be between 0 and 128.")
        if not -1 <= min_cosine <= 1:
            raise CommandError("--min-cosine must be between -1 and 1.")

        def progress(paintings):
            return tqdm(paintings, desc="hashing images", unit="image", disable=options["verbosity"] < 1)

        search = find_duplicates(max_bits=max_bits, min_cosine=min_cosine, dry_run=dry_run, progress=progress)
        for pk, why in search.unreadable:
            self.stderr.write(f"painting {pk}: skipped, its image cannot be read ({why})")
        if options["verbosity"] > 1 or dry_run:
            for a, b, kind, distance in search.pairs:
                self.stdout.write(f"{a} ~ {b}  {kind}  {distance:g}")
        summary = (
            f"{search.hashed} images hashed, {len(search.unreadable)} unreadable; "
            f"{search.dhash_pairs} dHash pairs (<= {max_bits} bits), "
            f"{search.embedding_pairs} more by embedding (cosine >= {min_cosine})"
        )
        if dry_run:
            self.stdout.write(f"Dry run: {summary}; nothing written.")
        else:
            self.stdout.write(self.style.SUCCESS(f"{summary}; {search.created} new pairs to review."))
