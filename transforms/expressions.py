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


# stable_sum: the bits the largest partial sum may take in the 128-bit integers
SUM_BITS = 120.0


def stable_sum(values: pl.Expr) -> pl.Expr:
    """The sum of float values, the same to the last bit on every run, in any row order.

    polars adds floats in parallel chunks whose order and alignment vary from run to run on
    large tables, so a plain sum changes in its last digits. Here each value is put on one
    fixed-point grid, the integers are added exactly in an Int128, and the total is turned
    back into a float once. The grid's unit is 2^(b - 120), where 2^b is the first power of two
    above the largest value times the count (so the sum fits 120 bits): each value loses less
    than that unit, about 1e-36 of such a total; the unit is never below 2^-1020, so a value
    smaller than that (a subnormal float: no amount or share is one) counts as 0. Null values
    are left out; no values sum to 0."""
    bits = (values.abs().max() * values.count()).log(2).ceil().clip(-900.0, 1030.0)
    scale = pl.lit(2.0).pow(pl.lit(SUM_BITS) - bits)
    exact = (values * scale).cast(pl.Int128).sum().cast(pl.Float64) / scale
    return pl.when(values.count() > 0).then(exact).otherwise(0.0)


def stable_mean(values: pl.Expr) -> pl.Expr:
    """The mean of float values, as reproducible as `stable_sum`; null for no values."""
    return pl.when(values.count() > 0).then(stable_sum(values) / values.count())


def as_list(rows: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """A table's rows as the list column `name` of a single row: how a mart that gives a
    section (its figures and its tables) holds each table."""
    return rows.select(pl.struct(pl.all()).implode().alias(name))


def one_row(*parts: pl.LazyFrame) -> pl.LazyFrame:
    """Single-row frames side by side: a section of figures and tables as one row."""
    return pl.concat(parts, how="horizontal")
