"""Segments (DESIGN §5 `segments`): the headline figures per value of each dimension."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import SEGMENT_DIMENSIONS
from funnel_reports.transforms.marts.kpis import headline_figures


def segments(
    states: pl.LazyFrame, *, period_start: datetime, as_of: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Headline figures per value of each segment dimension (blank values as "—"), largest
    open pipeline first."""
    figures = headline_figures(period_start=period_start, as_of=as_of)
    return {
        dimension: states.group_by(pl.col(dimension).fill_null("—").alias("value"))
        .agg(figures)
        .sort(
            [pl.col("won_amount").round(6), pl.col("open_amount").round(6), "value"],
            descending=[True, True, False],
            nulls_last=True,
        )
        .collect()
        .to_dicts()
        for dimension in SEGMENT_DIMENSIONS
    }
