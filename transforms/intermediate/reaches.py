"""Stage reaches: when each deal first reached each stage, as known at a date."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from transforms.funnel_model import FunnelModel


def first_reach(stage_index: int) -> pl.Expr:
    """first_reach(o, k): the earliest entry into stage k or any later one (skipped stages are
    reached when a later one is entered), over a deal's entries."""
    return pl.col("entered_at").filter(pl.col("stage_index") >= stage_index).min()


def stage_reaches(
    entries: pl.LazyFrame, states: pl.LazyFrame, *, as_of: datetime | None, funnel: FunnelModel
) -> pl.LazyFrame:
    """Stage reaches known at `as_of`: one row per deal known then and stage it had reached.

    `entries` is `stage_entries`' table, `states` the `deal_states` at the same `as_of` (only
    deals created before it count; with `as_of` None, every entry of the deals in `states`).
    `reached_at` is first_reach(o, stage): a deal that reached stage k has a row for every
    stage before it, at a time no later than k's.
    """
    known = entries if as_of is None else entries.filter(pl.col("entered_at") < as_of)
    wide = (
        known.join(states.select("opportunity_id"), on="opportunity_id", how="semi")
        .group_by("opportunity_id")
        .agg(first_reach(k).alias(str(k)) for k in range(len(funnel.ids)))
    )
    stages = pl.LazyFrame(
        {"stage_index": list(range(len(funnel.ids))), "stage": funnel.ids},
        schema={"stage_index": pl.Int32, "stage": pl.String},
    )
    return (
        wide.unpivot(index="opportunity_id", variable_name="stage_index", value_name="reached_at")
        .drop_nulls("reached_at")
        .with_columns(pl.col("stage_index").cast(pl.Int32))
        .join(stages, on="stage_index", how="left")
        .select("opportunity_id", "stage", "stage_index", "reached_at")
    )
