"""Comparisons (DESIGN §5 `comparison`, `trend`, `months`): the headline figures of other
periods, each as of its own end."""

from __future__ import annotations

from typing import Any

import polars as pl

from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.kpis import change, kpis
from funnel_reports.transforms.periods import Window

TREND_PERIODS = 6
TREND_FIGURES = ("open_amount", "won_count", "won_amount", "lost_count", "win_rate")


def period_headline(states_at: DealStatesAt, *, window: Window) -> pl.DataFrame:
    """`period` and `kpis` of a period (two structs), from the deal states at its own end: a
    single row."""
    period = pl.struct([pl.lit(v).alias(k) for k, v in window.period.as_dict().items()])
    return (
        kpis(states_at.states(window.as_of), window=window)
        .select(period.alias("period"), pl.struct(pl.all()).alias("kpis"))
        .collect()
    )


def comparison(
    states_at: DealStatesAt, current: dict[str, Any], *, window: Window
) -> dict[str, Any]:
    """The previous period and the same period a year earlier, with the change of each
    headline figure against `current` (this period's kpis)."""
    result = {}
    for key, other in (
        ("previous", window.shifted(-1)),
        ("year_ago", window.shifted(-12 // window.period.months)),
    ):
        headline = period_headline(states_at, window=other).row(0, named=True)
        result[key] = {**headline, "change": change(current, headline["kpis"])}
    return result


def trend(states_at: DealStatesAt, *, window: Window, periods: int = TREND_PERIODS) -> pl.DataFrame:
    """Won count and amount, lost count, win rate and open amount of the last `periods`
    periods of this grain, this one last: a row each."""
    return pl.concat(
        period_headline(states_at, window=past).select(
            pl.lit(past.period.label).alias("label"),
            *(pl.col("kpis").struct.field(k) for k in TREND_FIGURES),
        )
        for past in (window.shifted(-back) for back in range(periods - 1, -1, -1))
    )


def months(states_at: DealStatesAt, *, window: Window) -> pl.DataFrame:
    """The headline figures of each calendar month inside a quarter, side by side: a row
    each."""
    return pl.concat(period_headline(states_at, window=month) for month in window.month_windows())
