"""Sansuha's training, evaluation and inference engine.

Plain PyTorch: this package never imports Django. It runs on its own
(``python -m ml ...``), under ``manage.py train`` and inside the Celery worker.

Modules, one job each:

- ``data``       finding images in the study's layout, decoding them safely, the in-memory cache
- ``split``      stratified, group-aware, duplicate-aware train/val/test splitting
- ``transforms`` the ``study`` preset (the original paper) and the ``robust`` default
- ``models``     ResNet-18 / EfficientNet-Lite0, offline weights, checkpoints
- ``train``      training loop as the study, best-validation checkpoint
- ``evaluate``   test-split metrics, the shortcut check, every report artifact
- ``explain``    Grad-CAM
- ``plots``      every figure
- ``inference``  the ``Predictor`` used by the worker and ``python -m ml predict``
- ``baseline``   colour histogram + logistic regression
- ``bench``      the benchmark behind BENCHMARKS.md
"""
