"""How old the data is: the export's latest record ("data as of"), and the rule that refuses a
report of a period the export does not reach.

An export taken on 30 September knows nothing of November: a November report of it would show
"won 0" as if nobody had won anything. A period that ends more than `stale_after_days` after
the export's latest record is refused (StaleExportError) unless the run allows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.periods import Period

# the columns that stamp something that happened: not expected or due dates, which lie ahead
RECORD_TIMES = {
    OPPORTUNITIES: ("created_at", "stage_entered_at", "closed_at"),
    STAGE_HISTORY: ("entered_at",),
    FOLLOWUPS: ("occurred_at",),
}
SECONDS_PER_DAY = 86_400


class StaleExportError(Exception):
    """A report of a period the export does not reach; the message has both dates."""


def data_as_of(tables: Mapping[str, pl.DataFrame]) -> datetime | None:
    """The newest timestamp of a record in any canonical table (None for empty tables)."""
    newest = [
        tables[table].select(pl.max_horizontal(pl.col(list(columns)).max())).item()
        for table, columns in RECORD_TIMES.items()
        if table in tables and tables[table].height
    ]
    known = [t for t in newest if t is not None]
    return max(known) if known else None


def freshness(period: Period, as_of: datetime | None, *, timezone: str) -> dict[str, Any]:
    """metrics.json `data_as_of`: the latest record (UTC), its local date, and how many days
    before the period's end it lies (negative when the export reaches past the period)."""
    if as_of is None:
        return {"at": None, "date": None, "days_before_period_end": None}
    return {
        "at": as_of.isoformat(),
        "date": as_of.astimezone(ZoneInfo(timezone)).date().isoformat(),
        "days_before_period_end": (period.end - as_of).total_seconds() / SECONDS_PER_DAY,
    }


def check_fresh(
    period: Period, as_of: datetime | None, *, stale_after_days: int, timezone: str
) -> None:
    """Refuse a report of a period that ends more than `stale_after_days` after the export's
    latest record."""
    if as_of is None:
        return
    age = (period.end - as_of).total_seconds() / SECONDS_PER_DAY
    if age > stale_after_days:
        latest = as_of.astimezone(ZoneInfo(timezone)).date()
        last_day = period.end_date - timedelta(days=1)
        raise StaleExportError(
            f"the export's latest record is from {latest.isoformat()}, but {period.label} runs "
            f"to {last_day.isoformat()}, {age:.0f} days later (more than stale_after_days = "
            f"{stale_after_days}): export again, or run with --allow-stale to report it anyway"
        )
