"""Stage conversion (docs/metrics.md `conversion`): flow and cohort rates of each adjacent pair."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import LOST
from funnel_reports.transforms.expressions import in_interval, ratio
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Window


def conversion(
    reaches: pl.LazyFrame,
    states: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    window: Window,
    immature_open_share: float,
) -> pl.DataFrame:
    """Flow and cohort conversion: one row per adjacent pair of stages (from, to).

    `entries_*` count deals whose first reach of the stage lies in P; the cohort of a stage
    holds the deals that first reached it in W; `advanced` members also reached the next
    stage (a deal's reaches are the stages 0..k, so any later row means it did), `lost` the
    others lost by as_of; `cohort_size_to` is the next stage's cohort (the won bar of a funnel
    that ends at won). Post-sale steps have no resolved rate.
    """
    counts = stage_counts(reaches, states, window=window)
    n, adv, lost = pl.col("cohort_size"), pl.col("advanced"), pl.col("lost")
    is_post_sale = pl.col("stage_index") >= funnel.won_index
    return (
        stage_frame(funnel, open_only=False)
        .join(counts, on="stage", how="left")
        .sort("stage_index")
        .with_columns(pl.col("entries", "cohort_size", "advanced", "lost").fill_null(0))
        .select(
            pl.col("stage").alias("from"),
            pl.col("stage").shift(-1).alias("to"),
            pl.col("entries").alias("entries_from"),
            pl.col("entries").shift(-1).alias("entries_to"),
            ratio(pl.col("entries").shift(-1), pl.col("entries")).alias("flow_rate"),
            n,
            n.shift(-1).alias("cohort_size_to"),
            adv,
            lost,
            (n - adv - lost).alias("open"),
            ratio(adv, n).alias("cohort_rate"),
            pl.when(~is_post_sale).then(ratio(adv, adv + lost)).alias("resolved_rate"),
            ((n > 0) & (ratio(n - adv - lost, n) > immature_open_share))
            .fill_null(False)
            .alias("is_immature"),
        )
        .head(len(funnel.ids) - 1)
        .cast({pl.UInt32: pl.Int64})
        .collect()
    )


def stage_counts(reaches: pl.LazyFrame, states: pl.LazyFrame, *, window: Window) -> pl.LazyFrame:
    """Per stage (by its id, so that a funnel with stages folded out joins the counts of the
    stages it keeps): deals that first reached it in P (`entries`), its cohort in W, and the
    cohort's members that advanced and that were lost by as_of."""
    reached_next = pl.col("reached_next")
    in_cohort = in_interval(pl.col("reached_at"), window.window_start, window.as_of)
    return (
        reaches.join(states.select("opportunity_id", "state"), on="opportunity_id")
        .with_columns(advanced().alias("reached_next"))
        .group_by("stage")
        .agg(
            in_interval(pl.col("reached_at"), window.start, window.as_of).sum().alias("entries"),
            in_cohort.sum().alias("cohort_size"),
            (in_cohort & reached_next).sum().alias("advanced"),
            (in_cohort & ~reached_next & (pl.col("state") == LOST)).sum().alias("lost"),
        )
    )


def advanced() -> pl.Expr:
    """A stage reach followed by another of the same deal (its reaches are the stages 0..k,
    so any later one means it went on): a cohort member that advanced."""
    return pl.col("stage_index") < pl.col("stage_index").max().over("opportunity_id")
