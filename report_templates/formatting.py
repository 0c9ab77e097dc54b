"""How numbers read in the reports: one function per kind of figure, used as Jinja filters."""

from __future__ import annotations

import math
import tomllib
from datetime import date, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path

# the templates, the CSS and labels.toml ship inside this package (a real folder on disk:
# WeasyPrint reads from it and the URL fetcher allows nothing outside it)
TEMPLATES_DIR = Path(str(files("funnel_reports.report_templates")))
NOT_AVAILABLE = "–"


@cache
def labels(lang: str) -> dict[str, str]:
    """Report text in `lang` (en or zh), from report_templates/labels.toml."""
    document = tomllib.loads((TEMPLATES_DIR / "labels.toml").read_text(encoding="utf-8"))
    return document[lang]


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value: int | float | None) -> str:
    return NOT_AVAILABLE if _missing(value) else f"{value:,.0f}"


def amount(value: float | None) -> str:
    """Full amount with thousands separators: 1,091,000."""
    return NOT_AVAILABLE if _missing(value) else f"{value:,.0f}"


def compact_amount(value: float | None, lang: str = "en") -> str:
    """Short amount for headlines: 1.09M / 2.7k, or 109.1万 / 1.2亿 in Chinese."""
    if _missing(value):
        return NOT_AVAILABLE
    size = abs(value)
    if lang == "zh":
        for unit, scale in (("亿", 1e8), ("万", 1e4)):
            if size >= scale:
                return f"{value / scale:,.1f}{unit}"
        return f"{value:,.0f}"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if size >= scale:
            return f"{value / scale:,.2f}{unit}" if unit != "k" else f"{value / scale:,.0f}k"
    return f"{value:,.0f}"


def percent(value: float | None, digits: int = 0) -> str:
    return NOT_AVAILABLE if _missing(value) else f"{value * 100:.{digits}f}%"


def points(value: float | None) -> str:
    """A change of a rate, in percentage points: +4.2 pp."""
    return NOT_AVAILABLE if _missing(value) else f"{value * 100:+.1f} pp"


def days(value: float | None) -> str:
    return NOT_AVAILABLE if _missing(value) else f"{value:.1f}"


def score(value: float | None) -> str:
    """A score between 0 and 1 with three decimals (Brier)."""
    return NOT_AVAILABLE if _missing(value) else f"{value:.3f}"


TEXT_LIMIT = 120


def clip(value: str | None, limit: int = TEXT_LIMIT) -> str:
    """Free text from the input cut to a readable length (a cell of megabytes stays short)."""
    if value is None:
        return NOT_AVAILABLE
    text = " ".join(value[: limit * 4].split())  # line breaks and runs of spaces read as one
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# the kinds of headline figure, and how a value and a change of each read
FIGURE_FORMATS = {"count": count, "amount": amount, "rate": percent, "days": days}
CHANGE_FORMATS = {"count": amount, "amount": amount, "rate": points, "days": days}


def figure(value: float | None, kind: str) -> str:
    """A headline figure of `kind` (count, amount, rate, days)."""
    return FIGURE_FORMATS[kind](value)


def figure_change(value: float | None, kind: str) -> str:
    """The change of a headline figure of `kind`: rates in percentage points."""
    return CHANGE_FORMATS[kind](value)


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def period_text(start: str, end: str, lang: str = "en") -> str:
    """A period [start, end) as people write it, its last day included: "1–30 Sep 2026" or
    "1 Jul – 30 Sep 2026"; in Chinese "2026年9月1日至30日" or "2026年7月1日至9月30日"."""
    first, last = date.fromisoformat(start), date.fromisoformat(end) - timedelta(days=1)
    if lang == "zh":
        tail = f"{last.day}日" if last.month == first.month else f"{last.month}月{last.day}日"
        return f"{first.year}年{first.month}月{first.day}日至{tail}"
    if first.month == last.month:
        return f"{first.day}–{last.day} {MONTHS_EN[last.month - 1]} {last.year}"
    return (
        f"{first.day} {MONTHS_EN[first.month - 1]} – "
        f"{last.day} {MONTHS_EN[last.month - 1]} {last.year}"
    )
