"""Outcome rules of staging: what an export's stage, status and close dates say about a deal.

Lost is an outcome, not a stage; an empty status is derived from the stage; a lost deal's
close time may come from its history; an open deal has no close date.
"""

from __future__ import annotations

import polars as pl

from schemas.vocabulary import LOST, OPEN, WON
from transforms.funnel_model import FunnelModel, ParseOptions
from transforms.staging.parse import blank_to_null, parse_stage

STAGE_FROM_HISTORY = "_stage_from_history"


def lost_stage_to_status(
    raw: pl.LazyFrame, *, funnel: FunnelModel, options: ParseOptions
) -> pl.LazyFrame:
    """Raw opportunities whose stage means lost: status lost, stage left to the history.

    Lost is an outcome, not a stage: such a deal's stage is the last one its history shows
    (see `stage_from_history`), and `_stage_from_history` marks it.
    """
    names = raw.collect_schema().names()
    if "stage" not in names:
        return raw.with_columns(pl.lit(False).alias(STAGE_FROM_HISTORY))
    lost_values = (  # each distinct stage value read once
        raw.select(pl.col("stage").unique())
        .filter(parse_stage(pl.col("stage"), funnel=funnel, options=options) == LOST)
        .collect()
        .to_series()
    )
    is_lost = pl.col("stage").is_in(lost_values.implode()) if lost_values.len() else pl.lit(False)
    status = pl.col("status") if "status" in names else pl.lit(None, dtype=pl.String)
    return raw.with_columns(
        is_lost.fill_null(False).alias(STAGE_FROM_HISTORY),
        pl.when(is_lost)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(is_lost & blank_to_null(status).is_null())
        .then(pl.lit(LOST))
        .otherwise(status)
        .alias("status"),
    )


def stage_from_history(
    opportunities: pl.LazyFrame, history: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Deals marked `_stage_from_history` (their export said lost) get the last open stage
    their history shows, or the first stage without one; the mark is dropped."""
    open_stages = funnel.open_ids
    index = {stage: i for i, stage in enumerate(open_stages)}
    marked = pl.col(STAGE_FROM_HISTORY).fill_null(False)
    last = (
        history.join(  # only the marked deals' history is read
            opportunities.filter(marked).select("opportunity_id"), on="opportunity_id", how="semi"
        )
        .filter(pl.col("stage").is_in(open_stages) & pl.col("entered_at").is_not_null())
        .with_columns(pl.col("stage").replace_strict(index, return_dtype=pl.Int32).alias("_i"))
        .group_by("opportunity_id")
        .agg(pl.col("stage").sort_by("entered_at", "_i").last().alias("_last_stage"))
    )
    return (
        opportunities.join(last, on="opportunity_id", how="left")
        .with_columns(
            pl.when(marked)
            .then(pl.coalesce("_last_stage", pl.lit(funnel.ids[0])))
            .otherwise(pl.col("stage"))
            .alias("stage")
        )
        .drop("_last_stage", STAGE_FROM_HISTORY)
    )


def loss_from_history(opportunities: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """Lost deals whose close time is missing or earlier than their last stage entry take it
    from the first "lost" row of their history after that entry (Salesforce's Closed Lost rows,
    a snapshot that first shows the loss)."""
    entered = pl.col("entered_at")
    last_entry = (
        history.filter((pl.col("stage") != LOST) & entered.is_not_null())
        .group_by("opportunity_id")
        .agg(entered.max().alias("_last_entry"))
    )
    losses = (
        history.filter((pl.col("stage") == LOST) & entered.is_not_null())
        .join(last_entry, on="opportunity_id", how="left")
        .filter(pl.col("_last_entry").is_null() | (entered >= pl.col("_last_entry")))
        .group_by("opportunity_id")
        .agg(entered.min().alias("_lost_at"), pl.col("_last_entry").first())
    )
    closed = pl.col("closed_at")
    trusted = closed.is_not_null() & (
        pl.col("_last_entry").is_null() | (closed >= pl.col("_last_entry"))
    )
    return (
        opportunities.join(losses, on="opportunity_id", how="left")
        .with_columns(
            pl.when((pl.col("status") == LOST) & ~trusted)
            .then(pl.coalesce("_lost_at", closed))
            .otherwise(closed)
            .alias("closed_at")
        )
        .drop("_lost_at", "_last_entry")
    )


def derive_status(opportunities: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Opportunities with `status` filled when empty: won when the stage is won or later, else
    open (also when the stage itself is unreadable: that row is quarantined for its stage)."""
    derived = (
        pl.when(pl.col("stage").is_in(funnel.won_ids)).then(pl.lit(WON)).otherwise(pl.lit(OPEN))
    )
    return opportunities.with_columns(pl.coalesce(pl.col("status"), derived).alias("status"))


MOVED_CREATED = "_created_moved_back"


def settle_close_dates(
    opportunities: pl.LazyFrame, *, keep_closed_before_created: bool
) -> pl.LazyFrame:
    """An open deal has no close date (CRMs often put the expected one there). With
    `keep_closed_before_created`, a deal closed before it was created gets created_at =
    closed_at, marked in `_created_moved_back`; otherwise validation quarantines it."""
    closed = pl.when(pl.col("status") != OPEN).then(pl.col("closed_at"))
    early = closed.is_not_null() & (closed < pl.col("created_at"))
    moved = early & pl.lit(keep_closed_before_created)
    return opportunities.with_columns(
        closed.alias("closed_at"),
        pl.when(moved).then(closed).otherwise(pl.col("created_at")).alias("created_at"),
        moved.fill_null(False).alias(MOVED_CREATED),
    )
