"""Headline figures (docs/metrics.md `kpis`) of a period, and pipeline velocity over W."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.expressions import (
    days_between,
    in_interval,
    ratio,
    stable_mean,
    stable_sum,
)
from funnel_reports.transforms.periods import Window

WINDOW_FIGURES = ("won_count", "lost_count", "win_rate", "avg_won_amount", "median_cycle_days")


def won_in(start: datetime, as_of: datetime) -> pl.Expr:
    """A deal state won in [start, as_of): what `won_count` counts."""
    return (pl.col("state") == WON) & in_interval(pl.col("won_at"), start, as_of)


def lost_in(start: datetime, as_of: datetime) -> pl.Expr:
    """A deal state lost in [start, as_of): what `lost_count` counts."""
    return (pl.col("state") == LOST) & in_interval(pl.col("closed_at"), start, as_of)


def headline_figures(*, start: datetime, as_of: datetime) -> list[pl.Expr]:
    """The headline aggregates of one interval [start, as_of), over deal states."""
    won, lost = won_in(start, as_of), lost_in(start, as_of)
    won_amount = pl.col("amount_at").filter(won)
    return [
        (pl.col("state") == OPEN).sum().cast(pl.Int64).alias("open_count"),
        stable_sum(pl.col("amount_at").filter(pl.col("state") == OPEN)).alias("open_amount"),
        won.sum().cast(pl.Int64).alias("won_count"),
        stable_sum(won_amount).alias("won_amount"),
        lost.sum().cast(pl.Int64).alias("lost_count"),
        ratio(won.sum(), won.sum() + lost.sum()).alias("win_rate"),
        stable_mean(won_amount).alias("avg_won_amount"),
        days_between(pl.col("created_at"), pl.col("won_at"))
        .filter(won)
        .median()
        .alias("median_cycle_days"),
    ]


def headline(states: pl.LazyFrame, *, start: datetime, as_of: datetime) -> pl.LazyFrame:
    """Headline figures of one interval [start, as_of): a single row."""
    return states.select(headline_figures(start=start, as_of=as_of))


def kpis(states: pl.LazyFrame, *, window: Window) -> pl.LazyFrame:
    """Headline figures for the period P, pipeline velocity from the figures over W, and the
    figures over W (`window`, a struct): a single row."""
    in_period = headline(states, start=window.start, as_of=window.as_of)
    over_w = headline(states, start=window.window_start, as_of=window.as_of).select(
        pl.struct(WINDOW_FIGURES).alias("window")
    )
    w = pl.col("window").struct
    velocity = (
        pl.when(w.field("median_cycle_days") > 0)
        .then(
            pl.col("open_count")
            * w.field("win_rate")
            * w.field("avg_won_amount")
            / w.field("median_cycle_days")
        )
        .alias("pipeline_velocity")
    )
    columns = [*in_period.collect_schema().names(), velocity, "window"]
    return pl.concat([in_period, over_w], how="horizontal").select(columns)
