"""The report run as a Prefect flow: load, validate, derive, compute, render, write.

The flow stays an outline: files are read and written in flows/io, every rule lives in
transforms/ and schemas/, every word and format in report_templates/. The CLI (`funnel run`,
`funnel demo`) and the deployments in prefect.yaml run this same flow.
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NONE

from flows.delivery import deliver_report
from flows.io.config import delivery_from_toml, settings_from_toml
from flows.io.exports import read_inputs
from flows.io.mail import DELIVERY_RECORD
from flows.io.outputs import publish_folder, staging_folder, write_json, write_quarantine
from report_templates.context import report_context
from report_templates.render import render_html, render_pdf
from schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from transforms.funnel_model import FunnelModel, RunSettings
from transforms.intermediate.derived import DerivedTables, derive_tables
from transforms.metrics_document import funnel_metrics
from transforms.periods import Period, resolve_period
from transforms.staging.checks import CheckedInputs, check_inputs
from transforms.staging.layout import Inputs


@contextmanager
def timed(timings: dict[str, float], step: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - started, 4)


@task(cache_policy=NONE, persist_result=False)
def load_inputs(input_dir: Path, settings: RunSettings) -> Inputs:
    return read_inputs(input_dir, settings)


@task(cache_policy=NONE, persist_result=False)
def validate(inputs: Inputs) -> CheckedInputs:
    return check_inputs(inputs)


@task(cache_policy=NONE, persist_result=False)
def derive(checked: CheckedInputs, period: Period) -> DerivedTables:
    return derive_tables(
        checked.tables[OPPORTUNITIES],
        checked.tables[STAGE_HISTORY],
        as_of=period.end,
        funnel=checked.settings.funnel,
    )


@task(cache_policy=NONE, persist_result=False)
def compute(
    checked: CheckedInputs, derived: DerivedTables, period: Period, target: float | None
) -> dict[str, Any]:
    """metrics.json: the figures, the data quality and the source."""
    metrics = funnel_metrics(
        checked.tables[OPPORTUNITIES],
        derived,
        checked.tables[FOLLOWUPS],
        period=period,
        settings=checked.settings,
        history_available=checked.history_available,
        target=target,
    )
    return {**metrics, "data_quality": checked.quality, "source": checked.source}


@task(cache_policy=NONE, persist_result=False)
def render_report_html(
    metrics: dict[str, Any], input_files: list[dict[str, Any]], lang: str, funnel: FunnelModel
) -> str:
    return render_html(report_context(metrics, input_files=input_files, lang=lang, funnel=funnel))


@task(cache_policy=NONE, persist_result=False)
def render_report_pdf(html: str) -> bytes:
    return render_pdf(html)


@task(cache_policy=NONE, persist_result=False)
def write_outputs(
    out_dir: Path,
    metrics: dict[str, Any],
    html: str,
    pdf: bytes,
    quarantine: dict[str, pl.DataFrame],
) -> list[str]:
    """Every output but the manifest, into `out_dir` (the run's staging folder)."""
    write_json(out_dir / "metrics.json", metrics)
    (out_dir / "report.html").write_text(html, encoding="utf-8")
    (out_dir / "report.pdf").write_bytes(pdf)
    return [
        "metrics.json",
        "report.html",
        "report.pdf",
        *write_quarantine(out_dir, quarantine),
    ]


@task(cache_policy=NONE, persist_result=False)
def publish(staging: Path, report_dir: Path, manifest: dict[str, Any]) -> None:
    """The manifest last, then the whole folder swapped in as OUT/<period>/ (with the record
    of the sends of the report it replaces)."""
    write_json(staging / "manifest.json", manifest)
    if (report_dir / DELIVERY_RECORD).exists():
        shutil.copy2(report_dir / DELIVERY_RECORD, staging / DELIVERY_RECORD)
    publish_folder(staging, report_dir)


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        name: version(name)
        for name in ("funnel-reports", "polars", "pandera", "prefect", "weasyprint", "jinja2")
    }


@flow(name="funnel-report", log_prints=True)
def funnel_report(
    input_dir: str,
    period: str,
    out_dir: str,
    config: str | None = None,
    lang: str | None = None,
    source: str | None = None,
    target: float | None = None,
    deliver: bool = False,
    resend: bool = False,
) -> dict[str, Any]:
    """Monthly (`2024-06`) or quarterly (`2024-Q2`) funnel report of the exports in input_dir.

    `last-month` and `last-quarter` name the last full period before today (for schedules);
    `source` forces an export layout (canonical, template-zh, salesforce, hubspot, pipedrive,
    custom) instead of detecting it; `target` (a won amount for the period) overrides the
    period's entry in funnel.toml [targets].

    Writes OUT/<period>/: report.html, report.pdf, metrics.json, manifest.json, quarantine/.
    With `deliver`, mails the report once it is on disk ([delivery] in the config) to every
    recipient it was not sent to yet (`resend`: to all again). Returns the manifest.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    settings = settings_from_toml(Path(config) if config else None, lang=lang, preset=source)
    delivery = delivery_from_toml(Path(config) if config else None) if deliver else None
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    report_period = resolve_period(period, today=today, timezone=settings.timezone)
    report_dir = Path(out_dir) / report_period.label
    with timed(timings, "load"):
        inputs = load_inputs(Path(input_dir), settings)
    with timed(timings, "validate"):
        checked = validate(inputs)
    del inputs  # the raw rows: what is left of them is in `checked`
    with timed(timings, "derive"):
        derived = derive(checked, report_period)
    with timed(timings, "compute"):
        metrics = compute(
            checked, derived, report_period, target or settings.targets.get(report_period.label)
        )
    files = checked.files
    with timed(timings, "render_html"):
        html = render_report_html(metrics, files, settings.lang, settings.funnel)
    with timed(timings, "render_pdf"):
        pdf = render_report_pdf(html)
    staging = staging_folder(report_dir)
    try:
        with timed(timings, "write"):
            written = write_outputs(staging, metrics, html, pdf, checked.quarantine)
        flow_seconds = time.perf_counter() - started
        manifest = run_manifest(
            report_period, settings, metrics, files, written, timings, flow_seconds
        )
        publish(staging, report_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once published; else a failed run's
    print(f"funnel report {report_period.label}: {report_dir}")
    if delivery is not None:
        deliver_report(report_dir, delivery, funnel=settings.funnel, resend=resend)
    return {**manifest, "out_dir": str(report_dir)}


def run_manifest(
    period: Period,
    settings: RunSettings,
    metrics: dict[str, Any],
    files: list[dict[str, Any]],
    written: list[str],
    timings: dict[str, float],
    flow_seconds: float,
) -> dict[str, Any]:
    """manifest.json: the inputs with their hashes and counts, the outputs, versions, timings."""
    return {
        "period": period.as_dict(),
        "lang": settings.lang,
        "source": metrics["source"],
        "inputs": files,
        "outputs": [*written, "manifest.json"],
        "versions": versions(),
        "timings_seconds": {
            "steps": timings,
            "flow_total": round(flow_seconds, 4),
            "flow_overhead": round(flow_seconds - sum(timings.values()), 4),
        },
    }
