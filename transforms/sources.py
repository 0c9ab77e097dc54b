"""Source layouts: which export a file is, and its rows under canonical column names.

Pure: a `Preset` says, per canonical table, which input headers feed each canonical column;
`detect_tables` scores files against presets; `canonical_rows` renames and combines columns,
turns CRM flags into a status, and unpivots HubSpot's "Date entered <stage>" columns into
stage history. Value parsing happens later, in `transforms.parse`.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from schemas.canonical import TABLE_MODELS, required_columns
from transforms.parse import blank_to_null, parse_boolean

TABLES = tuple(TABLE_MODELS)
# required canonical columns: the models' non-nullable ones, but status (derived when absent)
REQUIRED = {
    table: tuple(c for c in required_columns(model) if c != "status")
    for table, model in TABLE_MODELS.items()
}
FLAG_COLUMNS = ("is_won", "is_closed")
DATE_ENTERED = "date_entered"
ROW_COLUMNS = ("_row", "_line", "_file")


def header_key(header: str) -> str:
    return " ".join(header.strip().lower().split())


@dataclass(frozen=True)
class Preset:
    """One export layout: canonical column -> input headers, per table, and value maps."""

    name: str
    label: str
    columns: Mapping[str, Mapping[str, Sequence[str]]]
    stages: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    date_order: str | None = None
    closed_before_created: str | None = None

    def extended(self, other: Preset) -> Preset:
        """This preset with `other`'s columns and value maps laid over it (other's keys win)."""
        columns = {
            t: {**self.columns.get(t, {}), **other.columns.get(t, {})}
            for t in set(self.columns) | set(other.columns)
        }
        return Preset(
            other.name,
            other.label,
            columns,
            {**self.stages, **other.stages},
            {**self.statuses, **other.statuses},
            {**self.channels, **other.channels},
            other.date_order or self.date_order,
        )


@dataclass(frozen=True)
class TableMatch:
    """How a file's header maps onto one canonical table of a preset."""

    table: str
    columns: dict[str, list[str]]  # canonical column -> headers present in the file
    missing: list[str]  # required canonical columns with no header

    @property
    def is_usable(self) -> bool:
        return not self.missing

    @property
    def score(self) -> int:
        return len(self.columns)


def match_header(preset: Preset, table: str, header: Sequence[str]) -> TableMatch:
    """Which of the file's headers feed which canonical column (patterns may use *)."""
    present = {header_key(h): h for h in header}
    columns: dict[str, list[str]] = {}
    for canonical, candidates in preset.columns.get(table, {}).items():
        found = []
        for candidate in candidates:
            key = header_key(candidate)
            if "*" in key:
                found += [h for k, h in present.items() if fnmatch.fnmatchcase(k, key)]
            elif key in present:
                found.append(present[key])
        if found:
            columns[canonical] = found
    missing = [c for c in REQUIRED[table] if c not in columns]
    if table == "stage_history" and DATE_ENTERED in columns:
        missing = []
    return TableMatch(table, columns, missing)


def near_miss_hint(preset: Preset, table: str, header: Sequence[str], missing: str) -> str:
    """'created_at (expected CreatedDate or Created Date; nearest header: 'Create Date')'."""
    expected = list(preset.columns.get(table, {}).get(missing, [missing]))
    pool = {header_key(h): h for h in header}
    near = difflib.get_close_matches(header_key(missing), pool, n=1, cutoff=0.5)
    for candidate in expected:
        near = near or difflib.get_close_matches(header_key(candidate), pool, n=1, cutoff=0.6)
    hint = f"{missing} (expected {' or '.join(repr(e) for e in expected[:3])}"
    return hint + (f"; nearest header: {pool[near[0]]!r})" if near else ")")


def flags_to_status(rows: pl.LazyFrame) -> pl.LazyFrame:
    """`is_won` / `is_closed` flags as a status: won, lost (closed, not won) or open.

    An unreadable flag becomes a status nobody can read, so the row is quarantined naming it.
    """
    names = rows.collect_schema().names()
    flags = [c for c in FLAG_COLUMNS if c in names]
    if not flags:
        return rows
    won = parse_boolean(pl.col("is_won")) if "is_won" in flags else pl.lit(None, pl.Boolean)
    closed = (
        parse_boolean(pl.col("is_closed")) if "is_closed" in flags else pl.lit(None, pl.Boolean)
    )
    unreadable = pl.concat_str(
        [
            pl.when(
                blank_to_null(pl.col(f)).is_not_null() & parse_boolean(pl.col(f)).is_null()
            ).then(pl.format("{}={}", pl.lit(f), pl.col(f)))
            for f in flags
        ],
        ignore_nulls=True,
    )
    from_flags = (
        pl.when(unreadable.str.len_chars() > 0)
        .then(unreadable)
        .when(won)
        .then(pl.lit("won"))
        .when(closed & ~won.fill_null(False))
        .then(pl.lit("lost"))
        .when(closed.is_not_null() | won.is_not_null())
        .then(pl.lit("open"))
    )
    status = blank_to_null(pl.col("status")) if "status" in names else pl.lit(None, pl.String)
    return rows.with_columns(pl.coalesce(status, from_flags).alias("status")).drop(flags)


