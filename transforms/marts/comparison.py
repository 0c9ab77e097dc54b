"""Comparisons (docs/metrics.md `comparison`, `trend`, `months`): the headline figures of other
periods, each as of its own end."""

from __future__ import annotations

import polars as pl

from funnel_reports.transforms.expressions import one_row
from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.kpis import kpis
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


def comparison(states_at: DealStatesAt, current: pl.LazyFrame, *, window: Window) -> pl.LazyFrame:
    """The previous period and the same period a year earlier (`previous`, `year_ago`: each
    its period, kpis and the change of each headline figure against `current`, this period's
    kpis), a single row."""
    figures = [name for name in current.collect_schema().names() if name != "window"]
    other = pl.col("kpis").struct
    change = pl.struct([(pl.col(name) - other.field(name)).alias(name) for name in figures])
    return one_row(
        *(
            one_row(current, period_headline(states_at, window=then).lazy()).select(
                pl.struct("period", "kpis", change.alias("change")).alias(key)
            )
            for key, then in (
                ("previous", window.shifted(-1)),
                ("year_ago", window.shifted(-12 // window.period.months)),
            )
        )
    )


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
