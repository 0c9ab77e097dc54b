"""Comparisons (DESIGN §5 `comparison`, `trend`, `months`): the headline figures of other
periods, each as of its own end."""

from __future__ import annotations

from typing import Any

from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.kpis import change, kpis
from funnel_reports.transforms.periods import Period

TREND_PERIODS = 6
TREND_FIGURES = ("open_amount", "won_count", "won_amount", "lost_count", "win_rate")


def period_headline(
    states_at: DealStatesAt, *, period: Period, window_months: int
) -> dict[str, Any]:
    """`period` and `kpis` of a period, from the deal states at its own end."""
    return {
        "period": period.as_dict(),
        "kpis": kpis(
            states_at.states(period.end),
            period_start=period.start,
            as_of=period.end,
            window_start=period.window_start(window_months),
        ),
    }


def comparison(
    states_at: DealStatesAt, current: dict[str, Any], *, period: Period, window_months: int
) -> dict[str, Any]:
    """The previous period and the same period a year earlier, with the change of each
    headline figure against `current` (this period's kpis)."""
    result = {}
    for key, other in (
        ("previous", period.shifted(-1)),
        ("year_ago", period.shifted(-12 // period.months)),
    ):
        headline = period_headline(states_at, period=other, window_months=window_months)
        result[key] = {**headline, "change": change(current, headline["kpis"])}
    return result


def trend(
    states_at: DealStatesAt, *, period: Period, window_months: int, periods: int = TREND_PERIODS
) -> list[dict[str, Any]]:
    """Won count and amount, lost count, win rate and open amount of the last `periods`
    periods of this grain, this one last."""
    rows = []
    for back in range(periods - 1, -1, -1):
        past = period.shifted(-back)
        figures = period_headline(states_at, period=past, window_months=window_months)["kpis"]
        rows.append({"label": past.label, **{k: figures[k] for k in TREND_FIGURES}})
    return rows


def months(states_at: DealStatesAt, *, period: Period, window_months: int) -> list[dict[str, Any]]:
    """The headline figures of each calendar month inside a quarter, side by side."""
    return [
        period_headline(states_at, period=month, window_months=window_months)
        for month in period.month_periods()
    ]
