"""How numbers read in the reports, one kind of figure at a time, from literal values."""

from __future__ import annotations

import math

import pytest

from funnel_reports.report_templates import formatting as fmt


@pytest.mark.parametrize(
    ("value", "lang", "expected"),
    [
        (950, "en", "950"),
        (2_700, "en", "3k"),  # thousands carry no decimals
        (1_091_000, "en", "1.09M"),
        (2_450_000_000, "en", "2.45B"),
        (-1_500_000, "en", "-1.50M"),  # the sign stays, the unit is chosen by size
        (9_999, "zh", "9,999"),
        (10_000, "zh", "1.0万"),
        (1_091_000, "zh", "109.1万"),
        (120_000_000, "zh", "1.2亿"),
    ],
)
def test_compact_amounts_in_each_language(value, lang, expected):
    assert fmt.compact_amount(value, lang) == expected


@pytest.mark.parametrize(
    "formatter",
    [fmt.count, fmt.amount, fmt.compact_amount, fmt.percent, fmt.points, fmt.days, fmt.score],
)
def test_a_missing_figure_reads_as_a_dash_whatever_its_kind(formatter):
    assert formatter(None) == fmt.NOT_AVAILABLE
    assert formatter(math.nan) == fmt.NOT_AVAILABLE


def test_each_kind_of_figure_and_of_change():
    assert fmt.count(1234.4) == "1,234"
    assert fmt.amount(1_091_000.49) == "1,091,000"
    assert fmt.percent(0.3449) == "34%"
    assert fmt.percent(0.3449, 1) == "34.5%"
    assert fmt.points(0.042) == "+4.2 pp"
    assert fmt.points(-0.1) == "-10.0 pp"
    assert fmt.days(12.25) == "12.2"  # one decimal, half to even as Python rounds 12.25
    assert fmt.score(0.18349) == "0.183"
    assert fmt.figure(0.25, "rate") == "25%"
    assert fmt.figure_change(0.25, "rate") == "+25.0 pp"  # a rate's change is in points
    assert fmt.figure(3, "count") == "3"
    assert fmt.figure_change(-3, "count") == "-3"


def test_free_text_is_clipped_to_one_readable_line():
    assert fmt.clip(None) == fmt.NOT_AVAILABLE
    assert fmt.clip("  waiting\non   legal  ") == "waiting on legal"
    clipped = fmt.clip("x" * 500, limit=10)
    assert clipped == "x" * 9 + "…" and len(clipped) == 10
    assert fmt.clip("exactly ten", limit=11) == "exactly ten"


def test_the_labels_of_both_languages_have_the_same_keys():
    assert set(fmt.labels("en")) == set(fmt.labels("zh"))


@pytest.mark.parametrize(
    ("start", "end", "lang", "expected"),
    [
        ("2026-09-01", "2026-10-01", "en", "1–30 Sep 2026"),  # the end is the day after
        ("2024-02-01", "2024-03-01", "en", "1–29 Feb 2024"),  # a leap year
        ("2026-07-01", "2026-10-01", "en", "1 Jul – 30 Sep 2026"),
        ("2026-12-01", "2027-01-01", "en", "1–31 Dec 2026"),  # the next year's first day
        ("2026-09-01", "2026-10-01", "zh", "2026年9月1日至30日"),
        ("2026-07-01", "2026-10-01", "zh", "2026年7月1日至9月30日"),
    ],
)
def test_periods_read_as_people_write_them(start, end, lang, expected):
    assert fmt.period_text(start, end, lang) == expected
