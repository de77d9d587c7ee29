import pytest


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    """Every site test writes uploads, thumbnails and overlays into its own temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
