"""Every text of the site has its Korean translation: an English string in a Korean page is a bug.
(Reads locale/ko/LC_MESSAGES/django.po; `manage.py makemessages -l ko` refreshes it.)"""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

PO = Path(__file__).resolve().parents[2] / "locale" / "ko" / "LC_MESSAGES" / "django.po"


def entries(text: str) -> list[dict]:
    """Each entry's msgid, msgstr (joined over continued lines) and flags."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        flags: set[str] = set()
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                flags |= {f.strip() for f in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif m := re.match(r'^(msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line):
                key = m.group(1)
                fields[key] = m.group(2)
            elif line.startswith('"') and key:
                fields[key] += line[1:-1]
        if "msgid" in fields:
            out.append({**fields, "flags": flags})
    return out


def test_every_string_has_a_korean_translation_that_is_not_fuzzy():
    found = [e for e in entries(PO.read_text(encoding="utf-8")) if e["msgid"]]  # "" is the header
    assert len(found) > 300
    untranslated = [
        e["msgid"]
        for e in found
        if not any(v for k, v in e.items() if k.startswith("msgstr")) or "fuzzy" in e["flags"]
    ]
    assert untranslated == []


def test_the_compiled_catalogue_matches_its_source():
    """django.mo is what Django reads: `manage.py compilemessages -l ko` after editing the .po."""
    with PO.with_suffix(".mo").open("rb") as f:
        catalogue = gettext.GNUTranslations(f)
    unquote = lambda s: ast.literal_eval(f'"{s}"')  # noqa: E731 - PO strings use C escapes
    stale = [
        e["msgid"]
        for e in entries(PO.read_text(encoding="utf-8"))
        if e["msgid"] and "msgstr" in e and catalogue.gettext(unquote(e["msgid"])) != unquote(e["msgstr"])
    ]
    assert stale == []
