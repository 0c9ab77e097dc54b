"""Bottlenecks (docs/metrics.md `bottlenecks`): steps whose period figure got worse than their
baseline over the rest of W, tested for significance and priced."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import FORWARD, LOST
from funnel_reports.transforms.expressions import ratio
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Window

Z_95 = 1.959964


def two_proportion_z(a1: pl.Expr, n1: pl.Expr, a2: pl.Expr, n2: pl.Expr) -> pl.Expr:
    """z of the difference a1/n1 − a2/n2 under the pooled proportion (null if undefined)."""
    pooled = (a1 + a2) / (n1 + n2)
    spread = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)).sqrt()
    return pl.when((n1 > 0) & (n2 > 0) & (spread > 0)).then((a1 / n1 - a2 / n2) / spread)


def median_interval(days: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """A 95 % interval for the median of a group's `days` from order statistics (normal
    approximation); null for fewer than two values."""
    n = pl.len()
    half = Z_95 * n.sqrt() / 2
    ordered = days.sort()
    low = (n / 2 - half).floor().clip(lower_bound=0).cast(pl.Int64)
    high = pl.min_horizontal((n / 2 + half).ceil(), n - 1).cast(pl.Int64)
    return (
        pl.when(n >= 2).then(ordered.get(low)).alias("low"),
        pl.when(n >= 2).then(ordered.get(high)).alias("high"),
    )


def step_figures(visits: pl.LazyFrame) -> pl.LazyFrame:
    """Per stage: deals that left forward, forward or lost, and the median days of visits with
    its interval."""
    return visits.group_by("stage").agg(
        (pl.col("outcome") == FORWARD).sum().cast(pl.Int64).alias("advanced"),
        pl.col("outcome").is_in([FORWARD, LOST]).sum().cast(pl.Int64).alias("left"),
        pl.col("days").median().alias("median_days"),
        *median_interval(pl.col("days")),
    )


def completed_visits(visits: pl.LazyFrame, *, funnel: FunnelModel, window: Window) -> pl.LazyFrame:
    """Visits of open stages that ended in W."""
    return visits.filter(
        ~pl.col("is_open")
        & (pl.col("ended_at") >= window.window_start)
        & pl.col("stage").is_in(funnel.open_ids)
    )


def step_baseline(visits: pl.LazyFrame, *, funnel: FunnelModel, window: Window) -> pl.DataFrame:
    """What a step's period figures are measured against: `step_figures` of the visits that
    ended in W before the period."""
    ended = completed_visits(visits, funnel=funnel, window=window)
    return step_figures(ended.filter(pl.col("ended_at") < window.start)).collect()


def steps_against_baseline(
    in_period: pl.LazyFrame,
    baseline: pl.DataFrame,
    funnel_snapshot: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """Each open stage with its step's figures in the period and in the baseline (`_base`),
    its open amount, its next stage and that stage's win probability (1 for won)."""
    won_stage = pl.lit(funnel.won_stage)
    next_p_win = probabilities.lazy().select(
        pl.col("stage").alias("next_stage"), pl.col("p_win").alias("next_p_win")
    )
    return (
        stage_frame(funnel)
        .with_columns(pl.col("stage").shift(-1).fill_null(won_stage).alias("next_stage"))
        .join(in_period, on="stage", how="left")
        .join(baseline.lazy(), on="stage", how="left", suffix="_base")
        .join(funnel_snapshot.select("stage", "amount"), on="stage", how="left")
        .join(next_p_win, on="next_stage", how="left")
        .with_columns(
            pl.when(pl.col("next_stage") == won_stage)
            .then(pl.lit(1.0))
            .otherwise(pl.col("next_p_win"))
            .alias("next_p_win")
        )
    )


def bottlenecks(
    visits: pl.LazyFrame,
    funnel_snapshot: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
    window: Window,
    baseline: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Per open stage: conversion of the deals that left it in the period (forward against
    lost) and the median length of visits completed in the period, each against the rest of
    W. A worse step is called out when the conversion drop is significant (two-proportion
    z-test at 5 %) or the dwell intervals do not overlap; revenue at risk is the open amount
    in the stage times the drop in its win probability, the conversion drop times the next
    stage's p_win (p_win(k) ≈ conversion(k) × p_win(k + 1)). Called-out steps first, then by
    revenue at risk. `baseline` replaces the deals' own (`step_baseline`) for a report that is
    measured against the company's."""
    ended = completed_visits(visits, funnel=funnel, window=window)
    in_period = step_figures(ended.filter(pl.col("ended_at") >= window.start))
    if baseline is None:
        baseline = step_baseline(visits, funnel=funnel, window=window)
    a1, n1 = pl.col("advanced").fill_null(0), pl.col("left").fill_null(0)
    a2, n2 = pl.col("advanced_base").fill_null(0), pl.col("left_base").fill_null(0)
    rate, base = ratio(a1, n1), ratio(a2, n2)
    drop = base - rate
    z = two_proportion_z(a1, n1, a2, n2)
    conversion_worse = (z < -Z_95).fill_null(False)
    dwell_worse = (pl.col("low") > pl.col("high_base")).fill_null(False)
    return (
        steps_against_baseline(in_period, baseline, funnel_snapshot, probabilities, funnel=funnel)
        .select(
            "stage",
            "next_stage",
            n1.alias("left_in_period"),
            rate.alias("conversion"),
            n2.alias("baseline_left"),
            base.alias("baseline_conversion"),
            z.alias("z"),
            "median_days",
            pl.col("median_days_base").alias("baseline_median_days"),
            conversion_worse.alias("is_conversion_worse"),
            dwell_worse.alias("is_dwell_worse"),
            (conversion_worse | dwell_worse).alias("is_called_out"),
            (
                pl.col("amount").fill_null(0.0) * drop.clip(lower_bound=0.0) * pl.col("next_p_win")
            ).alias("revenue_at_risk"),
            "stage_index",
        )
        .sort(
            ["is_called_out", pl.col("revenue_at_risk").fill_null(0.0), "stage_index"],
            descending=[True, True, False],
        )
        .drop("stage_index")
        .collect()
    )
