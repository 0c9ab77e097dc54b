"""Named polars expressions that every layer uses: day lengths, intervals, safe ratios."""

from __future__ import annotations

from datetime import datetime

import polars as pl

SECONDS_PER_DAY = 86_400.0


def days_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """(end - start) in seconds / 86400, as a float."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / (SECONDS_PER_DAY * 1e6)


def in_interval(value: pl.Expr, start: datetime | pl.Expr, end: datetime | pl.Expr) -> pl.Expr:
    """`value` lies in the half-open interval [start, end) (bounds fixed or per row)."""
    return (value >= start) & (value < end)


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, null when the denominator is 0."""
    return pl.when(denominator > 0).then(numerator / denominator)
