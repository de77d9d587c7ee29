"""A training whose process is killed does not stay "running" for ever: while it lives it refreshes
its heartbeat (a thread of its own), and the sweep fails a run whose heartbeat has gone silent."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from classifier.models import TrainingRun
from classifier.services import Heartbeat
from classifier.tasks import requeue_pending


def make_run(state: str, heartbeat_age: timedelta | None, started_age: timedelta = timedelta(hours=1)):
    now = timezone.now()
    return TrainingRun.objects.create(
        state=state,
        options={"arch": "resnet18", "epochs": 10},
        started=now - started_age,
        heartbeat=None if heartbeat_age is None else now - heartbeat_age,
    )


@pytest.mark.django_db
def test_the_sweep_fails_a_running_training_whose_heartbeat_went_silent(settings):
    silent = make_run("running", settings.TRAINING_STALE_AFTER + timedelta(minutes=1))
    never_beat = make_run("running", None)  # e.g. killed before its first beat
    alive = make_run("running", timedelta(seconds=5))
    queued = make_run("queued", None)
    done = make_run("done", timedelta(hours=2))

    requeue_pending()

    for run in (silent, never_beat):
        run.refresh_from_db()
        assert run.state == "failed" and run.finished is not None
        assert "stopped giving signs of life" in run.error and "Start the training again" in run.error
    for run, state in ((alive, "running"), (queued, "queued"), (done, "done")):
        run.refresh_from_db()
        assert run.state == state and run.error == ""


@pytest.mark.django_db
def test_a_just_started_run_without_a_heartbeat_yet_is_left_alone():
    run = make_run("running", None, started_age=timedelta(seconds=10))
    requeue_pending()
    run.refresh_from_db()
    assert run.state == "running"


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes through its own connection
def test_the_heartbeat_thread_refreshes_a_running_run_until_the_block_ends():
    run = make_run("running", timedelta(hours=1))
    with Heartbeat(run.pk, interval=0.05):
        time.sleep(0.4)
        run.refresh_from_db()
        first = run.heartbeat
        assert timezone.now() - first < timedelta(seconds=2)
        time.sleep(0.3)
        run.refresh_from_db()
        assert run.heartbeat > first, "it keeps beating while the block runs"
    ended = TrainingRun.objects.get(pk=run.pk).heartbeat
    time.sleep(0.3)
    assert TrainingRun.objects.get(pk=run.pk).heartbeat == ended, "it stops with the block"


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_never_revives_a_run_that_ended():
    run = make_run("failed", timedelta(hours=1))
    before = run.heartbeat
    with Heartbeat(run.pk, interval=0.05):
        time.sleep(0.2)
    run.refresh_from_db()
    assert run.heartbeat == before and run.state == "failed"


@pytest.mark.django_db(transaction=True)  # the handler closes the process's connections, as it must
def test_a_worker_starting_again_fails_at_once_the_training_it_was_running():
    """worker_ready: a training running under this worker's node name was cut off by its restart;
    one under another worker's name, or with a live heartbeat elsewhere, is not its business."""
    from types import SimpleNamespace

    from classifier.tasks import take_back_what_this_worker_was_running

    mine = make_run("running", timedelta(seconds=5))
    theirs = make_run("running", timedelta(seconds=5))
    TrainingRun.objects.filter(pk=mine.pk).update(worker="trainer@box")
    TrainingRun.objects.filter(pk=theirs.pk).update(worker="trainer@other-box")

    take_back_what_this_worker_was_running(sender=SimpleNamespace(hostname="trainer@box"))

    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.state == "failed" and "Start the training again" in mine.error
    assert theirs.state == "running"
