"""The CLI's commands as Prefect flows: demo, validate and generate (run is flows.report_flow).

The CLI (flows.cli) calls these; nothing here imports it."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow

from flows.io.config import settings_from_toml
from flows.io.exports import read_inputs
from flows.io.outputs import write_json
from flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from flows.report_flow import funnel_report
from flows.tools.generate import GenerateSpec, generate_exports
from schemas.vocabulary import TABLES
from transforms.periods import add_months
from transforms.staging.checks import data_quality, validate_inputs, validation_summary
from transforms.staging.parse import parse_timestamp


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
        print(f"wrote {manifest['out_dir']}: {', '.join(manifest['outputs'])}")


def run_report(
    input_dir: Path,
    period: str,
    out_dir: Path,
    config: Path | None,
    lang: str | None,
    source: str | None,
    target: float | None,
    *,
    started: float,
) -> dict[str, Any]:
    manifest = funnel_report(
        str(input_dir),
        period,
        str(out_dir),
        str(config) if config else None,
        lang,
        source,
        target,
    )
    record_command_time([manifest], "funnel run", started)
    return manifest


def latest_full_month(input_dir: Path, timezone: str) -> str:
    """The last month whose final day the exports reach (their latest timestamp, local time)."""
    latest = None
    for table, column in zip(TABLES, ("created_at", "entered_at", "occurred_at"), strict=True):
        path = input_dir / f"{table}.csv"
        if path.exists():
            stamp = (
                pl.scan_csv(path, infer_schema=False)
                .select(parse_timestamp(pl.col(column), timezone=timezone).max())
                .collect()
                .item()
            )
            latest = stamp if latest is None or (stamp and stamp > latest) else latest
    if latest is None:
        raise ValueError(f"{input_dir}: no timestamps to find the latest month from")
    day = latest.astimezone(ZoneInfo(timezone)).date()
    month_start = date(day.year, day.month, 1)
    if (day + timedelta(days=1)).month == day.month:
        month_start = add_months(month_start, -1)
    return f"{month_start.year}-{month_start.month:02d}"


@flow(name="funnel-demo")
def funnel_demo(out_dir: str = "out", lang: str | None = None) -> list[dict[str, Any]]:
    """The latest full month of the sample data in data/, and the quarter it belongs to."""
    settings = settings_from_toml(SAMPLE_CONFIG)
    month = latest_full_month(SAMPLE_DIR, settings.timezone)
    quarter = f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"
    return [
        funnel_report(str(SAMPLE_DIR), period, out_dir, str(SAMPLE_CONFIG), lang)
        for period in (month, quarter)
    ]


def demo(out_dir: Path, lang: str | None, *, started: float) -> None:
    record_command_time(funnel_demo(str(out_dir), lang), "funnel demo", started)


@flow(name="funnel-validate")
def validate_flow(
    input_dir: str, config: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """The layout detected and, per input file, rows read, valid, quarantined, and the top
    reasons with example lines."""
    settings = settings_from_toml(Path(config) if config else None, preset=source)
    inputs = read_inputs(Path(input_dir), settings)
    validated = validate_inputs(inputs)
    return validation_summary(inputs, validated, data_quality(inputs, validated))


def validate_exports(input_dir: Path, config: Path | None, source: str | None = None) -> int:
    """Print the validation summary; exit status 0 (quarantined rows are not an error)."""
    summary = validate_flow(str(input_dir), str(config) if config else None, source)
    print(f"source: {summary['source']}")
    if summary["ignored"]:
        print(f"not used: {', '.join(summary['ignored'])}")
    for entry in summary["files"]:
        print(
            f"{entry['file']} ({entry['table']}): read {entry['rows_read']}, "
            f"valid {entry['rows_valid']}, quarantined {entry['rows_quarantined']}"
        )
        for reason in entry["reasons"]:
            print(f"  {reason['rows']} × {reason['category']}")
            for example in reason["examples"]:
                print(f"      line {example['_line']}: {example['reasons']}")
    return 0


@flow(name="funnel-generate")
def generate_flow(
    out_dir: str,
    opportunities: int,
    seed: int = 7,
    followups_per_opportunity: float = 5.0,
    updates_per_opportunity: float = 0.0,
) -> dict[str, int]:
    """Synthetic canonical exports (see flows.tools.generate), streamed to disk in chunks."""
    return generate_exports(
        Path(out_dir),
        GenerateSpec(
            opportunities=opportunities,
            seed=seed,
            followups_per_opportunity=followups_per_opportunity,
            updates_per_opportunity=updates_per_opportunity,
        ),
    )


def generate(
    out_dir: Path, opportunities: int, seed: int, followups: float, updates: float
) -> None:
    counts = generate_flow(str(out_dir), opportunities, seed, followups, updates)
    print(f"wrote {out_dir}: " + ", ".join(f"{n} {table} rows" for table, n in counts.items()))
