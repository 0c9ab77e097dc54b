"""The funnel snapshot (docs/metrics.md `funnel`): open deals per stage at as_of."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN
from funnel_reports.transforms.expressions import stable_sum
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame


def funnel_snapshot(states: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Open deals at as_of: one row per open stage, with count and amount."""
    per_stage = (
        states.filter(pl.col("state") == OPEN)
        .group_by(pl.col("stage_at").alias("stage"))
        .agg(pl.len().alias("count"), stable_sum(pl.col("amount_at")).alias("amount"))
    )
    return (
        stage_frame(funnel)
        .select("stage")
        .join(per_stage, on="stage", how="left", maintain_order="left")
        .with_columns(pl.col("count").fill_null(0).cast(pl.Int64), pl.col("amount").fill_null(0.0))
    )
