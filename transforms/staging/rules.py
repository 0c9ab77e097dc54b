"""Row rules that need the funnel settings or another table: one row per (input row, reason).

Each function returns `_row`, `reason` for the rows of its table that break a rule; the rows
themselves are quarantined by `schemas.validation`.
"""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.staging.outcomes import CLOSE_UNKNOWN, STAGE_FROM_HISTORY
from funnel_reports.transforms.staging.parse import localized


def opportunity_rule_reasons(
    opportunities: pl.LazyFrame, history: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Open deals in a won stage, open or won deals whose exported stage said lost (marked
    `_stage_from_history`), won deals with no date of winning, and deals of dated snapshots
    closed at a date nothing tells (marked `_close_unknown`)."""
    won_stages = funnel.won_ids
    in_won_stage = pl.col("stage").is_in(won_stages)
    won_entries = (
        history.filter(pl.col("stage").is_in(won_stages) & pl.col("entered_at").is_not_null())
        .select("opportunity_id")
        .unique()
        .with_columns(pl.lit(True).alias("_has_won_entry"))
    )
    rules = [
        # a CRM may keep the stage a deal was won from; an open deal in a won stage is a
        # contradiction (a lost one may be a reversed win)
        pl.when((pl.col("status") == OPEN) & in_won_stage).then(
            pl.format(reasons.OPEN_IN_WON_STAGE, pl.col("stage"))
        ),
        pl.when(
            (pl.col("status") == WON)
            & pl.col("closed_at").is_null()
            & (pl.col("stage_entered_at").is_null() | ~in_won_stage)
            & pl.col("_has_won_entry").is_null()
        ).then(pl.lit(reasons.WON_WITHOUT_CLOSE)),
    ]
    names = opportunities.collect_schema().names()
    if STAGE_FROM_HISTORY in names:
        # lost is an outcome: a stage that says lost contradicts a status of open or won
        rules.append(
            pl.when(pl.col(STAGE_FROM_HISTORY) & pl.col("status").is_in([OPEN, WON])).then(
                pl.format(reasons.STAGE_SAID_LOST, pl.col("status"))
            )
        )
    if CLOSE_UNKNOWN in names:
        rules.append(pl.when(pl.col(CLOSE_UNKNOWN)).then(pl.lit(reasons.CLOSED_DATE_UNKNOWN)))
    return (
        opportunities.join(won_entries, on="opportunity_id", how="left")
        .select("_row", pl.concat_list(rules).list.drop_nulls().alias("reason"))
        .explode("reason")
        .drop_nulls("reason")
    )


def orphan_reasons(
    rows: pl.LazyFrame, valid_opportunities: pl.LazyFrame, quarantined_ids: pl.LazyFrame
) -> pl.LazyFrame:
    """Rows of a child table whose opportunity is unknown or quarantined."""
    bad = (
        quarantined_ids.select("opportunity_id")
        .unique()
        .with_columns(pl.lit("quarantined").alias("_bad"))
    )
    return (
        rows.filter(pl.col("opportunity_id").is_not_null())
        .join(valid_opportunities.select("opportunity_id"), on="opportunity_id", how="anti")
        .join(bad, on="opportunity_id", how="left")
        .select(
            "_row",
            pl.when(pl.col("_bad").is_not_null())
            .then(pl.format(reasons.PARENT_QUARANTINED, pl.col("opportunity_id")))
            .otherwise(pl.format(reasons.PARENT_UNKNOWN, pl.col("opportunity_id")))
            .alias("reason"),
        )
    )


def history_after_loss_reasons(
    history: pl.LazyFrame, valid_opportunities: pl.LazyFrame
) -> pl.LazyFrame:
    """Stage entries into another stage dated after their deal was lost (observing the stage it
    was lost from, or the loss itself, later is no contradiction)."""
    lost = valid_opportunities.filter(pl.col("status") == LOST).select(
        "opportunity_id", pl.col("closed_at").alias("_lost_at"), pl.col("stage").alias("_stage")
    )
    return (
        history.join(lost, on="opportunity_id", how="inner")
        .filter(
            (pl.col("entered_at") > pl.col("_lost_at"))
            & (pl.col("stage") != pl.col("_stage"))
            & (pl.col("stage") != LOST)
        )
        .select("_row", pl.lit(reasons.ENTRY_AFTER_LOSS).alias("reason"))
    )


def history_before_created_reasons(
    history: pl.LazyFrame, valid_opportunities: pl.LazyFrame, *, timezone: str
) -> pl.LazyFrame:
    """Stage entries dated before the day their deal was created (local): a deal cannot sit
    in a stage before it exists, and one such row would stretch its dwell by years. An
    entry on the creation day is no contradiction (a bare date, or the same minute). Only
    the entries before the creation instant are looked at by day."""
    created = valid_opportunities.select("opportunity_id", pl.col("created_at").alias("_created"))
    local_day = pl.col("_created").dt.convert_time_zone(timezone).dt.date()
    return (
        history.join(created, on="opportunity_id", how="inner")
        .filter(pl.col("entered_at") < pl.col("_created"))
        .filter(pl.col("entered_at") < localized(local_day.cast(pl.Datetime("us")), timezone))
        .select("_row", pl.lit(reasons.ENTRY_BEFORE_CREATED).alias("reason"))
    )
