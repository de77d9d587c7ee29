"""End to end with a real Celery worker: an upload through the API is classified by a separate worker
process (prefork, torch, Grad-CAM) that reads the task from Redis and the rows from PostgreSQL, and
writes the overlay into the same MEDIA_ROOT.

The test's rows must be committed for the worker to see them, hence transaction=True; the worker is
pointed at pytest-django's test database and at a Redis database of this file's own.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from PIL import Image

from classifier.models import Prediction, Status

from .factory import image_bytes, make_user
from .test_commands import write_checkpoint
from .test_sweep import redis_queue, redis_url

pytestmark = pytest.mark.django_db(transaction=True)

E2E_REDIS_DB = 14  # flushed by this test
REPO = Path(__file__).resolve().parents[2]
CLASS_NAMES = ("cn", "jp", "kr")
UPLOAD_SIZE = (1300, 700)  # larger than CLASSIFY_LONG_SIDE: the worker shrinks it first
TIMEOUT_S = 120  # worker start, torch import in the pool child, model load, Grad-CAM, on 2 busy cores


def test_database_url() -> str:
    """DATABASE_URL of pytest-django's test database (test_<name>), for the worker process."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    login = f"{user}{password}@" if user else ""
    return f"postgres://{login}{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


def start_worker(
    broker_url: str, media_root: Path, log_path: Path, queues: str = "celery", name: str | None = None
) -> subprocess.Popen:
    """A real Celery worker (prefork, one child) on the test database, consuming ``queues``;
    ``name``: its node name (default: a fresh one), e.g. ``e2e-a@%h``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sansuha_site.settings",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "SANSUHA_MEDIA_ROOT": str(media_root),
        "PYTHONPATH": str(REPO),
    }
    command = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "sansuha_site",
        "worker",
        "--concurrency=1",
        "--pool=prefork",
        "--loglevel=info",
        f"--queues={queues}",
        f"--hostname={name or f'e2e-{uuid.uuid4().hex[:8]}@%h'}",
        # Nothing to talk to but this test: skip the cluster chatter, start sooner.
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    with log_path.open("wb") as log:
        # Its own session: the whole group (main process and pool child) is stopped together.
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)  # warm shutdown
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # the pool child too, should it linger
    except ProcessLookupError:
        pass
    worker.wait(timeout=10)


@contextmanager
def running_worker(redis_db: int, media_root: Path, log_path: Path, **kw) -> Iterator[subprocess.Popen]:
    """A real worker on a flushed Redis database of the caller's, with tasks sent there; stopped on
    the way out, and its log printed when the block failed."""
    with redis_queue(redis_db):
        worker = start_worker(redis_url(redis_db), media_root, log_path, **kw)
        try:
            yield worker
        except BaseException:
            print("---- worker log ----\n" + log_path.read_text(errors="replace")[-20000:])
            raise
        finally:
            stop_worker(worker)


def wait_for_finished_prediction(painting_id: int, worker: subprocess.Popen) -> Prediction:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        prediction = Prediction.objects.filter(painting_id=painting_id).first()
        if prediction is not None and prediction.is_finished:
            return prediction
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with status {worker.returncode}")
        if time.monotonic() > deadline:
            status = prediction.status if prediction else "no prediction row"
            pytest.fail(f"no finished prediction after {TIMEOUT_S} s (status: {status})")
        time.sleep(0.5)


def test_an_api_upload_is_classified_by_a_real_worker(client, tmp_path, media_in_tmp):
    if connection.vendor != "postgresql":
        pytest.skip("the worker process must reach the test database: run with DATABASE_URL=postgres://...")
    checkpoint = write_checkpoint(tmp_path / "best.pt", CLASS_NAMES, image_size=64)
    call_command("import_model", str(checkpoint), "--name", "e2e", "--activate", stdout=io.StringIO())
    client.force_login(make_user())

    log_path = tmp_path / "worker.log"
    with running_worker(E2E_REDIS_DB, media_in_tmp, log_path) as worker:
        response = client.post(
            "/api/paintings/",
            {"image": SimpleUploadedFile("mountains.jpg", image_bytes(size=UPLOAD_SIZE, seed=77))},
        )
        assert response.status_code == 201, response.content
        painting_id = response.json()["id"]

        prediction = wait_for_finished_prediction(painting_id, worker)

        assert prediction.status == Status.DONE, prediction.error
        assert prediction.model_version.name == "e2e"
        assert prediction.label in CLASS_NAMES
        assert sorted(prediction.probabilities) == sorted(CLASS_NAMES)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.confidence == pytest.approx(max(prediction.probabilities.values()))

        overlay = Path(prediction.gradcam.path)
        assert overlay.is_relative_to(media_in_tmp) and overlay.is_file()
        long_side = settings.CLASSIFY_LONG_SIDE
        scale = long_side / max(UPLOAD_SIZE)
        with Image.open(overlay) as im:
            im.load()
            assert im.size == (round(UPLOAD_SIZE[0] * scale), round(UPLOAD_SIZE[1] * scale))

        embedding = prediction.embedding_vector()
        assert embedding.dtype == np.float32 and embedding.shape == (512,)
        assert np.isfinite(embedding).all()

        shown = client.get(f"/api/paintings/{painting_id}/").json()["prediction"]
        assert (shown["status"], shown["label"]) == ("done", prediction.label)


def test_a_restarted_worker_takes_back_at_once_what_it_was_running_when_killed(tmp_path, media_in_tmp):
    """As if worker e2e-restart@HOST had been killed mid-batch: its prediction is left "running",
    recently started, so the sweep would wait CLASSIFY_STALE_AFTER (10 min) before touching it. A
    worker of the same name starting again must queue it and finish it straight away."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process must reach the test database: run with DATABASE_URL=postgres://...")
    import socket

    from django.utils import timezone

    from classifier.models import ModelVersion

    from .factory import make_painting, make_prediction

    checkpoint = write_checkpoint(tmp_path / "best.pt", CLASS_NAMES, image_size=64)
    call_command("import_model", str(checkpoint), "--name", "e2e", "--activate", stdout=io.StringIO())
    version = ModelVersion.objects.get(name="e2e")
    name = f"e2e-restart-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    painting, other = make_painting(), make_painting()
    now = timezone.now()
    running = {"status": Status.RUNNING, "label": "", "started_at": now, "queued_at": now}
    make_prediction(painting, version, worker=name, **running)
    someone_elses = make_prediction(other, version, worker="another@host", **running)

    log_path = tmp_path / "worker.log"
    with running_worker(E2E_REDIS_DB, media_in_tmp, log_path, name=name) as worker:
        prediction = wait_for_finished_prediction(painting.pk, worker)
        assert prediction.status == Status.DONE, prediction.error
        assert prediction.worker == name and prediction.attempts >= 1
        assert Path(prediction.gradcam.path).is_file()
        assert Prediction.objects.get(pk=someone_elses.pk).status == Status.RUNNING, (
            "a prediction another worker runs is not this worker's to take"
        )