def canonical_rows(rows: pl.LazyFrame, match: TableMatch, file_name: str) -> pl.LazyFrame:
    """A file's rows under canonical names (first non-blank of the mapped headers per row),
    with `_row`, `_line` and `_file`; flags become a status."""
    mapped = [
        (
            pl.col(headers[0])
            if len(headers) == 1  # no copy: parsing trims blanks later
            else pl.coalesce([blank_to_null(pl.col(h)) for h in headers])
        ).alias(canonical)
        for canonical, headers in match.columns.items()
        if canonical != DATE_ENTERED
    ]
    frame = rows.select(
        pl.col("_row").cast(pl.Int64),
        pl.col("_line").cast(pl.Int64),
        pl.lit(file_name, dtype=pl.Categorical).alias("_file"),
        *mapped,
    )
    return flags_to_status(frame) if match.table == "opportunities" else frame


def date_entered_history(
    rows: pl.LazyFrame, match: TableMatch, file_name: str, *, id_column: str
) -> pl.LazyFrame:
    """HubSpot's `Date entered "<stage> (<pipeline>)"` columns as stage history rows.

    One row per deal and filled column; the stage is the text between `Date entered` and the
    pipeline in brackets, mapped like any stage value later.
    """
    columns = match.columns.get(DATE_ENTERED, [])
    if not columns:
        return pl.LazyFrame(
            schema={
                "_row": pl.Int64,
                "_line": pl.Int64,
                "_file": pl.Categorical,
                "opportunity_id": pl.String,
                "stage": pl.String,
                "entered_at": pl.String,
            }
        )
    return (
        rows.select(
            pl.col("_line").cast(pl.Int64),
            pl.col(id_column).alias("opportunity_id"),
            *[pl.col(c) for c in columns],
        )
        .unpivot(
            index=["_line", "opportunity_id"],
            on=columns,
            variable_name="_header",
            value_name="entered_at",
        )
        .filter(blank_to_null(pl.col("entered_at")).is_not_null())
        .with_columns(
            pl.col("_header")
            .str.replace(r'(?i)^date entered\s*"?', "")
            .str.replace(r'\s*\([^()]*\)\s*"?$', "")
            .str.strip_chars('" ')
            .alias("stage"),
            pl.lit(file_name, dtype=pl.Categorical).alias("_file"),
        )
        .sort("_line", "_header")
        .with_row_index("_row", offset=1)
        .select(
            pl.col("_row").cast(pl.Int64), "_line", "_file", "opportunity_id", "stage", "entered_at"
        )
    )


SNAPSHOT = "_snapshot"


def snapshot_history(observations: pl.LazyFrame) -> pl.LazyFrame:
    """Stage history from dated snapshots: every observed row is a history row at its
    snapshot's date (a deal's first observation at its stage_entered_at when the export has
    one). Rows repeating the stage a deal is already in become amount updates, not visits."""
    names = observations.collect_schema().names()
    first_seen = pl.col(SNAPSHOT) == pl.col(SNAPSHOT).min().over("opportunity_id")
    entered = pl.col(SNAPSHOT)
    if "stage_entered_at" in names:
        entered = (
            pl.when(first_seen)
            .then(pl.coalesce("stage_entered_at", SNAPSHOT))
            .otherwise(pl.col(SNAPSHOT))
        )
    keep = [c for c in ("amount", "expected_close_date") if c in names]
    return observations.select(
        "_source_row",
        "_line",
        "_file",
        "opportunity_id",
        "stage",
        entered.alias("entered_at"),
        *keep,
    )


def latest_observations(observations: pl.LazyFrame) -> pl.LazyFrame:
    """Each deal's row from the latest snapshot it appears in."""
    return observations.filter(
        pl.col(SNAPSHOT) == pl.col(SNAPSHOT).max().over("opportunity_id")
    ).drop(SNAPSHOT)
