"""Classifier models (none yet).

This will hold the prediction records: which painting, which model checkpoint,
the predicted class (Chinese or Japanese) with its probability, the job state
while the Celery worker runs it, and a Grad-CAM heat map where one was made.
The worker imports ml/ (and so torch); the web process never does.
"""
