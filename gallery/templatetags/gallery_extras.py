"""Small template filters for showing predictions."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    """0.934 -> "93%"; an empty value shows as a dash."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def css_percent(value: float | None) -> str:
    """0.934 -> "93.4", clamped to 0..100, for a bar's ``width``. A plain string on purpose:
    numbers rendered by the template are localized, and a decimal comma would break the CSS."""
    try:
        number = float(value) * 100
    except (TypeError, ValueError):
        return "0"
    return f"{min(100.0, max(0.0, number)):.1f}"


@register.filter
def short_hash(value: str, length: int = 12) -> str:
    return (value or "")[: int(length)]


@register.filter
def is_curator(user) -> bool:
    """``{% if user|is_curator %}``: may this user curate? Asked once per request (the answer is kept on
    the user object), however many times the templates ask."""
    from gallery.permissions import is_curator as check

    cached = getattr(user, "_sansuha_is_curator", None)
    if cached is None:
        cached = check(user)
        user._sansuha_is_curator = cached
    return cached


@register.filter
def ranked(probabilities: dict | None) -> list[tuple[str, float]]:
    """A prediction's ``{class: p}``, most probable first."""
    return sorted((probabilities or {}).items(), key=lambda kv: -kv[1])
