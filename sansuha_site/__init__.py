"""Sansuha Django project: the gallery site and the classifier jobs."""
