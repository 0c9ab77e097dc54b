"""Source mapping: a file's rows under canonical column names, in string form.

Pure: `canonical_rows` renames and combines columns and turns CRM flags into a status;
`dated_stage_history` unpivots columns of stage entry dates (HubSpot's "Date entered <stage>",
`[source.stage_dates]`) into stage history;
dated snapshots become stage history in `snapshot_history`. Value parsing comes next, in
`transforms.staging.parse`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

import polars as pl

from funnel_reports.schemas.vocabulary import (
    COMPOSITE_SEPARATOR,
    OPPORTUNITIES,
    READ_REASON,
    TABLES,
)
from funnel_reports.transforms.staging.layout import InputFile, UnusableInputError
from funnel_reports.transforms.staging.parse import blank_or_null_word, blank_to_null, parse_boolean
from funnel_reports.transforms.staging.presets import DATE_ENTERED, FLAG_COLUMNS, TableMatch

SNAPSHOT = "_snapshot"
SOURCE_ROW = "_source_row"  # the row's number within its own file


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
                blank_or_null_word(pl.col(f)).is_not_null() & parse_boolean(pl.col(f)).is_null()
            ).then(pl.format("{}={}", pl.lit(f), pl.col(f)))
            for f in flags
        ],
        separator=", ",
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


def composite_id(parts: Sequence[str]) -> pl.Expr:
    """An id built from several columns (`[source.composite_ids]`): their trimmed values, a
    blank one as empty, joined with COMPOSITE_SEPARATOR; null when every part is blank."""
    values = [blank_to_null(pl.col(h)) for h in parts]
    joined = pl.concat_str([v.fill_null("") for v in values], separator=COMPOSITE_SEPARATOR)
    return pl.when(pl.any_horizontal([v.is_not_null() for v in values])).then(joined)


def mapped_column(match: TableMatch, canonical: str) -> pl.Expr:
    """A canonical column of a file: its one header, the first non-blank of its headers (a
    null word such as None or N/A counts as blank when a later header has a value), or the id
    its composite builds."""
    if canonical in match.composites:
        return composite_id(match.composites[canonical])
    headers = match.columns[canonical]
    if len(headers) == 1:
        return pl.col(headers[0])  # no copy: parsing trims blanks later
    return pl.coalesce(
        [blank_or_null_word(pl.col(h)) for h in headers]
        + [blank_to_null(pl.col(h)) for h in headers]  # the null word, read (and counted) later
    )


def canonical_rows(rows: pl.LazyFrame, match: TableMatch, file_name: str) -> pl.LazyFrame:
    """A file's rows under canonical names (first non-blank of the mapped headers per row,
    or an id built from several), with `_row`, `_line` and `_file`; flags become a status.
    Headers the reader left out (`SourceTable.unread`) map to nothing."""
    names = rows.collect_schema().names()
    read = {c: [h for h in hs if h in names] for c, hs in match.columns.items()}
    read_match = replace(match, columns={c: hs for c, hs in read.items() if hs})
    mapped = [
        mapped_column(read_match, canonical).alias(canonical)
        for canonical in read_match.columns
        if canonical != DATE_ENTERED
    ]
    read_reason = [READ_REASON] if READ_REASON in names else []
    frame = rows.select(
        pl.col("_row").cast(pl.Int64),
        pl.col("_line").cast(pl.Int64),
        pl.lit(file_name, dtype=pl.Categorical).alias("_file"),
        *mapped,
        *read_reason,
    )
    return flags_to_status(frame) if match.table == OPPORTUNITIES else frame


def hubspot_stage(header: str) -> str:
    """The stage of HubSpot's `Date entered "<stage> (<pipeline>)"` header: the text between
    `Date entered` and the pipeline in brackets."""
    stage = re.sub(r'(?i)^date entered\s*"?', "", header)
    return re.sub(r'\s*\([^()]*\)\s*"?$', "", stage).strip('" ')


def dated_stage_history(
    rows: pl.LazyFrame, stage_of: Mapping[str, str], file_name: str, *, id_column: pl.Expr
) -> pl.LazyFrame:
    """Stage history rows from columns that each hold the date a deal entered one stage
    (HubSpot's "Date entered" columns, `[source.stage_dates]`): one row per deal and filled
    column, its stage `stage_of[header]`, mapped like any stage value later."""
    headers = list(stage_of)
    return (
        rows.select(
            pl.col("_line").cast(pl.Int64),
            id_column.alias("opportunity_id"),
            *[pl.col(c) for c in headers],
        )
        .unpivot(
            index=["_line", "opportunity_id"],
            on=headers,
            variable_name="_header",
            value_name="entered_at",
        )
        .filter(blank_or_null_word(pl.col("entered_at")).is_not_null())
        .with_columns(
            pl.col("_header").replace_strict(stage_of, return_dtype=pl.String).alias("stage"),
            pl.lit(file_name, dtype=pl.Categorical).alias("_file"),
        )
        .sort("_line", "_header")
        .with_row_index("_row", offset=1)
        .select(
            pl.col("_row").cast(pl.Int64), "_line", "_file", "opportunity_id", "stage", "entered_at"
        )
    )


def snapshot_history(observations: pl.LazyFrame) -> pl.LazyFrame:
    """Stage history from dated snapshots: every observed row is a history row at its
    snapshot's date (a deal's first observation at its stage_entered_at when the export has
    one). Rows repeating the stage a deal is already in become amount updates, not visits.

    Each row keeps its snapshot (`_snapshot`), its status and close date, and (the first
    observation only) its stage_entered_at: `transforms.staging.outcomes.snapshot_closes`
    dates the closes from them once they are parsed."""
    names = observations.collect_schema().names()
    first_seen = pl.col(SNAPSHOT) == pl.col(SNAPSHOT).min().over("opportunity_id")
    entered = pl.col(SNAPSHOT)
    dated: list[pl.Expr] = []
    if "stage_entered_at" in names:
        entered = (
            pl.when(first_seen)
            .then(pl.coalesce("stage_entered_at", SNAPSHOT))
            .otherwise(pl.col(SNAPSHOT))
        )
        dated.append(pl.when(first_seen).then(pl.col("stage_entered_at")).alias("stage_entered_at"))
    keep = [c for c in ("amount", "expected_close_date", "status", "closed_at") if c in names]
    return observations.select(
        "_source_row",
        "_line",
        "_file",
        "opportunity_id",
        "stage",
        entered.alias("entered_at"),
        *keep,
        *dated,
        SNAPSHOT,
    )


def latest_observations(observations: pl.LazyFrame) -> pl.LazyFrame:
    """Each deal's row from the latest snapshot it appears in."""
    return observations.filter(
        pl.col(SNAPSHOT) == pl.col(SNAPSHOT).max().over("opportunity_id")
    ).drop(SNAPSHOT)


def numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """`_row` 1..n over a canonical table assembled from several files."""
    return frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def canonical_tables(
    used: list[InputFile], stage_dates: Mapping[str, str] | None = None
) -> dict[str, pl.DataFrame]:
    """Per canonical table, the rows of every file feeding it, numbered 1.. in `_row`.

    Columns that hold the date a deal entered a stage become stage history rows: HubSpot's
    "Date entered" columns, and the opportunities' columns `stage_dates` names (stage ->
    header, `[source.stage_dates]`)."""
    parts: dict[str, list[pl.LazyFrame]] = {t: [] for t in TABLES}
    for file in used:
        rows = file.source.rows.lazy()
        parts[file.table].append(canonical_rows(rows, file.match, file.name))
        stage_of = {h: hubspot_stage(h) for h in file.match.columns.get(DATE_ENTERED, [])}
        label = "Date entered"
        if file.table == OPPORTUNITIES and stage_dates:
            missing = [h for h in stage_dates.values() if h not in file.source.header]
            if missing:
                raise UnusableInputError(
                    f"{file.source.path}: has no column {', '.join(repr(h) for h in missing)} "
                    f"named in [source.stage_dates]; its columns are "
                    f"{', '.join(file.source.header)}"
                )
            stage_of |= {header: stage for stage, header in stage_dates.items()}
            label = "stage dates"
        if stage_of:
            parts["stage_history"].append(
                dated_stage_history(
                    rows,
                    stage_of,
                    f"{file.name} ({label})",
                    id_column=mapped_column(file.match, "opportunity_id"),
                )
            )
    return {
        table: numbered(pl.concat(frames, how="diagonal").collect().rename({"_row": "_source_row"}))
        for table, frames in parts.items()
        if frames
    }
