"""Celery wiring: CELERY_* settings, tasks autodiscovered from the apps.

Only the worker imports torch, and only inside the task code that needs it (lazily, in the child
process, so CUDA is never initialised before the fork).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sansuha_site.settings")

app = Celery("sansuha_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
