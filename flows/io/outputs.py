"""Write a run's outputs: metrics.json, manifest.json, quarantine CSVs, the reports."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import polars as pl

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


def write_quarantine(out_dir: Path, quarantine: dict[str, pl.DataFrame]) -> list[str]:
    """quarantine/<table>.csv for each table with quarantined rows, formula-safe; returns the
    paths."""
    folder = out_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in quarantine.items():
        path = folder / f"{name}.csv"
        if rows.height:
            rows.with_columns(
                formula_safe(pl.col(c)).alias(c) for c in rows.columns if rows[c].dtype == pl.String
            ).write_csv(path)
            written.append(str(path.relative_to(out_dir)))
        elif path.exists():
            path.unlink()
    return written


def record_command_time(manifests: list[dict[str, Any]], command: str, started: float) -> None:
    """Add the whole command's wall time to each manifest it wrote.

    `outside_report_flows` is what the report flows' own timings do not see: Python and Prefect
    imports, the temporary Prefect server's start-up, and the parent flow (for demo).
    """
    total = time.perf_counter() - started
    in_flows = sum(m["timings_seconds"]["flow_total"] for m in manifests)
    for manifest in manifests:
        path = Path(manifest["out_dir"]) / "manifest.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        document["timings_seconds"]["command"] = {
            "name": command,
            "total": round(total, 4),
            "outside_report_flows": round(total - in_flows, 4),
        }
        write_json(path, document)
