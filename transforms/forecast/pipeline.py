"""The forecast (docs/metrics.md `forecast`): the stage-weighted open pipeline at as_of and the part
expected to close in the next period."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN
from funnel_reports.transforms.expressions import as_list, one_row, stable_sum
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Period


def weighted_open_deals(states: pl.LazyFrame, probabilities: pl.DataFrame) -> pl.LazyFrame:
    """Open deals at as_of with the win probability of their stage and amount × p_win."""
    p_win = probabilities.lazy().select(pl.col("stage").alias("stage_at"), "p_win")
    return (
        states.filter(pl.col("state") == OPEN)
        .join(p_win, on="stage_at", how="left")
        .with_columns((pl.col("amount_at") * pl.col("p_win")).alias("weighted_amount"))
    )


def forecast(
    weighted: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    next_period: Period,
    probabilities_known: bool,
) -> pl.LazyFrame:
    """Stage-weighted pipeline at as_of, and the part of it expected to close in the next
    period by the CRM's expected close date (the stage-weighted baseline of the backtest),
    with the open pipeline by_stage[]: a single row. Without every stage's win probability
    nothing is weighted."""
    in_next = (pl.col("expected_close_date_at") >= next_period.start_date) & (
        pl.col("expected_close_date_at") < next_period.end_date
    )
    known = pl.lit(probabilities_known)
    totals = weighted.select(
        pl.when(known).then(stable_sum(pl.col("weighted_amount"))).alias("weighted_pipeline"),
        pl.when(known)
        .then(stable_sum(pl.col("weighted_amount").filter(in_next)))
        .alias("stage_weighted_next_period"),
        pl.col("amount_at").is_null().sum().cast(pl.Int64).alias("unpriced_count"),
    )
    by_stage = (
        stage_frame(funnel)
        .select("stage")
        .join(
            weighted.group_by(pl.col("stage_at").alias("stage")).agg(
                pl.len().alias("open_count"),
                stable_sum(pl.col("amount_at")).alias("open_amount"),
                stable_sum(pl.col("weighted_amount")).alias("weighted_amount"),
            ),
            on="stage",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.col("open_count").fill_null(0),
            pl.col("open_amount").fill_null(0.0),
            pl.when(known).then(pl.col("weighted_amount").fill_null(0.0)).alias("weighted_amount"),
        )
    )
    return one_row(totals, as_list(by_stage, "by_stage"))
