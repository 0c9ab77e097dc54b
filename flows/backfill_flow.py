"""`funnel backfill`: one report per period of a range, each as of its own period end.

The exports are read and validated once; the periods' reports run concurrently through the
flow's Prefect task runner (a process pool by default: WeasyPrint holds the GIL, so threads do
not render in parallel). A period whose report on disk is current (its manifest holds the same
fingerprint: inputs, configuration, options, version) is skipped unless `force`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from flows.errors import one_line
from flows.io.config import settings_from_toml
from flows.progress import say
from flows.report_flow import fingerprint, read_checked, report_period
from transforms.periods import Period, periods_between

WRITTEN, CURRENT, FAILED = "written", "current", "failed"


def current_manifest(report_dir: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of the report in `report_dir` if it was made with `expected`."""
    try:
        manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("fingerprint") == expected else None


def summary_row(
    period: Period, status: str, report_dir: Path, seconds: float, error: str | None = None
) -> dict[str, Any]:
    """A line of the backfill's summary: the period, what happened, and its headline figures."""
    kpis: dict[str, Any] = {}
    if status != FAILED:
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        kpis = metrics["kpis"]
    return {
        "period": period.label,
        "status": status,
        "won_amount": kpis.get("won_amount"),
        "win_rate": kpis.get("win_rate"),
        "seconds": round(seconds, 1),
        "out_dir": str(report_dir),
        "error": error,
    }


def backfill_run_name() -> str:
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    return f"funnel-backfill {parameters['first']}..{parameters['last']} ({parameters['grain']})"


@flow(
    name="funnel-backfill",
    flow_run_name=backfill_run_name,
    task_runner=ProcessPoolTaskRunner(max_workers=2),
)
def funnel_backfill(
    input_dir: str,
    first: str,
    last: str,
    out_dir: str,
    grain: str = "month",
    force: bool = False,
    config: str | None = None,
    lang: str | None = None,
    source: str | None = None,
) -> list[dict[str, Any]]:
    """Reports for every period of `grain` (month, quarter or both) from `first` to `last`,
    into OUT/<period>/; returns one summary row per period, oldest first."""
    config_path = Path(config) if config else None
    settings = settings_from_toml(config_path, lang=lang, preset=source)
    periods = periods_between(first, last, grain=grain, timezone=settings.timezone)
    expected = fingerprint(Path(input_dir), config_path, settings)
    rows: dict[str, dict[str, Any]] = {}
    pending = []
    for period in periods:
        report_dir = Path(out_dir) / period.label
        if not force and current_manifest(report_dir, expected):
            rows[period.label] = summary_row(period, CURRENT, report_dir, 0.0)
        else:
            pending.append(period)
    say(f"backfill: {len(periods)} periods, {len(periods) - len(pending)} current")
    if pending:
        timings: dict[str, float] = {}
        checked = read_checked(Path(input_dir), settings, timings)
        started = time.perf_counter()
        futures = {
            report_period.submit(
                checked,
                period,
                Path(out_dir),
                target=settings.targets.get(period.label),
                fingerprint=expected,
                read_timings=timings,
            ): period
            for period in pending
        }
        for done, future in enumerate(as_completed(list(futures)), start=1):
            period = futures[future]
            report_dir = Path(out_dir) / period.label
            outcome = future.result(raise_on_failure=False)
            if isinstance(outcome, BaseException):
                seconds = time.perf_counter() - started
                row = summary_row(period, FAILED, report_dir, seconds, one_line(outcome)[1])
            else:
                own = outcome["timings_seconds"]["flow_total"] - sum(timings.values())
                row = summary_row(period, WRITTEN, report_dir, own)
            rows[period.label] = row
            say(f"[{done}/{len(pending)}] {period.label} {row['status']}")
    return [rows[p.label] for p in periods]
