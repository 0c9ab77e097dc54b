"""Checked inputs: the canonical raw tables parsed to types, every row rule applied, and each
row either valid or quarantined with all its reasons; the counts per table and per file.

Pure: what `flows.io.exports` read goes in, what a run keeps comes out (`CheckedInputs`).
Tables of a million rows are transformed lazily (`frame.lazy()....collect()`): an eager
operation on a frame that polars' streaming engine produced first realigns the chunks of every
column, a copy of the whole table.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import polars as pl

from funnel_reports.schemas.canonical import NOT_ANALYSED, TABLE_MODELS, column_types
from funnel_reports.schemas.reasons import CREATED_MOVED_BACK
from funnel_reports.schemas.validation import (
    ValidatedTable,
    reason_category,
    reason_counts,
    validate_table,
)
from funnel_reports.schemas.vocabulary import (
    FOLLOWUPS,
    KEEP,
    OPPORTUNITIES,
    REASON_SEPARATOR,
    STAGE_HISTORY,
    WON,
)
from funnel_reports.transforms.freshness import data_as_of
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.currency import in_report_currency
from funnel_reports.transforms.staging.layout import InputFile, Inputs, TypedTable
from funnel_reports.transforms.staging.mapping import SNAPSHOT
from funnel_reports.transforms.staging.masking import mask_contacts, masked_table
from funnel_reports.transforms.staging.outcomes import (
    CLOSE_UNKNOWN,
    MOVED_CREATED,
    SNAPSHOT_COLUMNS,
    STAGE_FROM_HISTORY,
    derive_status,
    loss_from_history,
    lost_stage_to_status,
    settle_close_dates,
    snapshot_close_dates,
    snapshot_closes,
    stage_from_history,
)
from funnel_reports.transforms.staging.parse import (
    parse_stage,
    parsed_table,
    plausible_dates,
    stage_lookup,
)
from funnel_reports.transforms.staging.rules import (
    history_after_loss_reasons,
    history_before_created_reasons,
    opportunity_rule_reasons,
    orphan_reasons,
)


def rows_numbered(frame: pl.DataFrame, numbers: pl.Series) -> pl.DataFrame:
    """The rows of a table numbered 1..n in order (a canonical table's `_row`, a file's
    `_row`) with the given numbers: row r sits at index r - 1, so no join is needed."""
    return frame[numbers.cast(pl.Int64) - 1]


def typed_table(
    raw: pl.DataFrame | None,
    table: str,
    settings: RunSettings,
    headers: dict[str, str] | None = None,
) -> TypedTable:
    """Parsed canonical columns of a table, or an empty table when no file feeds it, and per
    column the cells that held a null word (None, NULL, N/A, NaN, -)."""
    columns = column_types(TABLE_MODELS[table])
    frame = raw if raw is not None else pl.DataFrame(schema={"_row": pl.Int64})
    if table == STAGE_HISTORY and SNAPSHOT in frame.columns:  # what dates a snapshot's close
        columns |= {c: t for c, t in SNAPSHOT_COLUMNS.items() if c in frame.columns}
    if table == OPPORTUNITIES:
        frame = lost_stage_to_status(
            frame.lazy(), funnel=settings.funnel, options=settings.parse
        ).collect()
    parsed = parsed_table(
        frame.lazy(),
        columns=columns,
        funnel=settings.funnel,
        options=settings.parse,
        timezone=settings.timezone,
        headers=headers,
        untyped=NOT_ANALYSED[table],
    )
    typed = plausible_dates(  # parsed_table keeps the rows in their order
        parsed.frame.collect(),
        frame,
        columns=columns,
        options=settings.parse,
        timezone=settings.timezone,
        headers=headers,
    )
    if table == OPPORTUNITIES:
        typed = typed.hstack([frame[STAGE_FROM_HISTORY]]).with_columns(
            # a won deal's own closing amount, where the export keeps one apart
            pl.when((pl.col("status") == WON) & pl.col("won_amount").is_not_null())
            .then(pl.col("won_amount"))
            .otherwise(pl.col("amount"))
            .alias("amount")
        )
    return typed, parsed.null_words


def input_headers(files: list[InputFile], table: str) -> dict[str, str]:
    """Canonical column -> the input header it came from (the first file's), for messages."""
    for file in files:
        if file.table == table:
            return {c: headers[0] for c, headers in file.match.columns.items()}
    return {}


def validate_inputs(inputs: Inputs) -> dict[str, ValidatedTable]:
    """Valid rows and quarantined rows of every canonical table, opportunities first."""
    settings = inputs.settings
    funnel = settings.funnel

    null_words: dict[str, dict[str, int]] = {}

    def typed(table: str) -> pl.DataFrame:
        frame, null_words[table] = inputs.typed.get(table) or typed_table(
            inputs.raw.get(table), table, settings, input_headers(inputs.files, table)
        )
        return frame

    history, opportunities = typed(STAGE_HISTORY), typed(OPPORTUNITIES)
    dated, closes = snapshot_closes(history.lazy(), funnel=funnel)  # dated snapshots
    history = dated.collect()
    currencies: list[dict[str, Any]] = []
    if settings.rates is not None:  # every amount in the report currency, before any rule
        opportunities, history, currencies = in_report_currency(
            opportunities, history, rates=settings.rates, report_currency=settings.currency
        )
    opportunities = with_outcomes(opportunities, history, closes, settings)
    moved = int(opportunities[MOVED_CREATED].sum())
    rules = opportunity_rule_reasons(opportunities.lazy(), history.lazy(), funnel=funnel).collect()
    opportunities = (
        opportunities.lazy()
        .drop(MOVED_CREATED, CLOSE_UNKNOWN, STAGE_FROM_HISTORY, strict=False)
        .collect()
    )
    notes = ({"note": CREATED_MOVED_BACK, "rows": moved},) if moved else ()
    validated = {
        OPPORTUNITIES: replace(
            validate_table(OPPORTUNITIES, opportunities, TABLE_MODELS[OPPORTUNITIES], rules),
            notes=notes,
            currencies=tuple(currencies),
        )
    }
    valid_opps = validated[OPPORTUNITIES].valid.lazy()
    quarantined_ids = opportunities.lazy().join(
        validated[OPPORTUNITIES].quarantined.lazy().select("_row"), on="_row", how="semi"
    )
    for table in (STAGE_HISTORY, FOLLOWUPS):
        rows = history if table == STAGE_HISTORY else typed(table)
        rules = child_rule_reasons(table, rows, valid_opps, quarantined_ids, settings.timezone)
        validated[table] = validate_table(table, rows, TABLE_MODELS[table], rules)
    return {
        table: replace(checked, null_words=null_words[table])
        for table, checked in validated.items()
    }


def with_outcomes(
    opportunities: pl.DataFrame,
    history: pl.DataFrame,
    closes: pl.LazyFrame | None,
    settings: RunSettings,
) -> pl.DataFrame:
    """The deals with what their history and snapshots say of their outcome: close dates
    dated by snapshots, the stage and status the history gives, the loss, and close dates
    settled against creation (`transforms.staging.outcomes`)."""
    funnel = settings.funnel
    return (
        opportunities.lazy()
        .pipe(snapshot_close_dates, closes)
        .pipe(stage_from_history, history.lazy(), funnel=funnel)
        .pipe(derive_status, funnel=funnel)
        .pipe(loss_from_history, history.lazy())
        .pipe(
            settle_close_dates,
            keep_closed_before_created=settings.parse.closed_before_created == KEEP,
            timezone=settings.timezone,
        )
        .collect()
    )


def child_rule_reasons(
    table: str,
    rows: pl.DataFrame,
    valid_opportunities: pl.LazyFrame,
    quarantined_ids: pl.LazyFrame,
    timezone: str,
) -> pl.DataFrame:
    """The rule reasons of a table of a deal's rows (stage history, follow-ups): an unknown
    or quarantined deal, and for the history an entry after the loss or before creation."""
    reasons = [orphan_reasons(rows.lazy(), valid_opportunities, quarantined_ids)]
    if table == STAGE_HISTORY:
        reasons.append(history_after_loss_reasons(rows.lazy(), valid_opportunities))
        reasons.append(
            history_before_created_reasons(rows.lazy(), valid_opportunities, timezone=timezone)
        )
    return pl.concat(reasons).collect()


def masked_reasons(counts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reason counts with any contact data in a reason's text masked."""
    if not counts:
        return counts
    return pl.DataFrame(counts).with_columns(mask_contacts(pl.col("reason"))).to_dicts()


def data_quality(inputs: Inputs, validated: dict[str, ValidatedTable]) -> dict[str, Any]:
    """Per canonical table: rows read, valid, quarantined, reasons, and the same per file."""
    quality = {}
    for name, table in validated.items():
        raw = inputs.raw.get(name, pl.DataFrame(schema={"_row": pl.Int64, "_file": pl.Categorical}))
        bad = rows_numbered(raw.select("_file"), table.quarantined["_row"])
        counts = dict(raw.select("_file").group_by("_file", maintain_order=True).len().iter_rows())
        names = [f.name for f in inputs.files if f.table == name]
        names += [n for n in counts if n not in names]
        per_file = []
        for file_name in names:
            rows = counts.get(file_name, 0)
            quarantined = bad.filter(pl.col("_file") == file_name).height
            per_file.append(
                {
                    "file": file_name,
                    "rows_read": rows,
                    "rows_valid": rows - quarantined,
                    "rows_quarantined": quarantined,
                }
            )
        quality[name] = {
            "rows_read": table.rows_read,
            "rows_valid": table.rows_valid,
            "rows_quarantined": table.rows_quarantined,
            "reasons": masked_reasons(reason_counts(table)),
            "notes": list(table.notes),
            "unknown_stages": unknown_stages(raw, inputs.settings),
            "null_words": {
                "cells": sum(table.null_words.values()),
                "columns": dict(table.null_words),
            },
            "files": per_file,
        }
    return quality


def unknown_stages(raw: pl.DataFrame, settings: RunSettings) -> list[dict[str, Any]]:
    """Stage values that no stage id, label, alias or [source.stages] entry names (their rows
    are quarantined), most rows first, each with the stage its name is most like (or None):
    what `[source.stages] "<value>" = "<stage>"` would map."""
    if "stage" not in raw.columns:
        return []
    values = (
        raw.lazy()
        .group_by("stage")  # each distinct value once, then as it reads trimmed
        .agg(pl.len().alias("rows"))
        .with_columns(pl.col("stage").str.strip_chars())
        .filter(pl.col("stage") != "")
        .group_by("stage")
        .agg(pl.col("rows").sum())
        .filter(
            parse_stage(pl.col("stage"), funnel=settings.funnel, options=settings.parse).is_null()
        )
        .sort(["rows", "stage"], descending=[True, False])
        .collect()
    )
    known = stage_lookup(settings.funnel, settings.parse)
    return [
        {
            "value": value,
            "rows": rows,
            "suggested_stage": next(
                (
                    known[k]
                    for k in difflib.get_close_matches(value.lower(), known, n=1, cutoff=0.6)
                ),
                None,
            ),
        }
        for value, rows in values.iter_rows()
    ]


def quarantine_rows(
    raw: pl.DataFrame, table: ValidatedTable, files: list[InputFile]
) -> pl.DataFrame:
    """Quarantined rows as they came in (their file's own columns that were read), with file,
    line number, every reason, and `_source_row` (the record's number in its file, for
    `flows.io.exports.whole_quarantine` to read the other columns again). `_line` is where
    the record starts, the header being line 1."""
    keys = pl.concat(
        [
            table.quarantined,
            rows_numbered(raw.select("_file", "_line", "_source_row"), table.quarantined["_row"]),
        ],
        how="horizontal",
    )
    reasons = pl.col("reasons").list.join(REASON_SEPARATOR).alias("_reasons")
    parts = []
    for file in files:
        mine = keys.filter(pl.col("_file") == file.name)
        if mine.height == 0:
            continue
        read = [h for h in file.source.header if h not in file.source.unread]
        kept = mine.select("_file", "_line", reasons, "_source_row")
        if read:  # else every column is read again (`flows.io.exports.whole_quarantine`)
            original = rows_numbered(file.source.rows.select(read), mine["_source_row"])
            kept = pl.concat([kept, original], how="horizontal")
        parts.append(kept)
    derived = keys.filter(~pl.col("_file").is_in([f.name for f in files]))
    if derived.height:  # rows made from other rows (HubSpot's "Date entered" columns)
        values = [c for c in raw.columns if not c.startswith("_")]
        parts.append(
            pl.concat(
                [
                    derived.select("_file", "_line", reasons),
                    rows_numbered(raw.select(values), derived["_row"]),
                ],
                how="horizontal",
            )
        )
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts, how="diagonal")
        .with_columns(pl.col("_file").cast(pl.String))
        .sort("_file", "_line")
    )


