"""classifier.tasks.requeue_pending (the sweep beat runs every minute) and Prediction.objects.stale:
an upload made while Redis is down is classified later, and so is a prediction whose worker died.

Real Redis: the messages are counted in the queue itself, in a Redis database of this file's own.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from classifier.models import Prediction, Status
from classifier.tasks import requeue_pending
from gallery.uploads import save_painting

from .factory import image_bytes, make_model_version, make_painting, make_prediction

pytestmark = pytest.mark.django_db

SWEEP_REDIS_DB = 13  # flushed by these tests; the test broker's own database (make test: 15) is left alone
UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
QUEUE = "celery"  # the default queue: its Redis key holds the waiting messages


def redis_url(db: int) -> str:
    """The test broker's Redis server (CELERY_BROKER_URL) with database ``db``."""
    parts = urlsplit(settings.CELERY_BROKER_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Send tasks to ``url`` for the duration.

    ``broker_write_url``, not ``broker_url``: Celery reads the CELERY_BROKER_URL environment variable
    (set by `make test`) before any setting. And it keeps the connection and producer pools it built
    from the first URL it saw, so they are let go on the way in and out (as Celery does after a
    fork); kombu keeps one pool per URL, reused the next time."""
    from sansuha_site.celery import app

    def drop_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.get("broker_write_url")
    app.conf.broker_write_url = url
    drop_pools()
    try:
        yield
    finally:
        app.conf.broker_write_url = previous
        drop_pools()


@contextmanager
def redis_queue(db: int) -> Iterator[redis.Redis]:
    """A flushed Redis database that tasks are sent to for the duration."""
    url = redis_url(db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        with celery_broker(url):
            yield client
    finally:
        client.flushdb()
        client.close()


def queued_task_args(client: redis.Redis) -> list[tuple[str, list]]:
    """(task name, positional args) of every message waiting in the queue."""
    out = []
    for raw in client.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


@pytest.fixture
def queue() -> Iterator[redis.Redis]:
    with redis_queue(SWEEP_REDIS_DB) as client:
        yield client


def upload_while_broker_is_down(django_capture_on_commit_callbacks, seed: int) -> Prediction:
    with celery_broker(UNREACHABLE), django_capture_on_commit_callbacks(execute=True) as callbacks:
        painting, created = save_painting(image_bytes(seed=seed), f"upload-{seed}.jpg")
    assert created and len(callbacks) == 1  # the enqueue after commit really ran, and failed
    return Prediction.objects.get(painting=painting)


def test_an_upload_while_the_broker_is_down_stays_pending_and_unqueued(
    queue, django_capture_on_commit_callbacks
):
    make_model_version("v1")
    prediction = upload_while_broker_is_down(django_capture_on_commit_callbacks, seed=31)
    assert prediction.status == Status.PENDING and prediction.queued_at is None
    assert queue.llen(QUEUE) == 0


def test_the_sweep_queues_an_upload_the_broker_missed(queue, django_capture_on_commit_callbacks):
    make_model_version("v1")
    prediction = upload_while_broker_is_down(django_capture_on_commit_callbacks, seed=32)

    assert requeue_pending() == 1

    prediction.refresh_from_db()
    assert prediction.status == Status.PENDING and prediction.queued_at is not None
    assert queued_task_args(queue) == [("classifier.tasks.classify_painting", [prediction.pk])]


def test_the_sweep_leaves_a_recently_queued_prediction_alone(queue):
    version = make_model_version("v1")
    queued_at = timezone.now() - timedelta(seconds=5)
    make_prediction(make_painting(), version, status=Status.PENDING, label="", queued_at=queued_at)

    assert requeue_pending() == 0
    assert queue.llen(QUEUE) == 0


def test_the_sweep_queues_again_a_prediction_queued_long_ago(queue, settings):
    version = make_model_version("v1")
    lost = make_prediction(
        make_painting(),
        version,
        status=Status.PENDING,
        label="",
        queued_at=timezone.now() - settings.CLASSIFY_STALE_AFTER - timedelta(minutes=1),
    )

    assert requeue_pending() == 1
    assert queued_task_args(queue) == [("classifier.tasks.classify_painting", [lost.pk])]
    lost.refresh_from_db()
    assert timezone.now() - lost.queued_at < timedelta(minutes=1)


def test_a_running_prediction_older_than_the_stale_limit_is_picked_up(queue, settings):
    version = make_model_version("v1")
    now = timezone.now()
    abandoned = make_prediction(
        make_painting(),
        version,
        status=Status.RUNNING,
        label="",
        started_at=now - settings.CLASSIFY_STALE_AFTER - timedelta(minutes=1),
    )
    make_prediction(make_painting(), version, status=Status.RUNNING, label="", started_at=now)
    make_prediction(
        make_painting(), version, status=Status.DONE, started_at=now - 2 * settings.CLASSIFY_STALE_AFTER
    )

    stale = Prediction.objects.stale(settings.CLASSIFY_STALE_AFTER)
    assert list(stale.values_list("pk", flat=True)) == [abandoned.pk]

    assert requeue_pending() == 1
    assert queued_task_args(queue) == [("classifier.tasks.classify_painting", [abandoned.pk])]
