"""Stalled deals (docs/metrics.md `stalls`): open deals past their stage's stall threshold."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN
from funnel_reports.transforms.expressions import as_list, days_between, one_row, stable_sum
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.periods import Window

STALLED_DEALS_LISTED = 15


def stall_thresholds(funnel: FunnelModel) -> pl.LazyFrame:
    """Each stage with a stall threshold (`stage_at`, `stall_days`); typed, so that a funnel
    without one gives an empty frame that still joins."""
    return pl.LazyFrame(
        {
            "stage_at": [s.id for s in funnel.stages if s.stall_days is not None],
            "stall_days": [s.stall_days for s in funnel.stages if s.stall_days is not None],
        },
        schema={"stage_at": pl.String, "stall_days": pl.Int64},
    )


def days_in_stage(window: Window) -> pl.Expr:
    """A deal state's age in its current stage at the period's end, in days."""
    return days_between(pl.col("stage_entered_at_as_of"), pl.lit(window.as_of))


def stalled_deals(states: pl.LazyFrame, *, funnel: FunnelModel, window: Window) -> pl.LazyFrame:
    """Open deals at the period end whose current visit is older than their stage's stall
    threshold."""
    return (
        states.filter(pl.col("state") == OPEN)
        .join(stall_thresholds(funnel), on="stage_at", how="inner")
        .with_columns(days_in_stage(window).alias("days_in_stage"))
        .filter(pl.col("days_in_stage") > pl.col("stall_days"))
        .with_columns(pl.col("stall_reason").is_null().alias("is_missing_reason"))
    )


def stalls_summary(stalled: pl.LazyFrame) -> pl.LazyFrame:
    """stalled_count, stalled_amount, missing_reason_count, compliance_rate, and the tables
    reasons[], by_owner[] and the longest stalled deals[]: a single row."""
    n, missing = pl.col("stalled_count"), pl.col("missing_reason_count")
    totals = stalled.select(
        pl.len().alias("stalled_count"),
        stable_sum(pl.col("amount_at")).alias("stalled_amount"),
        pl.col("is_missing_reason").sum().cast(pl.Int64).alias("missing_reason_count"),
    ).with_columns(pl.when(n > 0).then(1 - missing / n).alias("compliance_rate"))
    reasons = (
        stalled.filter(~pl.col("is_missing_reason"))
        .group_by(pl.col("stall_reason").alias("reason"))
        .agg(pl.len().alias("count"), stable_sum(pl.col("amount_at")).alias("amount"))
        .sort(["count", pl.col("amount").round(6), "reason"], descending=[True, True, False])
    )
    by_owner = (
        stalled.group_by(pl.col("owner").fill_null("—").alias("owner"))
        .agg(pl.len().alias("stalled"), pl.col("is_missing_reason").sum().alias("missing_reason"))
        .with_columns((1 - pl.col("missing_reason") / pl.col("stalled")).alias("compliance_rate"))
        .sort(["missing_reason", "stalled", "owner"], descending=[True, True, False])
    )
    return one_row(
        totals,
        as_list(reasons, "reasons"),
        as_list(by_owner, "by_owner"),
        as_list(longest_stalled(stalled), "deals"),
    )


def longest_stalled(stalled: pl.LazyFrame, *, listed: int = STALLED_DEALS_LISTED) -> pl.LazyFrame:
    """The `listed` deals stalled longest, longest first."""
    return (
        # rounded: the last bit of a vectorised division must not reorder equal ages
        stalled.sort([pl.col("days_in_stage").round(6), "opportunity_id"], descending=[True, False])
        .head(listed)
        .select(
            "opportunity_id",
            "customer_name",
            "owner",
            pl.col("stage_at").alias("stage"),
            "days_in_stage",
            pl.col("amount_at").alias("amount"),
            "stall_reason",
        )
    )
