"""Celery tasks of the gallery: thin shells over gallery.datasets (no torch here)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

log = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # The database restarting is retried; anything else fails the export with its reason on the row.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=4 * 3600,
    time_limit=4 * 3600 + 60,
)
def export_dataset(export_id: int) -> int:
    """Build one dataset export's zip; returns the number of files written. Safe to run twice: a
    finished export whose file exists is left alone."""
    from gallery.datasets import export

    try:
        return export(export_id).done_items
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        # export() already wrote the reason on the row for the page to show.
        log.exception("dataset export %s failed", export_id)
        return 0
