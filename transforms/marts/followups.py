"""Follow-up activity (docs/metrics.md `followups`): how open deals are being worked, and how won
and lost deals were."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN, RESOLVED
from funnel_reports.transforms.expressions import (
    as_list,
    days_between,
    in_interval,
    one_row,
    ratio,
    stable_sum,
)
from funnel_reports.transforms.periods import Window

SILENT_DAYS = 14


def followup_activity(
    followups: pl.LazyFrame,
    states: pl.LazyFrame,
    *,
    window: Window,
) -> pl.LazyFrame:
    """Touches per open deal in the period, channel mix, open deals silent for 14 days,
    overdue next actions, and touches per deal of deals won against deals lost in W: a
    single row.

    A deal is silent when its last follow-up before as_of (its creation when it has none) is
    more than 14 days old; a next action is overdue when the deal's latest follow-up set a due
    date before the period's end date (the local date as_of falls on: a due date is a local
    day) and nothing followed.
    """
    as_of = window.as_of
    known = followups.filter(pl.col("occurred_at") < as_of)
    in_period = in_interval(pl.col("occurred_at"), window.start, as_of)
    summary = open_deal_activity(
        known, states, in_period=in_period, as_of=as_of, as_of_date=window.period.end_date
    )
    by_channel = known.filter(in_period).group_by("channel").agg(pl.len().alias("touches"))
    mix = by_channel.with_columns(
        (pl.col("touches") / pl.col("touches").sum()).alias("share")
    ).sort(["touches", "channel"], descending=[True, False])
    pattern = touches_of_resolved(known, states, window_start=window.window_start)
    return one_row(
        mix.select(pl.col("touches").sum().cast(pl.Int64).alias("touches_in_period")),
        summary,
        as_list(mix, "channel_mix"),
        as_list(pattern, "won_vs_lost"),
    ).select(
        "touches_in_period",
        ratio(pl.col("touches"), pl.col("open_count")).alias("touches_per_open_deal"),
        "channel_mix",
        pl.lit(SILENT_DAYS).alias("silent_days"),
        pl.col("silent_count").alias("silent_open_deals"),
        pl.col("silent_amount").alias("silent_open_amount"),
        "overdue_next_actions",
        "won_vs_lost",
    )


def open_deal_activity(
    known: pl.LazyFrame,
    states: pl.LazyFrame,
    *,
    in_period: pl.Expr,
    as_of: datetime,
    as_of_date: date,
) -> pl.LazyFrame:
    """The open deals at as_of: how many, how many are silent and their amount, how many
    have an overdue next action, and their follow-ups in the period (`in_period`): a single
    row."""
    open_deals = states.filter(pl.col("state") == OPEN).select(
        "opportunity_id", "created_at", "amount_at"
    )
    # the latest touch and what it set: only the open deals' follow-ups are searched
    last = (
        known.join(open_deals, on="opportunity_id", how="semi")
        .group_by("opportunity_id")
        .agg(
            pl.col("occurred_at").max().alias("last_touch"),
            pl.col("next_action_due").get(pl.col("occurred_at").arg_max()).alias("due"),
            in_period.sum().alias("touches_in_period"),
        )
    )
    open_activity = open_deals.join(last, on="opportunity_id", how="left").with_columns(
        (days_between(pl.coalesce("last_touch", "created_at"), pl.lit(as_of)) > SILENT_DAYS).alias(
            "is_silent"
        ),
        (pl.col("due") < as_of_date).fill_null(False).alias("is_overdue"),
    )
    return open_activity.select(
        pl.len().alias("open_count"),
        pl.col("is_silent").sum().cast(pl.Int64).alias("silent_count"),
        stable_sum(pl.col("amount_at").filter("is_silent")).alias("silent_amount"),
        pl.col("is_overdue").sum().cast(pl.Int64).alias("overdue_next_actions"),
        pl.col("touches_in_period").sum().cast(pl.Int64).alias("touches"),
    )


def touches_of_resolved(
    known: pl.LazyFrame, states: pl.LazyFrame, *, window_start: datetime
) -> pl.LazyFrame:
    """Deals won and deals lost in W, and their follow-ups per deal (known by as_of), won
    first."""
    resolved = states.filter(
        pl.col("state").is_in(RESOLVED) & (pl.col("resolved_at") >= window_start)
    ).select("opportunity_id", "state")
    per_deal = resolved.join(
        known.group_by("opportunity_id").agg(pl.len().alias("touches")),
        on="opportunity_id",
        how="left",
    ).with_columns(pl.col("touches").fill_null(0))
    return (
        per_deal.group_by("state")
        .agg(pl.len().alias("deals"), pl.col("touches").mean().alias("touches_per_deal"))
        .sort("state", descending=True)
    )