def test_a_curators_export_is_built_by_a_real_worker_and_downloaded(client, tmp_path, media_in_tmp):
    """The page's "Build export" queues the task; a separate worker process writes the zip into the
    shared MEDIA_ROOT; the status the page polls reaches 100 %, and the download holds every painting
    of the version in the study's layout, byte for byte, with its manifest."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker process must reach the test database: run with DATABASE_URL=postgres://...")
    import csv
    import hashlib
    import zipfile

    from django.urls import reverse

    from gallery.models import DatasetExport

    from .factory import make_curator
    from .test_pages_datasets import labelled_set

    version = labelled_set()
    client.force_login(make_curator())
    log_path = tmp_path / "worker.log"
    with running_worker(E2E_REDIS_DB, media_in_tmp, log_path) as worker:
        response = client.post(reverse("gallery:dataset_export", args=[version.pk]))
        assert response.status_code == 302
        export = DatasetExport.objects.get(dataset_version=version)
        status_url = reverse("gallery:export_status", args=[export.pk])
        deadline = time.monotonic() + TIMEOUT_S
        while (state := client.get(status_url).json())["status"] not in ("done", "failed"):
            assert worker.poll() is None, f"the worker exited with status {worker.returncode}"
            assert time.monotonic() < deadline, f"export not finished after {TIMEOUT_S} s: {state}"
            time.sleep(0.5)
        assert (state["status"], state["percent"], state["error"]) == ("done", 100, "")
        assert "gallery.tasks.export_dataset" in log_path.read_text(errors="replace")  # by the worker

        download = client.get(state["download"])
        assert download.status_code == 200
        archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
        manifest_name = next(n for n in archive.namelist() if n.endswith("manifest.csv"))
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open(manifest_name), encoding="utf-8")))
        items = {item.painting_id: item for item in version.items.all()}
        assert sorted(int(r["id"]) for r in rows) == sorted(items)
        for row in rows:
            item = items[int(row["id"])]
            assert (row["label"], row["split"]) == (item.label, item.split)
            inside = next(n for n in archive.namelist() if n.endswith(row["file"]))
            assert f"/{item.split}/{item.label}/" in f"/{inside}"
            assert hashlib.sha256(archive.read(inside)).hexdigest() == row["sha256"]
