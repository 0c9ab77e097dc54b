"""Write a run's outputs: metrics.json, manifest.json, quarantine CSVs, the reports."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from flows.ingest import InputFile, Inputs
from schemas.validation import REASON_SEPARATOR, ValidatedTable

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(column: pl.Expr) -> pl.Expr:
    """Text that a spreadsheet will not run as a formula: risky cells get a leading apostrophe."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_PREFIXES) + "]"
    return pl.when(column.str.contains(pattern)).then(pl.lit("'") + column).otherwise(column)


FLOAT_DECIMALS = 6


def json_ready(value: Any) -> Any:
    """Strict, reproducible JSON values: NaN and infinities become null, and floats are rounded
    to 6 decimals, so that the last bits of a parallel sum never change a rerun's file."""
    if isinstance(value, float):
        return round(value, FLOAT_DECIMALS) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(
        json.dumps(json_ready(document), ensure_ascii=False, indent=2, default=str) + "\n",
        encoding="utf-8",
    )


def quarantine_rows(
    raw: pl.DataFrame, table: ValidatedTable, files: list[InputFile]
) -> pl.DataFrame:
    """Quarantined rows as they came in (their file's own columns), with file, line number and
    every reason; formula-safe. `_line` is where the record starts, the header being line 1."""
    keys = table.quarantined.join(
        raw.select("_row", "_file", "_line", "_source_row"), on="_row", how="left"
    )
    parts = []
    for file in files:
        mine = keys.filter(pl.col("_file") == file.name)
        if mine.height == 0:
            continue
        original = file.source.rows.drop("_line").with_columns(pl.col("_row").cast(pl.Int64))
        parts.append(
            mine.join(original, left_on="_source_row", right_on="_row", how="left").select(
                "_file",
                "_line",
                pl.col("reasons").list.join(REASON_SEPARATOR).alias("_reasons"),
                *[formula_safe(pl.col(c)).alias(c) for c in file.source.header],
            )
        )
    derived = keys.filter(~pl.col("_file").is_in([f.name for f in files]))
    if derived.height:  # rows made from other rows (HubSpot's "Date entered" columns)
        parts.append(
            derived.join(raw.drop("_file", "_line", "_source_row"), on="_row", how="left").select(
                "_file",
                "_line",
                pl.col("reasons").list.join(REASON_SEPARATOR).alias("_reasons"),
                *[formula_safe(pl.col(c)).alias(c) for c in raw.columns if not c.startswith("_")],
            )
        )
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="diagonal").sort("_file", "_line")


def write_quarantine(
    out_dir: Path, inputs: Inputs, validated: dict[str, ValidatedTable]
) -> list[str]:
    """quarantine/<table>.csv for each table with quarantined rows; returns the paths."""
    folder = out_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, raw in inputs.raw.items():
        files = [f for f in inputs.files if f.table == name]
        rows = quarantine_rows(raw, validated[name], files)
        path = folder / f"{name}.csv"
        if rows.height:
            rows.write_csv(path)
            written.append(str(path.relative_to(out_dir)))
        elif path.exists():
            path.unlink()
    return written
