"""The home page renders, and serving it never imports torch.

Each check runs in a fresh interpreter: other tests (tests/ml) import torch
into this process, and django.setup() can only run once per process.
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
from django.test.utils import setup_test_environment
setup_test_environment()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
response = Client().get("/")
print(json.dumps({
    "status": response.status_code,
    "body": response.content.decode(),
    "torch_loaded": "torch" in sys.modules,
}))
"""


def get_home(tmp_path, **env: str) -> dict:
    child_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "sansuha_site.settings",
        "PYTHONPATH": str(REPO_ROOT),
        **env,
        # A throwaway database of its own: the child process is not inside pytest-django's test DB.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'child.sqlite3'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO_ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
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
def test_home_page_renders_without_torch(env: dict[str, str], tmp_path) -> None:
    page = get_home(tmp_path, **env)

    assert page["status"] == 200
    assert "Sansuha" in page["body"]
    assert "gallery coming soon" in page["body"]
    assert page["torch_loaded"] is False
