"""The typed environment helpers in sansuha_site.settings."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from sansuha_site.settings import env_bool, env_int, env_list, env_str


def test_env_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANSUHA_TEST_STR", "  value ")
    assert env_str("SANSUHA_TEST_STR") == "value"

    monkeypatch.delenv("SANSUHA_TEST_STR")
    assert env_str("SANSUHA_TEST_STR", "fallback") == "fallback"
    with pytest.raises(ImproperlyConfigured, match="SANSUHA_TEST_STR"):
        env_str("SANSUHA_TEST_STR")

    monkeypatch.setenv("SANSUHA_TEST_STR", "")
    with pytest.raises(ImproperlyConfigured):
        env_str("SANSUHA_TEST_STR")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_env_bool_accepts(monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("SANSUHA_TEST_BOOL", raw)
    assert env_bool("SANSUHA_TEST_BOOL", default=not expected) is expected


def test_env_bool_default_and_rejects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANSUHA_TEST_BOOL", raising=False)
    assert env_bool("SANSUHA_TEST_BOOL", default=True) is True

    monkeypatch.setenv("SANSUHA_TEST_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SANSUHA_TEST_BOOL"):
        env_bool("SANSUHA_TEST_BOOL", default=False)


def test_env_int(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANSUHA_TEST_INT", raising=False)
    assert env_int("SANSUHA_TEST_INT", 5432) == 5432

    monkeypatch.setenv("SANSUHA_TEST_INT", "6543")
    assert env_int("SANSUHA_TEST_INT", 5432) == 6543

    monkeypatch.setenv("SANSUHA_TEST_INT", "54x")
    with pytest.raises(ImproperlyConfigured, match="SANSUHA_TEST_INT"):
        env_int("SANSUHA_TEST_INT", 5432)


def test_env_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANSUHA_TEST_LIST", "a.example, b.example,,")
    assert env_list("SANSUHA_TEST_LIST", []) == ["a.example", "b.example"]

    monkeypatch.delenv("SANSUHA_TEST_LIST")
    assert env_list("SANSUHA_TEST_LIST", ["localhost"]) == ["localhost"]


def test_production_requires_secret_key() -> None:
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", "import sansuha_site.settings"],
        cwd=repo_root,
        env={"PATH": "", "DJANGO_DEBUG": "false", "PYTHONPATH": str(repo_root)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
