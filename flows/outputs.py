"""Write a run's outputs: metrics.json, manifest.json, quarantine CSVs, the reports."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

from flows.ingest import InputFile
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


def quarantine_rows(file: InputFile, table: ValidatedTable) -> pl.DataFrame:
    """Quarantined rows as they came in, with file, line number and every reason, formula-safe.

    `_line` is the row's line in the file, counting the header as line 1 (for files without
    line breaks inside quoted values).
    """
    raw_columns = [c for c in file.raw.columns if c != "_row"]
    return (
        table.quarantined.join(
            file.raw.with_columns(pl.col("_row").cast(pl.Int64)), on="_row", how="left"
        )
        .sort("_row")
        .select(
            pl.lit(file.path.name).alias("_file"),
            (pl.col("_row") + 1).alias("_line"),
            pl.col("reasons").list.join(REASON_SEPARATOR).alias("_reasons"),
            *[formula_safe(pl.col(c)).alias(c) for c in raw_columns],
        )
    )


def write_quarantine(
    out_dir: Path, files: dict[str, InputFile], validated: dict[str, ValidatedTable]
) -> list[str]:
    """quarantine/<table>.csv for each input file with quarantined rows; returns the paths."""
    folder = out_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, file in files.items():
        rows = quarantine_rows(file, validated[name])
        path = folder / f"{name}.csv"
        if rows.height:
            rows.write_csv(path)
            written.append(str(path.relative_to(out_dir)))
        elif path.exists():
            path.unlink()
    return written
