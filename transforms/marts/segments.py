"""Segments (docs/metrics.md `segments`): the headline figures per value of each dimension."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import SEGMENT_DIMENSIONS
from funnel_reports.transforms.expressions import as_list, one_row
from funnel_reports.transforms.marts.kpis import headline_figures
from funnel_reports.transforms.periods import Window


def segments(states: pl.LazyFrame, *, window: Window) -> pl.LazyFrame:
    """Headline figures of the period per value of each segment dimension (blank values as
    "—"), largest won amount first: a single row, a table per dimension."""
    figures = headline_figures(start=window.start, as_of=window.as_of)
    return one_row(
        *(
            as_list(
                states.group_by(pl.col(dimension).fill_null("—").alias("value"))
                .agg(figures)
                .sort(
                    [pl.col("won_amount").round(6), pl.col("open_amount").round(6), "value"],
                    descending=[True, True, False],
                    nulls_last=True,
                ),
                dimension,
            )
            for dimension in SEGMENT_DIMENSIONS
        )
    )
