"""The main pages render, in debug and in production settings, and serving them never imports torch.

Each check runs in a fresh interpreter: other tests (tests/ml) import torch into this process, and
django.setup() can only run once per process. The child has its own SQLite database and media folder.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs in the child interpreter; prints one JSON line with what the test checks.
CHILD = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings
from django.test.utils import setup_test_environment

setup_test_environment()
call_command("migrate", verbosity=0)

if not settings.DEBUG:
    # Production serves hashed files from collectstatic's manifest: run the deploy step first.
    override_settings(STATIC_ROOT=sys.argv[1]).enable()
    call_command("collectstatic", interactive=False, verbosity=0)

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from classifier.models import ModelVersion, Prediction
from gallery.uploads import save_painting
import io
from PIL import Image

buf = io.BytesIO()
Image.new("RGB", (200, 150), (120, 140, 110)).save(buf, format="JPEG")
user = User.objects.create_user("visitor", password="unused-in-this-check")
version = ModelVersion(name="v1", arch="resnet18", class_names=["cn", "jp"])
version.checkpoint.save("v1.pt", ContentFile(b"not a checkpoint"), save=False)
version.save()
version.activate()
painting, _ = save_painting(buf.getvalue(), "early_spring.jpg", user)
Prediction.objects.filter(painting=painting).update(
    status="done", label="cn", confidence=0.8, probabilities={"cn": 0.8, "jp": 0.2}
)

client = Client()
client.force_login(user)
pages = {}
detail = painting.get_absolute_url()
for url in ["/", detail, detail + "status/", "/upload/", "/api/paintings/"]:
    response = client.get(url)
    pages[url] = {"status": response.status_code, "body": response.content.decode()}
print(json.dumps({
    "detail": detail,
    "pages": pages,
    "loaded": sorted(m for m in ("torch", "torchvision", "ml.inference", "ml.models") if m in sys.modules),
}))
"""


def get_pages(tmp_path, **env: str) -> dict:
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sansuha_site.settings",
        "PYTHONPATH": str(REPO_ROOT),
        **env,
        # A throwaway database and media folder of its own: the child is not inside pytest-django's test DB.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}",
        "SANSUHA_MEDIA_ROOT": str(tmp_path / "media"),
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "static")],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_DEBUG": "true"},
        {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "test-only-secret"},
    ],
    ids=["debug", "production"],
)
def test_the_main_pages_render_without_torch(env: dict[str, str], tmp_path) -> None:
    result = get_pages(tmp_path, **env)
    pages, detail = result["pages"], result["detail"]

    assert {url: page["status"] for url, page in pages.items()} == dict.fromkeys(pages, 200)
    assert "Sansuha" in pages["/"]["body"] and "early spring" in pages["/"]["body"]
    assert 'class="bar-fill"' in pages[detail]["body"]
    assert json.loads(pages[detail + "status/"]["body"])["status"] == "done"
    assert 'name="files"' in pages["/upload/"]["body"]
    assert json.loads(pages["/api/paintings/"]["body"])["count"] == 1
    assert result["loaded"] == []
