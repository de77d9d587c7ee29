"""The Sansuha Django project: settings, URLs and Celery wiring, nothing else."""

from .celery import app as celery_app

__all__ = ("celery_app",)
