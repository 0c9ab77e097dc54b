"""Stage visits: every stay of a deal in a stage, as known at a date."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from funnel_reports.schemas.vocabulary import BACK, FORWARD, LOST, OPEN
from funnel_reports.transforms.expressions import days_between


def stage_visits(entries: pl.LazyFrame, states: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Stage visits known at `as_of`: one row per stay of a deal in a stage.

    `entries` is `stage_entries`' table, in its order (opportunity, entered_at, stage_index).
    A visit starts at an entry and ends at the deal's next entry, or at `closed_at` when the
    deal was lost while there; one with no end before as_of is open. `days` is the length of a
    completed visit, or the age at as_of of an open one; `outcome` is forward, back, lost or
    open.
    """
    lost_at = states.select(
        "opportunity_id",
        pl.when(pl.col("state") == LOST).then(pl.col("closed_at")).alias("_lost_at"),
    )

    # entries come sorted by deal and ENTRY_ORDER: the next row is the deal's next entry, if
    # it is the same deal's
    same_deal = pl.col("opportunity_id") == pl.col("opportunity_id").shift(-1)

    def following(column: str) -> pl.Expr:
        return pl.when(same_deal).then(pl.col(column).shift(-1))

    return (
        entries.filter((pl.col("entered_at") < as_of) & pl.col("is_stage_change"))
        .join(lost_at, on="opportunity_id", how="inner", maintain_order="left")
        .with_columns(
            following("entered_at").alias("_next"), following("stage_index").alias("_next_index")
        )
        .select(
            "opportunity_id",
            "stage",
            "stage_index",
            pl.when(pl.col("_next_index") > pl.col("stage_index"))
            .then(pl.lit(FORWARD))
            .when(pl.col("_next_index").is_not_null())
            .then(pl.lit(BACK))
            .when(pl.col("_lost_at").is_not_null())
            .then(pl.lit(LOST))
            .otherwise(pl.lit(OPEN))
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