def input_summary(inputs: Inputs, quality: dict[str, Any]) -> list[dict[str, Any]]:
    """Per input file: where it is, its SHA-256, how it was read, and its row counts. Every
    row of a dated snapshot's file is an observation of a deal, a stage-history row: its
    counts are those (each deal's latest row is also its opportunity)."""
    per_file = {(table, f["file"]): f for table, t in quality.items() for f in t["files"]}

    def counts(f: InputFile) -> dict[str, Any]:
        table = STAGE_HISTORY if f.source.folder and f.table == OPPORTUNITIES else f.table
        return per_file[(table, f.name)]

    return [
        {
            "table": f.table,
            "name": f.name,
            "path": str(f.source.path),
            "sha256": f.source.sha256,
            "encoding": f.source.encoding,
            "delimiter": f.source.delimiter,
            "rows": f.rows,
            "rows_valid": counts(f)["rows_valid"],
            "rows_quarantined": counts(f)["rows_quarantined"],
        }
        for f in inputs.files
    ]


@dataclass(frozen=True)
class CheckedInputs:
    """What a run keeps of its inputs once they are validated; the raw rows can then go.

    `tables` holds the valid rows of each canonical table without their row numbers and the
    columns no figure reads (contact details, free text: `NOT_ANALYSED`) and with phone
    numbers and email addresses masked inside the free text that is left
    (`transforms.staging.masking`); `quarantine` the quarantined rows as they came in, ready
    to write (they are never mailed).
    """

    tables: dict[str, pl.DataFrame]
    quality: dict[str, Any]
    quarantine: dict[str, pl.DataFrame]
    files: list[dict[str, Any]]
    source: dict[str, Any]
    settings: RunSettings
    history_available: bool
    not_recorded: tuple[str, ...] = ()
    data_as_of: datetime | None = None  # the export's latest record (transforms.freshness)


