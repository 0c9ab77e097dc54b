"""Typed canonical tables from raw string columns, with a reason for every value that can't be read.

One row in, one row out: `_row` (the input row number) is kept, and `_parse_reasons` lists the
values that could not be read. A value that cannot be read becomes null *and* a reason, never a
silent null.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from transforms.funnel_model import FunnelModel

REASONS = "_parse_reasons"
NAIVE_TIMESTAMP_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
ZONED_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z")


def blank_to_null(raw: pl.Expr) -> pl.Expr:
    """Trimmed text; empty or whitespace-only is null."""
    text = raw.str.strip_chars()
    return pl.when(text.str.len_chars() > 0).then(text)


def parse_timestamp(raw: pl.Expr, *, timezone: str) -> pl.Expr:
    """ISO 8601 with or without a zone, as UTC; naive values are read in `timezone`."""
    text = blank_to_null(raw).str.replace(" ", "T").str.replace(r"(?i)Z$", "+00:00")
    text = text.str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2")
    zoned = pl.coalesce(
        [
            text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            for f in ZONED_TIMESTAMP_FORMATS
        ]
    )
    naive_text = blank_to_null(raw)
    naive = pl.coalesce(
        [
            naive_text.str.to_datetime(f, strict=False, time_unit="us")
            for f in NAIVE_TIMESTAMP_FORMATS
        ]
    )
    local = naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    return pl.coalesce(zoned, local.dt.convert_time_zone("UTC"))


def parse_date(raw: pl.Expr) -> pl.Expr:
    """`YYYY-MM-DD`, also when a time follows (`2024-06-30T00:00:00`: the date part)."""
    text = blank_to_null(raw)
    dated = pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")).then(
        text.str.slice(0, 10)
    )
    return dated.str.to_date("%Y-%m-%d", strict=False)


def parse_amount(raw: pl.Expr) -> pl.Expr:
    return blank_to_null(raw).cast(pl.Float64, strict=False)


def stage_lookup(funnel: FunnelModel) -> dict[str, str]:
    """Lower-cased stage id, English label, Chinese label and aliases -> stage id."""
    lookup: dict[str, str] = {}
    for stage in funnel.stages:
        for name in (stage.id, stage.label_en, stage.label_zh, *stage.aliases):
            lookup[name.strip().lower()] = stage.id
    return lookup


def parse_stage(raw: pl.Expr, *, funnel: FunnelModel) -> pl.Expr:
    lookup = stage_lookup(funnel)
    return (
        blank_to_null(raw)
        .str.to_lowercase()
        .replace_strict(list(lookup), list(lookup.values()), default=None, return_dtype=pl.String)
    )


def parsed_column(name: str, dtype: pl.DataType, *, funnel: FunnelModel, timezone: str) -> pl.Expr:
    raw = pl.col(name)
    if name == "stage":
        return parse_stage(raw, funnel=funnel)
    if name in ("status", "channel"):
        return blank_to_null(raw).str.to_lowercase()
    if isinstance(dtype, pl.Datetime):
        return parse_timestamp(raw, timezone=timezone)
    if dtype == pl.Date:
        return parse_date(raw)
    if dtype == pl.Float64:
        return parse_amount(raw)
    return blank_to_null(raw)


def _kind(name: str, dtype: pl.DataType) -> str:
    if name == "stage":
        return "stage"
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if dtype == pl.Date:
        return "date (YYYY-MM-DD)"
    return "number"


def parse_table(
    raw: pl.LazyFrame,
    *,
    columns: Mapping[str, pl.DataType],
    funnel: FunnelModel,
    timezone: str,
) -> pl.LazyFrame:
    """The typed table: every canonical column (null when absent), `_row`, `_parse_reasons`."""
    present = set(raw.collect_schema().names())
    typed: list[pl.Expr] = []
    reasons: list[pl.Expr] = []
    for name, dtype in columns.items():
        if name not in present:
            typed.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        value = parsed_column(name, dtype, funnel=funnel, timezone=timezone)
        typed.append(value.cast(dtype).alias(name))
        if dtype != pl.String or name == "stage":
            unreadable = blank_to_null(pl.col(name)).is_not_null() & value.is_null()
            reasons.append(
                pl.when(unreadable).then(
                    pl.format(
                        "{}: cannot read as a {} (got '{}')",
                        pl.lit(name),
                        pl.lit(_kind(name, dtype)),
                        pl.col(name),
                    )
                )
            )
    reason_list = (
        pl.concat_list(reasons).list.drop_nulls()
        if reasons
        else pl.lit([], dtype=pl.List(pl.String))
    )
    return raw.select(pl.col("_row"), *typed, reason_list.alias(REASONS))


LOST_STAGE_VALUES = ("lost",)
STAGE_FROM_HISTORY = "_stage_from_history"


def lost_stage_to_status(raw: pl.LazyFrame) -> pl.LazyFrame:
    """Raw opportunities where `stage` says lost: status lost, stage left to the history.

    Lost is an outcome, not a stage: such a deal's stage is the last one its history shows
    (see `stage_from_history`), and `_stage_from_history` marks it.
    """
    names = raw.collect_schema().names()
    if "stage" not in names:
        return raw.with_columns(pl.lit(False).alias(STAGE_FROM_HISTORY))
    is_lost = pl.col("stage").str.strip_chars().str.to_lowercase().is_in(LOST_STAGE_VALUES)
    status = pl.col("status") if "status" in names else pl.lit(None, dtype=pl.String)
    return raw.with_columns(
        is_lost.fill_null(False).alias(STAGE_FROM_HISTORY),
        pl.when(is_lost)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(is_lost & blank_to_null(status).is_null())
        .then(pl.lit("lost"))
        .otherwise(status)
        .alias("status"),
    )


def stage_from_history(
    opportunities: pl.LazyFrame, history: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Fill the stage of deals marked `_stage_from_history` with their last history stage,
    or the first stage when they have no history; drop the mark."""
    index = {stage: i for i, stage in enumerate(funnel.ids)}
    last = (
        history.filter(pl.col("stage").is_not_null() & pl.col("entered_at").is_not_null())
        .with_columns(pl.col("stage").replace_strict(index, return_dtype=pl.Int32).alias("_i"))
        .group_by("opportunity_id")
        .agg(pl.col("stage").sort_by("entered_at", "_i").last().alias("_last_stage"))
    )
    marked = pl.col(STAGE_FROM_HISTORY).fill_null(False)
    return (
        opportunities.join(last, on="opportunity_id", how="left")
        .with_columns(
            pl.when(marked)
            .then(pl.coalesce("_last_stage", pl.lit(funnel.ids[0])))
            .otherwise(pl.col("stage"))
            .alias("stage")
        )
        .drop("_last_stage", STAGE_FROM_HISTORY)
    )


def derive_status(opportunities: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Opportunities with `status` filled when empty: won when the stage is won or later, else
    open (also when the stage itself is unreadable: that row is quarantined for its stage)."""
    won_stages = funnel.ids[funnel.won_index :]
    derived = (
        pl.when(pl.col("stage").is_in(won_stages)).then(pl.lit("won")).otherwise(pl.lit("open"))
    )
    return opportunities.with_columns(pl.coalesce(pl.col("status"), derived).alias("status"))
