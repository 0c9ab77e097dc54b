"""Report periods: a month (`2024-06`) or a quarter (`2024-Q2`) as a half-open interval.

Boundaries are local midnights in the configured time zone, held as UTC datetimes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)


class PeriodError(ValueError):
    """A period label that is neither a month (2024-06) nor a quarter (2024-Q2)."""


def add_months(d: date, months: int) -> date:
    """The first day of the month `months` after the month of `d` (d must be a first day)."""
    index = d.year * 12 + d.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """A report period [start_date, end_date) in local dates, with its UTC instants."""

    grain: str  # "month" | "quarter"
    start_date: date
    end_date: date
    timezone: str = "UTC"

    @property
    def label(self) -> str:
        if self.grain == "month":
            return f"{self.start_date.year}-{self.start_date.month:02d}"
        return f"{self.start_date.year}-Q{(self.start_date.month - 1) // 3 + 1}"

    @property
    def months(self) -> int:
        return 1 if self.grain == "month" else 3

    @property
    def start(self) -> datetime:
        return local_midnight_utc(self.start_date, self.timezone)

    @property
    def end(self) -> datetime:
        """`as_of`: the first instant after the period."""
        return local_midnight_utc(self.end_date, self.timezone)

    def shifted(self, periods: int) -> Period:
        """The period `periods` steps later (negative for earlier) of the same grain."""
        start = add_months(self.start_date, periods * self.months)
        return Period(self.grain, start, add_months(start, self.months), self.timezone)

    def window_start(self, months: int) -> datetime:
        """Start of the trailing window W = [end - months, end)."""
        return local_midnight_utc(add_months(self.end_date, -months), self.timezone)

    def month_periods(self) -> list[Period]:
        """The calendar months inside this period, in order."""
        return [
            Period(
                "month",
                add_months(self.start_date, i),
                add_months(self.start_date, i + 1),
                self.timezone,
            )
            for i in range(self.months)
        ]

    def as_dict(self) -> dict[str, str]:
        return {
            "grain": self.grain,
            "label": self.label,
            "start": self.start_date.isoformat(),
            "end": self.end_date.isoformat(),
            "as_of": self.end_date.isoformat(),
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class Window:
    """The instants a period's figures are measured at, built once from the period: the
    period P = [start, as_of), the trailing window W = [window_start, as_of) of `months`
    months, and the next period (what the forecast is for)."""

    period: Period
    months: int

    @property
    def start(self) -> datetime:
        return self.period.start

    @property
    def as_of(self) -> datetime:
        return self.period.end

    @property
    def window_start(self) -> datetime:
        return self.period.window_start(self.months)

    @property
    def next_period(self) -> Period:
        return self.period.shifted(1)

    def shifted(self, periods: int) -> Window:
        """The window of the period `periods` steps later (negative for earlier)."""
        return Window(self.period.shifted(periods), self.months)

    def month_windows(self) -> list[Window]:
        """The windows of the calendar months inside the period, in order."""
        return [Window(month, self.months) for month in self.period.month_periods()]

    def as_dict(self) -> dict[str, Any]:
        """metrics.json `window`: W as `period` gives a period, its first local date and the
        local date after its last (W ends with the period), its length in months and the
        time zone its dates are in."""
        return {
            "start": add_months(self.period.end_date, -self.months).isoformat(),
            "end": self.period.end_date.isoformat(),
            "months": self.months,
            "timezone": self.period.timezone,
        }


def local_midnight_utc(d: date, timezone: str) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


FIRST_YEAR, LAST_YEAR = 1900, 2999  # periods a funnel report can be about


def parse_period(label: str, timezone: str = "UTC") -> Period:
    """`2024-06` is a month, `2024-Q2` a quarter; anything else is a PeriodError."""
    text = label.strip()
    year_match = _MONTH.match(text) or _QUARTER.match(text)
    if year_match and not FIRST_YEAR <= int(year_match.group(1)) <= LAST_YEAR:
        raise PeriodError(f"period {label!r}: the year must lie in {FIRST_YEAR}-{LAST_YEAR}")
    if m := _MONTH.match(text):
        year, month = int(m.group(1)), int(m.group(2))
        if not 1 <= month <= 12:
            raise PeriodError(f"period {label!r}: month must be 01-12")
        start = date(year, month, 1)
        return Period("month", start, add_months(start, 1), timezone)
    if m := _QUARTER.match(text):
        start = date(int(m.group(1)), (int(m.group(2)) - 1) * 3 + 1, 1)
        return Period("quarter", start, add_months(start, 3), timezone)
    raise PeriodError(
        f"period {label!r}: expected a month like 2024-06, a quarter like 2024-Q2, "
        "last-month or last-quarter"
    )


RELATIVE_PERIODS = ("last-month", "last-quarter")


def resolve_period(label: str, *, today: date, timezone: str = "UTC") -> Period:
    """A period label, or `last-month` / `last-quarter`: the last full one before `today`.

    Scheduled runs use the relative forms: the run on 1 July reports June (or Q2).
    """
    if label == "last-month":
        start = add_months(date(today.year, today.month, 1), -1)
        return Period("month", start, add_months(start, 1), timezone)
    if label == "last-quarter":
        this_quarter = quarter_of(today)
        start = add_months(this_quarter, -3)
        return Period("quarter", start, this_quarter, timezone)
    return parse_period(label, timezone)


GRAINS = ("month", "quarter", "both")


def quarter_of(d: date) -> date:
    """The first day of the quarter holding `d`."""
    return date(d.year, (d.month - 1) // 3 * 3 + 1, 1)


def periods_between(first: str, last: str, *, grain: str, timezone: str = "UTC") -> list[Period]:
    """Every period of `grain` from the one holding the start of `first` to the one holding the
    last month of `last` (each a month or a quarter label), oldest first; with `both`, each
    quarter follows its last month."""
    if grain not in GRAINS:
        raise PeriodError(f"grain {grain!r}: expected one of {', '.join(GRAINS)}")
    start = parse_period(first, timezone)
    end = parse_period(last, timezone)
    if end.end_date <= start.start_date:
        raise PeriodError(f"periods {first} to {last}: {last} ends before {first} starts")
    months: list[Period] = []
    month = Period("month", start.start_date, add_months(start.start_date, 1), timezone)
    while month.start_date < end.end_date:
        months.append(month)
        month = month.shifted(1)
    quarters = {
        quarter_of(m.start_date): Period(
            "quarter", quarter_of(m.start_date), add_months(quarter_of(m.start_date), 3), timezone
        )
        for m in months
    }
    chosen = [
        *(months if grain != "quarter" else []),
        *(quarters.values() if grain != "month" else []),
    ]
    # a quarter sorts after the months it holds: by end, then months first
    return sorted(chosen, key=lambda p: (p.end_date, p.months, p.start_date))