def not_recorded(inputs: Inputs) -> tuple[str, ...]:
    """What the export does not hold: each canonical table no file feeds (`followups`), and
    each column of a table that no file of it maps (`opportunities.stall_reason`)."""
    absent: list[str] = []
    for table, model in TABLE_MODELS.items():
        if table not in inputs.raw:
            absent.append(table)
            continue
        mapped = {c for f in inputs.files if f.table == table for c in f.match.columns}
        if table == OPPORTUNITIES:
            mapped |= {c for lookup in inputs.lookups for c in lookup["filled"]}
        absent += [f"{table}.{c}" for c in column_types(model) if c not in mapped]
    return tuple(absent)


def currency_summary(settings: RunSettings, opportunities: ValidatedTable) -> dict[str, Any]:
    """metrics.json `source.currency`: the report currency, where the rates came from (null
    when every amount was in it already), and per currency of the export its deals and the
    rates used, in units per one unit of the report currency."""
    rates = settings.rates
    return {
        "report_currency": settings.currency,
        "rates_from": rates.source if rates else None,
        "converted": list(opportunities.currencies),
    }


def check_inputs(inputs: Inputs) -> CheckedInputs:
    validated = validate_inputs(inputs)
    quality = data_quality(inputs, validated)
    tables = {
        name: table.valid.lazy()
        .drop("_row", *NOT_ANALYSED[name], strict=False)
        .pipe(masked_table)
        .collect()
        for name, table in validated.items()
    }
    return CheckedInputs(
        tables=tables,
        quality=quality,
        quarantine={
            name: quarantine_rows(
                raw, validated[name], [f for f in inputs.files if f.table == name]
            )
            for name, raw in inputs.raw.items()
        },
        files=input_summary(inputs, quality),
        source={
            "preset": inputs.preset.name,
            "label": inputs.preset.label,
            "detected": inputs.reason,
            "files": {f.name: f.table for f in inputs.files},
            "ignored": inputs.ignored,
            "lookalikes": [lookalike.as_dict() for lookalike in inputs.lookalikes],
            "lookups": inputs.lookups,
            "currency": currency_summary(inputs.settings, validated[OPPORTUNITIES]),
        },
        settings=inputs.settings,
        history_available=STAGE_HISTORY in inputs.raw,
        not_recorded=not_recorded(inputs),
        data_as_of=data_as_of(tables),
    )


