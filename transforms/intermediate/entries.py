"""Stage entries: when each deal entered each stage, from its history or its own fields."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, WON
from funnel_reports.transforms.funnel_model import FunnelModel


def stage_index(stage: pl.Expr, *, funnel: FunnelModel) -> pl.Expr:
    """A stage id's position in the funnel (0 for the first stage)."""
    return stage.replace_strict(funnel.ids, list(range(len(funnel.ids))), return_dtype=pl.Int32)


def stage_frame(funnel: FunnelModel, *, open_only: bool = True) -> pl.LazyFrame:
    """One row per (open) stage in funnel order: `stage`, `stage_index`."""
    ids = funnel.open_ids if open_only else funnel.ids
    return pl.LazyFrame(
        {"stage": ids, "stage_index": list(range(len(ids)))},
        schema={"stage": pl.String, "stage_index": pl.Int32},
    )


# stage_entries' order within a deal: by time, entries at the same instant by stage
ENTRY_ORDER = ["entered_at", "stage_index"]


def stage_entries(
    opportunities: pl.LazyFrame,
    stage_history: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    partial_history: bool = False,
) -> pl.LazyFrame:
    """Stage entries: one row per entry of an opportunity into a stage.

    An opportunity's stage-history rows are its entries (rows with stage "lost" record the
    loss and are left out); `is_stage_change` is false for a row that repeats the stage the
    deal is already in (Salesforce logs amount changes that way, snapshots observe a stage
    again): such rows carry amounts, not new visits. An opportunity without history rows (or
    whose history holds only its loss) takes its entries from its own fields: the first stage
    at `created_at`, the won stage at `closed_at` when won, and the current stage at
    `stage_entered_at` (when that is empty: at `closed_at` for a won deal in a won stage, else
    at `created_at`). A won deal whose stage
    is open (CRMs keep the stage a deal was won from) enters the won stage at `closed_at`.

    With `partial_history` (the history comes from columns of stage dates, which name some
    stages only: `[source.stage_dates]`), every opportunity also takes the entries its own
    fields give, each into a stage its history does not hold.
    """
    from_history = stage_history.filter(pl.col("stage") != LOST).select(
        "opportunity_id",
        "stage",
        "entered_at",
        "amount",
        "expected_close_date",
        "forecast_category",
        pl.lit(True).alias("is_from_history"),
    )
    without_history = (
        opportunities
        if partial_history
        else opportunities.join(  # no history, or only a loss row
            from_history.select("opportunity_id"), on="opportunity_id", how="anti"
        )
    )
    field_entries = entries_from_fields(without_history, funnel=funnel)
    if partial_history:  # a stage its dates hold is entered then, not when its fields say
        field_entries = field_entries.join(
            from_history.select("opportunity_id", "stage"),
            on=["opportunity_id", "stage"],
            how="anti",
        )
    # sorted by deal then ENTRY_ORDER: the row before is the deal's previous entry, if it is
    # the same deal's
    same_deal = pl.col("opportunity_id") == pl.col("opportunity_id").shift(1)
    previous = pl.when(same_deal).then(pl.col("stage").shift(1))
    return (
        pl.concat([from_history, field_entries])
        .with_columns(stage_index(pl.col("stage"), funnel=funnel).alias("stage_index"))
        .sort(["opportunity_id", *ENTRY_ORDER], maintain_order=True)  # ties: export order
        .with_columns((previous.is_null() | (previous != pl.col("stage"))).alias("is_stage_change"))
    )


def entries_from_fields(opportunities: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """The entries a deal's own fields give: the first stage at `created_at`, the won stage
    at `closed_at` when won, and the current stage at `stage_entered_at` (when that is
    empty: at `closed_at` for a won deal in a won stage, else at `created_at`)."""
    won = (pl.col("status") == WON) & pl.col("closed_at").is_not_null()
    current_entry = pl.coalesce(
        "stage_entered_at",
        pl.when((pl.col("status") == WON) & pl.col("stage").is_in(funnel.won_ids)).then(
            pl.col("closed_at")
        ),
        "created_at",
    )
    return (
        pl.concat(
            [
                opportunities.select(
                    "opportunity_id",
                    pl.lit(funnel.ids[0]).alias("stage"),
                    pl.col("created_at").alias("entered_at"),
                ),
                opportunities.filter(won).select(
                    "opportunity_id",
                    pl.lit(funnel.won_stage).alias("stage"),
                    pl.col("closed_at").alias("entered_at"),
                ),
                opportunities.select("opportunity_id", "stage", current_entry.alias("entered_at")),
            ]
        )
        .unique()
        .with_columns(
            pl.lit(None, dtype=pl.Float64).alias("amount"),
            pl.lit(None, dtype=pl.Date).alias("expected_close_date"),
            pl.lit(None, dtype=pl.String).alias("forecast_category"),
            pl.lit(False).alias("is_from_history"),
        )
    )


def observed_stages(
    states: pl.LazyFrame, entries: pl.LazyFrame, *, as_of: datetime, funnel: FunnelModel
) -> list[str]:
    """The stages some deal was seen in by `as_of`, in funnel order: a stage-history row
    before it (stage dates and snapshots included), a deal's stage at as_of (`states`'
    `stage_at`), or, for the won stage, a deal won by then. A stage reached only because a
    later one was entered (a skip) is not observed, nor is the first stage that a deal
    without history is taken to have entered when it was created (though a lost deal without
    history, whose stage said only "lost", counts as seen in the first stage: the first stage
    is always shown anyway). Point in time, like every figure: a rerun of a period with a
    later export marks the same stages."""
    seen = (
        pl.concat(
            [
                entries.filter(pl.col("is_from_history") & (pl.col("entered_at") < as_of)).select(
                    "stage"
                ),
                states.select(pl.col("stage_at").alias("stage")),
                states.filter(pl.col("state") == WON).select(
                    pl.lit(funnel.won_stage).alias("stage")
                ),
            ]
        )
        .unique()
        .collect()["stage"]
        .to_list()
    )
    return [stage for stage in funnel.ids if stage in seen]
