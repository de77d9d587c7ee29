"""Classifier: prediction jobs run by the Celery worker with the ml package."""
