"""Stage reaches: when each deal first reached each stage, over all its entries or as known
at a date."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from funnel_reports.transforms.funnel_model import FunnelModel

# what stage_reaches' table holds; every_reach's carries the deal's created_at besides
REACH_COLUMNS = ("opportunity_id", "stage", "stage_index", "reached_at")


def first_reach(stage_index: int) -> pl.Expr:
    """first_reach(o, k): the earliest entry into stage k or any later one (skipped stages are
    reached when a later one is entered), over a deal's entries."""
    return pl.col("entered_at").filter(pl.col("stage_index") >= stage_index).min()


def reach_times(entries: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Reach times: one row per opportunity with entries, first_reach(o, k) of every stage k
    over all its entries in a column named k (column 0 is its first entry)."""
    return entries.group_by("opportunity_id").agg(
        first_reach(k).alias(str(k)) for k in range(len(funnel.ids))
    )


def every_reach(times: pl.LazyFrame, deals: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Stage reaches over all entries: one row per deal and stage it ever reached, with the
    deal's `created_at`.

    `times` is `reach_times`' table, `deals` has one row per opportunity (`created_at`). A
    first reach known at t is the first reach over all entries when it lies before t (the
    earliest entry before t into stage k or later is the earliest of all, if any lies before
    t): `stage_reaches` masks this table at any instant.
    """
    stages = pl.LazyFrame(
        {"stage_index": list(range(len(funnel.ids))), "stage": funnel.ids},
        schema={"stage_index": pl.Int32, "stage": pl.String},
    )
    return (
        times.join(deals.select("opportunity_id", "created_at"), on="opportunity_id")
        .unpivot(
            index=["opportunity_id", "created_at"],
            variable_name="stage_index",
            value_name="reached_at",
        )
        .drop_nulls("reached_at")
        .with_columns(pl.col("stage_index").cast(pl.Int32))
        .join(stages, on="stage_index", how="left")
        .select(*REACH_COLUMNS, "created_at")
    )


def stage_reaches(reaches: pl.LazyFrame, *, as_of: datetime) -> pl.LazyFrame:
    """Stage reaches known at `as_of`: one row per deal created before it and stage it had
    reached by then.

    `reaches` is `every_reach`' table. `reached_at` is first_reach(o, stage) over the entries
    before as_of: a deal that reached stage k has a row for every stage before it, at a time
    no later than k's.
    """
    return reaches.filter((pl.col("reached_at") < as_of) & (pl.col("created_at") < as_of)).select(
        REACH_COLUMNS
    )
