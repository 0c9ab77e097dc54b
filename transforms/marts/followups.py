"""Follow-up activity (DESIGN §5 `followups`): how open deals are being worked, and how won
and lost deals were."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN, RESOLVED
from funnel_reports.transforms.expressions import days_between, in_interval, stable_sum
from funnel_reports.transforms.periods import Window

SILENT_DAYS = 14


def followup_activity(
    followups: pl.LazyFrame,
    states: pl.LazyFrame,
    *,
    window: Window,
) -> dict[str, Any]:
    """Touches per open deal in the period, channel mix, open deals silent for 14 days,
    overdue next actions, and touches per deal of deals won against deals lost in W.

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
    touches = summary["touches"]
    by_channel = known.filter(in_period).group_by("channel").agg(pl.len().alias("touches"))
    mix = (
        by_channel.with_columns((pl.col("touches") / pl.col("touches").sum()).alias("share"))
        .sort(["touches", "channel"], descending=[True, False])
        .collect()
    )
    pattern = touches_of_resolved(known, states, window_start=window.window_start)
    return {
        "touches_in_period": int(mix["touches"].sum()),
        "touches_per_open_deal": touches / summary["open_count"] if summary["open_count"] else None,
        "channel_mix": mix.to_dicts(),
        "silent_days": SILENT_DAYS,
        "silent_open_deals": summary["silent_count"],
        "silent_open_amount": summary["silent_amount"],
        "overdue_next_actions": summary["overdue_next_actions"],
        "won_vs_lost": pattern,
    }


def open_deal_activity(
    known: pl.LazyFrame,
    states: pl.LazyFrame,
    *,
    in_period: pl.Expr,
    as_of: datetime,
    as_of_date: date,
) -> dict[str, Any]:
    """The open deals at as_of: how many, how many are silent and their amount, how many
    have an overdue next action, and their follow-ups in the period (`in_period`)."""
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
    summary: dict[str, Any] = (
        open_activity.select(
            pl.len().alias("open_count"),
            pl.col("is_silent").sum().cast(pl.Int64).alias("silent_count"),
            stable_sum(pl.col("amount_at").filter("is_silent")).alias("silent_amount"),
            pl.col("is_overdue").sum().cast(pl.Int64).alias("overdue_next_actions"),
            pl.col("touches_in_period").sum().cast(pl.Int64).alias("touches"),
        )
        .collect()
        .row(0, named=True)
    )
    return summary


def touches_of_resolved(
    known: pl.LazyFrame, states: pl.LazyFrame, *, window_start: datetime
) -> list[dict[str, Any]]:
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
        .collect()
        .to_dicts()
    )
