"""Classifier views (none yet): submitting a painting and reading its prediction."""