EXAMPLES_PER_REASON = 2


def validation_summary(
    inputs: Inputs, validated: dict[str, ValidatedTable], quality: dict[str, Any]
) -> dict[str, Any]:
    """What `funnel validate` prints: the layout detected, the files left out and, per input
    file, its counts and the top reasons with example lines."""
    files = []
    encodings = {f.name: f.source.encoding for f in inputs.files if f.source.delimiter}
    for table, entry in quality.items():
        raw = inputs.raw.get(table)
        bad = validated[table].quarantined
        if raw is not None:
            bad = pl.concat(
                [bad, rows_numbered(raw.select("_file", "_line"), bad["_row"])], how="horizontal"
            )
        for file in entry["files"]:
            mine = bad.filter(pl.col("_file") == file["file"])
            reasons = (
                mine.explode("reasons")
                .with_columns(reason_category(pl.col("reasons")).alias("category"))
                .group_by("category")
                .agg(
                    pl.len().alias("rows"),
                    pl.struct("_line", "reasons").head(EXAMPLES_PER_REASON).alias("examples"),
                )
                .sort(["rows", "category"], descending=[True, False])
            )
            files.append(
                {
                    **file,
                    "table": table,
                    "encoding": encodings.get(file["file"]),
                    "reasons": reasons.to_dicts(),
                }
            )
    return {
        "source": inputs.reason,
        "unknown_stages": {
            t: q["unknown_stages"] for t, q in quality.items() if q["unknown_stages"]
        },
        "ignored": inputs.ignored,
        "lookalikes": [lookalike.as_dict() for lookalike in inputs.lookalikes],
        "lookups": inputs.lookups,
        "encoding_set": inputs.settings.parse.encoding,
        "files": files,
    }
