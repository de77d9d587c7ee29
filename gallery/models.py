"""Gallery models (none yet).

This will hold the paintings shown on the site: the uploaded image (under
MEDIA_ROOT), title, artist and period where known, and the curated label
(Chinese or Japanese) when there is one.
"""
