from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from funnel_reports.transforms.periods import (
    PeriodError,
    Window,
    parse_period,
    periods_between,
    resolve_period,
)


def test_month_and_quarter_boundaries():
    june = parse_period("2024-06")
    assert (june.start_date, june.end_date) == (date(2024, 6, 1), date(2024, 7, 1))
    q4 = parse_period("2024-q4")
    assert (q4.label, q4.start_date, q4.end_date) == (
        "2024-Q4",
        date(2024, 10, 1),
        date(2025, 1, 1),
    )
    assert [m.label for m in q4.month_periods()] == ["2024-10", "2024-11", "2024-12"]


def test_boundaries_are_local_midnights():
    june = parse_period("2024-06", "Asia/Shanghai")
    assert june.start == datetime(2024, 5, 31, 16, tzinfo=UTC)
    assert june.end == datetime(2024, 6, 30, 16, tzinfo=UTC)
    assert june.window_start(12) == datetime(2023, 6, 30, 16, tzinfo=UTC)


def test_the_window_is_given_like_the_period_in_local_dates():
    """W of 12 months ending with June 2024 in Shanghai: its instants are 2023-06-30T16:00Z
    and 2024-06-30T16:00Z, given as the local dates 2023-07-01 and 2024-07-01 (the day
    after its last), with the time zone, as `period` is; a quarter's W of 12 months ends
    with the quarter."""
    june = parse_period("2024-06", "Asia/Shanghai")
    assert Window(june, 12).as_dict() == {
        "start": "2023-07-01",
        "end": "2024-07-01",
        "months": 12,
        "timezone": "Asia/Shanghai",
    }
    assert june.as_dict()["end"] == Window(june, 12).as_dict()["end"]
    assert Window(parse_period("2024-Q4"), 6).as_dict() == {
        "start": "2024-07-01",
        "end": "2025-01-01",
        "months": 6,
        "timezone": "UTC",
    }


def test_shifting_periods():
    assert parse_period("2024-01").shifted(-1).label == "2023-12"
    assert parse_period("2024-Q1").shifted(-1).label == "2023-Q4"
    assert parse_period("2024-Q1").shifted(-4).label == "2023-Q1"
    assert parse_period("2024-06").shifted(1).label == "2024-07"


@pytest.mark.parametrize("label", ["2024-13", "2024-Q5", "June", "2024-6", ""])
def test_bad_labels(label):
    with pytest.raises(PeriodError):
        parse_period(label)


@pytest.mark.parametrize(
    ("label", "today", "expected"),
    [
        ("last-month", date(2024, 7, 1), "2024-06"),
        ("last-month", date(2024, 1, 15), "2023-12"),
        ("last-quarter", date(2024, 7, 1), "2024-Q2"),
        ("last-quarter", date(2024, 2, 29), "2023-Q4"),
        ("2022-Q1", date(2024, 7, 1), "2022-Q1"),
    ],
)
def test_relative_periods_for_schedules(label, today, expected):
    assert resolve_period(label, today=today).label == expected


def labels(first: str, last: str, grain: str) -> list[str]:
    return [p.label for p in periods_between(first, last, grain=grain)]


def test_backfill_periods_of_each_grain():
    assert labels("2024-11", "2025-02", "month") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    # quarters: the one holding the first month to the one holding the last
    assert labels("2024-11", "2025-02", "quarter") == ["2024-Q4", "2025-Q1"]
    # both: each quarter right after its last month
    assert labels("2024-11", "2025-01", "both") == [
        "2024-11",
        "2024-12",
        "2024-Q4",
        "2025-01",
        "2025-Q1",
    ]


def test_backfill_periods_from_quarter_labels_and_a_single_period():
    assert labels("2024-Q2", "2024-Q2", "month") == ["2024-04", "2024-05", "2024-06"]
    assert labels("2024-06", "2024-06", "month") == ["2024-06"]
    assert labels("2024-06", "2024-06", "quarter") == ["2024-Q2"]


def test_backfill_periods_refuse_a_reversed_range_and_an_unknown_grain():
    with pytest.raises(PeriodError, match="ends before"):
        periods_between("2024-06", "2024-05", grain="month")
    with pytest.raises(PeriodError, match="grain 'week'"):
        periods_between("2024-06", "2024-07", grain="week")


@pytest.mark.parametrize("label", ["9999-12", "1899-12", "3000-Q1"])
def test_a_period_outside_1900_2999_is_refused(label):
    with pytest.raises(PeriodError, match=r"the year must lie in 1900-2999"):
        parse_period(label)
