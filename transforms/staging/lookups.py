"""Lookups: side files of the input folder joined to the opportunities by a key, filling
canonical columns (customer names from an account file, owner names from a user file, an
amount from a price list).

Pure, on strings, before any value is parsed: a looked-up value is read and checked like any
other. Where the key matches, the looked-up value replaces the opportunity's own (an owner id
becomes the owner's name); `amount` only fills a deal without one, and such an amount is
counted as estimated. A key that matches nothing is counted, never silently blank.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from funnel_reports.transforms.funnel_model import Lookup
from funnel_reports.transforms.staging.layout import InputFile, SourceTable, UnusableInputError
from funnel_reports.transforms.staging.parse import blank_to_null

ESTIMATED_ONLY = ("amount",)  # filled only where the opportunity has none


def side_values(lookup: Lookup, side: SourceTable) -> pl.LazyFrame:
    """The side file's key and looked-up columns, one row per key (the first)."""
    missing = [h for h in (lookup.key, *lookup.columns.values()) if h not in side.header]
    if missing:
        raise UnusableInputError(
            f"{side.path}: has no column {', '.join(repr(h) for h in missing)} named in "
            f"[source.lookups.{lookup.name}]; its columns are {', '.join(side.header)}"
        )
    return (
        side.rows.lazy()
        .select(
            blank_to_null(pl.col(lookup.key).str.strip_chars()).alias("_key"),
            *[blank_to_null(pl.col(h)).alias(f"_looked_{c}") for c, h in lookup.columns.items()],
            pl.lit(True).alias("_matched"),
        )
        .filter(pl.col("_key").is_not_null())
        .unique("_key", keep="first", maintain_order=True)
    )


def lookup_keys(files: list[InputFile], lookup: Lookup) -> pl.LazyFrame:
    """Each opportunity row's lookup key (`lookup.on`, trimmed; blank is none), by its file
    and its row in the file."""
    return pl.concat(
        [
            f.source.rows.lazy().select(
                pl.lit(f.name).alias("_file"),
                pl.col("_row").cast(pl.Int64).alias("_source_row"),
                blank_to_null(pl.col(lookup.on).str.strip_chars()).alias("_key"),
            )
            for f in files
            if f.table == "opportunities" and lookup.on in f.source.header
        ]
        or [pl.LazyFrame(schema={"_file": pl.String, "_source_row": pl.Int64, "_key": pl.String})]
    )


def with_lookup(
    opportunities: pl.DataFrame, files: list[InputFile], lookup: Lookup, side: SourceTable
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The canonical opportunities (strings, `_file` and `_source_row` naming each row's
    origin) with the lookup's columns filled, and what it did: keys matched and unmatched,
    values filled per column."""
    keys = lookup_keys(files, lookup)
    looked = (
        opportunities.lazy()
        .with_columns(pl.col("_file").cast(pl.String).alias("_file_name"))
        .join(
            keys.rename({"_file": "_file_name"}),
            on=["_file_name", "_source_row"],
            how="left",
            maintain_order="left",
        )
        .join(side_values(lookup, side), on="_key", how="left", maintain_order="left")
        .collect()
    )
    matched = looked["_matched"].fill_null(False)
    filled: dict[str, int] = {}
    columns = []
    for column in lookup.columns:
        own = (
            blank_to_null(pl.col(column))
            if column in looked.columns
            else pl.lit(None, dtype=pl.String)
        )
        value = pl.col(f"_looked_{column}")
        if column in ESTIMATED_ONLY:
            fills = own.is_null() & value.is_not_null()
            columns.append(pl.coalesce(own, value).alias(column))
        else:
            fills = value.is_not_null()
            columns.append(pl.coalesce(value, own).alias(column))
        filled[column] = int(looked.select(fills.sum()).item())
    result = looked.with_columns(columns).select(
        *opportunities.columns, *[c for c in lookup.columns if c not in opportunities.columns]
    )
    report = {
        "name": lookup.name,
        "file": side.name,
        "on": lookup.on,
        "key": lookup.key,
        "matched": int(matched.sum()),
        "unmatched": int((looked["_key"].is_not_null() & ~matched).sum()),
        "without_key": int(looked["_key"].is_null().sum()),
        "filled": filled,
    }
    return result, report


def joined_lookups(
    opportunities: pl.DataFrame,
    files: list[InputFile],
    tables: list[SourceTable],
    *,
    optional: tuple[Lookup, ...],
    required: tuple[Lookup, ...],
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """The opportunities with every lookup joined whose side file is in the folder: a
    preset's (`optional`) when present, funnel.toml's (`required`) always, else the run
    stops naming the file. Returns what each lookup did, as `with_lookup` says it."""
    reports = []
    for lookup in (*optional, *required):
        side = next((t for name in lookup.files for t in tables if t.name == name), None)
        if side is None:
            if lookup in required:
                raise UnusableInputError(
                    f"{lookup.files[0]}: named in [source.lookups.{lookup.name}] but not in the "
                    f"input folder; it holds {', '.join(t.name for t in tables)}"
                )
            continue
        opportunities, report = with_lookup(opportunities, files, lookup, side)
        reports.append(report)
    return opportunities, reports
