"""Derived tables: stage entries, the state of every deal as of a date, and stage visits."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from transforms.funnel_model import FunnelModel
from transforms.parse import LOST

SECONDS_PER_DAY = 86_400.0


def days_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """(end - start) in seconds / 86400, as a float."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / (SECONDS_PER_DAY * 1e6)


def stage_index(stage: pl.Expr, *, funnel: FunnelModel) -> pl.Expr:
    return stage.replace_strict(funnel.ids, list(range(len(funnel.ids))), return_dtype=pl.Int32)


def reach_column(stage_id: str) -> str:
    """Name of the column holding first_reach(o, stage) in `deal_states`."""
    return f"reach_{stage_id}"


ENTRY_ORDER = ["entered_at", "stage_index"]


def stage_entries(
    opportunities: pl.LazyFrame, stage_history: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Stage entries: one row per entry of an opportunity into a stage.

    An opportunity's stage-history rows are its entries (rows with stage "lost" record the
    loss and are left out); `is_stage_change` is false for a row that repeats the stage the
    deal is already in (Salesforce logs amount changes that way, snapshots observe a stage
    again): such rows carry amounts, not new visits. An opportunity without history rows
    takes its entries from its own fields: the first stage at `created_at`, the won stage at
    `closed_at` when won, and the current stage at `stage_entered_at` (when that is empty: at
    `closed_at` for a won deal in a won stage, else at `created_at`). A won deal whose stage
    is open (CRMs keep the stage a deal was won from) enters the won stage at `closed_at`.
    """
    first, won = funnel.ids[0], funnel.won_stage
    from_history = stage_history.filter(pl.col("stage") != LOST).select(
        "opportunity_id",
        "stage",
        "entered_at",
        "amount",
        "expected_close_date",
        pl.lit(True).alias("is_from_history"),
    )
    without_history = opportunities.join(
        stage_history.select("opportunity_id").unique(), on="opportunity_id", how="anti"
    )
    in_won_stage = pl.col("stage").is_in(funnel.ids[funnel.won_index :])
    current_entry = pl.coalesce(
        "stage_entered_at",
        pl.when((pl.col("status") == "won") & in_won_stage).then(pl.col("closed_at")),
        "created_at",
    )
    field_entries = (
        pl.concat(
            [
                without_history.select(
                    "opportunity_id",
                    pl.lit(first).alias("stage"),
                    pl.col("created_at").alias("entered_at"),
                ),
                without_history.filter(
                    (pl.col("status") == "won") & pl.col("closed_at").is_not_null()
                ).select(
                    "opportunity_id",
                    pl.lit(won).alias("stage"),
                    pl.col("closed_at").alias("entered_at"),
                ),
                without_history.select(
                    "opportunity_id", "stage", current_entry.alias("entered_at")
                ),
            ]
        )
        .unique()
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("amount"),
            pl.lit(None, dtype=pl.Date).alias("expected_close_date"),
            pl.lit(False).alias("is_from_history"),
        )
    )
    previous = pl.col("stage").shift(1).over("opportunity_id", order_by=ENTRY_ORDER)
    return (
        pl.concat([from_history, field_entries])
        .with_columns(stage_index(pl.col("stage"), funnel=funnel).alias("stage_index"))
        .sort(["opportunity_id", *ENTRY_ORDER], maintain_order=True)  # ties: export order
        .with_columns((previous.is_null() | (previous != pl.col("stage"))).alias("is_stage_change"))
    )


def deal_states(
    opportunities: pl.LazyFrame,
    entries: pl.LazyFrame,
    *,
    as_of: datetime,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """Every deal as it could be known at `as_of`: one row per opportunity created before it.

    `entries` is `stage_entries`' table, in its order (opportunity, entered_at, stage_index).

    `state` is won (reached the won stage before as_of, unless a later loss reversed it), lost
    (status lost and closed before as_of) or open; `stage_at` is the stage of the last entry
    before as_of; `reach_<stage>` is first_reach(o, stage); `amount_at` is the latest amount
    the history records before as_of, else the opportunity's amount.
    """
    known = entries.filter(pl.col("entered_at") < as_of)
    # entries come in stage_entries' order and a group keeps its rows' order: the last row
    # of a group is the latest entry, with no sort per group
    reached = known.group_by("opportunity_id").agg(
        *[
            pl.col("entered_at").filter(pl.col("stage_index") >= k).min().alias(reach_column(s))
            for k, s in enumerate(funnel.ids)
        ],
        pl.col("stage").filter("is_stage_change").last().alias("stage_at"),
        pl.col("entered_at").filter("is_stage_change").last().alias("stage_entered_at_as_of"),
        pl.col("amount").drop_nulls().last().alias("history_amount"),
        pl.col("expected_close_date").drop_nulls().last().alias("history_expected_close_date"),
    )
    won_at = pl.col(reach_column(funnel.won_stage))
    is_lost = (pl.col("status") == LOST) & (pl.col("closed_at") < as_of)
    # a loss after the win reverses it (a deal moved from Closed Won to Closed Lost)
    is_reversed = is_lost & (pl.col("closed_at") >= won_at)
    state = (
        pl.when(won_at.is_not_null() & ~is_reversed.fill_null(False))
        .then(pl.lit("won"))
        .when(is_lost)
        .then(pl.lit("lost"))
        .otherwise(pl.lit("open"))
    )
    return (
        opportunities.filter(pl.col("created_at") < as_of)
        .join(reached, on="opportunity_id", how="left")
        .with_columns(
            state.alias("state"),
            won_at.alias("won_at"),
            pl.col("stage_at").fill_null(funnel.ids[0]),
            pl.coalesce("stage_entered_at_as_of", "created_at").alias("stage_entered_at_as_of"),
            pl.coalesce("history_amount", "amount").alias("amount_at"),
            pl.coalesce("history_expected_close_date", "expected_close_date").alias(
                "expected_close_date_at"
            ),
            pl.when(pl.col("closed_at") < as_of).then(pl.col("closed_at")).alias("closed_at_as_of"),
        )
        .with_columns(
            pl.when(pl.col("state") == "won")
            .then(pl.col("won_at"))
            .when(pl.col("state") == "lost")
            .then(pl.col("closed_at"))
            .alias("resolved_at")
        )
    )


def stage_visits(entries: pl.LazyFrame, states: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Stage visits known at `as_of`: one row per stay of a deal in a stage.

    A visit starts at an entry and ends at the deal's next entry, or at `closed_at` when the
    deal was lost while there; one with no end before as_of is open. `days` is the length of a
    completed visit, or the age at as_of of an open one; `outcome` is forward, back, lost or
    open.
    """
    lost_at = states.select(
        "opportunity_id",
        pl.when(pl.col("state") == "lost").then(pl.col("closed_at")).alias("_lost_at"),
    )

    def following(column: str) -> pl.Expr:
        return pl.col(column).shift(-1).over("opportunity_id", order_by=ENTRY_ORDER)

    return (
        entries.filter((pl.col("entered_at") < as_of) & pl.col("is_stage_change"))
        .join(lost_at, on="opportunity_id", how="inner")
        .with_columns(
            following("entered_at").alias("_next"), following("stage_index").alias("_next_index")
        )
        .select(
            "opportunity_id",
            "stage",
            "stage_index",
            pl.when(pl.col("_next_index") > pl.col("stage_index"))
            .then(pl.lit("forward"))
            .when(pl.col("_next_index").is_not_null())
            .then(pl.lit("back"))
            .when(pl.col("_lost_at").is_not_null())
            .then(pl.lit("lost"))
            .otherwise(pl.lit("open"))
            .alias("outcome"),
            pl.col("entered_at").alias("started_at"),
            pl.coalesce(
                "_next",
                pl.when(pl.col("_lost_at").is_not_null()).then(
                    pl.max_horizontal("_lost_at", "entered_at")
                ),
            ).alias("ended_at"),
        )
        .with_columns(pl.col("ended_at").is_null().alias("is_open"))
        .with_columns(
            days_between(pl.col("started_at"), pl.coalesce("ended_at", pl.lit(as_of))).alias("days")
        )
    )
