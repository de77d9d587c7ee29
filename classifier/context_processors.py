"""Every page knows whether a model is active: without one, uploads wait, and pages say how to fix it."""

from classifier.models import ModelVersion


def active_model(request) -> dict:
    return {"active_model": ModelVersion.objects.active()}
