"""The "similar works" benchmark behind BENCHMARKS.md: what a painting's detail page spends finding
its nearest neighbours by embedding, before (every embedding read from the database on each page)
and after (classifier.similarity's per-process index), on N paintings with D-dimensional
embeddings.

    .venv/bin/python scripts/bench_similar.py [--paintings 10000] [--dim 1280]

Uses a PostgreSQL database of its own (``sansuha_bench_similar`` on 127.0.0.1:5432, recreated).
Embeddings are random: the cost does not depend on their values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DB = "sansuha_bench_similar"


def median_ms(fn, repeats: int = 15) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--paintings", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=1280, help="1280: EfficientNet-Lite0; 512: ResNet-18")
    args = p.parse_args()

    for sql in (f"DROP DATABASE IF EXISTS {DB}", f"CREATE DATABASE {DB}"):
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sansuha_site.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.utils import timezone

    from classifier.models import ModelVersion, Prediction, Status
    from classifier.similarity import EmbeddingIndex
    from gallery.models import Painting

    call_command("migrate", verbosity=0)
    version = ModelVersion.objects.create(
        name="bench", arch="efficientnet_lite0", class_names=["cn", "jp"], checkpoint="models/bench.pt"
    )
    rng = np.random.default_rng(0)
    now = timezone.now()
    paintings = Painting.objects.bulk_create(
        [
            Painting(image="x.jpg", thumbnail="x.jpg", sha256=f"{i:064x}", width=1, height=1, title=f"p{i}")
            for i in range(args.paintings)
        ],
        batch_size=2000,
    )
    Prediction.objects.bulk_create(
        [
            Prediction(
                painting=painting,
                model_version=version,
                status=Status.DONE,
                label="cn",
                confidence=0.9,
                finished_at=now,
                embedding=rng.standard_normal(args.dim).astype(np.float32).tobytes(),
            )
            for painting in paintings
        ],
        batch_size=1000,
    )
    me = Prediction.objects.order_by("pk").first()
    vector = me.embedding_vector()

    def brute_force():  # what Prediction.similar did before the index
        rows = list(
            Prediction.objects.filter(model_version=version, status=Status.DONE)
            .exclude(pk=me.pk)
            .values_list("painting_id", "embedding")
        )
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), np.float32).reshape(len(rows), -1)
        sims = matrix @ vector / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector))
        return np.argsort(-sims)[:6]

    index = EmbeddingIndex(version.pk)
    start = time.perf_counter()
    index.nearest(vector, 6, me.painting_id)
    first_ms = 1000 * (time.perf_counter() - start)
    steady_ms = median_ms(lambda: index.nearest(vector, 6, me.painting_id))

    def one_new_painting():
        painting = Painting.objects.create(
            image="x.jpg", thumbnail="x.jpg", sha256=os.urandom(32).hex(), width=1, height=1, title="new"
        )
        Prediction.objects.create(
            painting=painting,
            model_version=version,
            status=Status.DONE,
            finished_at=timezone.now(),
            embedding=rng.standard_normal(args.dim).astype(np.float32).tobytes(),
        )
        start = time.perf_counter()
        index.nearest(vector, 6, me.painting_id)
        return time.perf_counter() - start

    after_new_ms = 1000 * statistics.median(one_new_painting() for _ in range(15))
    brute_ms = median_ms(brute_force, repeats=7)
    index_mb = index.matrix.nbytes / 2**20
    print(f"{args.paintings} paintings, {args.dim}-d embeddings, PostgreSQL, medians:")
    print("| what | ms |")
    print("|---|---|")
    print(f"| before: read every embedding, cosine, top 6 | {brute_ms:.1f} |")
    print(f"| index: first use in a process (reads everything) | {first_ms:.1f} |")
    print(f"| index: a page view, nothing changed | {steady_ms:.1f} |")
    print(f"| index: a page view after one new prediction | {after_new_ms:.1f} |")
    print(f"index memory per process and version: {index_mb:.1f} MB; full loads: {index.full_loads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
