"""The report run as a Prefect flow: load, validate, then per period derive, compute, render,
write and publish; deliver when asked.

The flow stays an outline: files are read and written in flows/io, every rule lives in
transforms/ and schemas/, every word and format in report_templates/. The CLI (`funnel run`,
`funnel demo`), the deployments in prefect.yaml and `funnel serve` run this same flow; `funnel
backfill` (flows.backfill_flow) reads once and runs `report_period` for each period.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from funnel_reports.flows.delivery import deliver_report, notify_ops
from funnel_reports.flows.errors import retry_when
from funnel_reports.flows.io.config import delivery_from_toml, period_from_label, settings_from_toml
from funnel_reports.flows.io.exports import input_digest, read_inputs, whole_quarantine
from funnel_reports.flows.io.ledger import publish_report_folder
from funnel_reports.flows.io.outputs import (
    staging_folder,
    stored_tables,
    write_report_files,
)
from funnel_reports.flows.io.readers import sha256_of
from funnel_reports.flows.progress import say, step
from funnel_reports.flows.requests import Amount, Language, ReportRequest, Source, request_of
from funnel_reports.report_templates.context import report_context
from funnel_reports.report_templates.mail import artifact_markdown, conversion_table
from funnel_reports.report_templates.render import render_html, render_pdf
from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.deal_tables import deal_tables
from funnel_reports.transforms.freshness import check_fresh, freshness
from funnel_reports.transforms.funnel_model import ReportSpec, RunSettings
from funnel_reports.transforms.metrics_document import PeriodFigures, Rates, period_figures
from funnel_reports.transforms.periods import Period
from funnel_reports.transforms.slices import report_target
from funnel_reports.transforms.staging.checks import CheckedInputs, check_inputs

# reading a file on a share, or writing one, may fail for a moment; a bad file never mends
FILE_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [1, 5],
    "retry_condition_fn": retry_when(OSError),
}


@task(cache_policy=NONE, persist_result=False, **FILE_RETRIES)
def read_and_check(
    input_dir: Path, settings: RunSettings
) -> tuple[CheckedInputs, dict[str, float]]:
    """The exports read and validated, with the seconds of each step (`load`, `validate`).
    One task: the raw text tables never leave it, so they are freed once it ends (a task's
    result stays in memory until its flow run ends)."""
    timings: dict[str, float] = {}
    with step(timings, "load") as note:
        inputs = read_inputs(input_dir, settings)
        note(", ".join(f"{f.name} {f.rows} rows" for f in inputs.files))
    with step(timings, "validate") as note:
        checked = whole_quarantine(check_inputs(inputs), inputs.files)
        note(
            ", ".join(
                f"{f['table']} {f['rows_valid']} valid, {f['rows_quarantined']} quarantined"
                for f in checked.files
            )
        )
    return checked, timings


@task(cache_policy=NONE, persist_result=False, **FILE_RETRIES)
def fingerprint(
    input_dir: Path, config: Path | None, settings: RunSettings, target: float | None = None
) -> dict[str, Any]:
    """What a report's figures depend on: the inputs' and the configuration's SHA-256, the
    options given on the command line and the version. A report whose manifest holds the same
    fingerprint is current."""
    return {
        "inputs_sha256": input_digest(input_dir),
        "config_sha256": sha256_of(config) if config else None,
        "lang": settings.lang,
        "source": settings.source.preset,
        "target": target,
        "version": version("funnel-reports"),
    }


def read_checked(
    input_dir: Path, settings: RunSettings, timings: dict[str, float]
) -> CheckedInputs:
    """The exports read and validated, once for every report made of them."""
    checked, steps = read_and_check(input_dir, settings)
    timings |= steps
    return checked


def report_label(period: Period, report: ReportSpec | None) -> str:
    """`east 2026-09` for a report of the report set, `2026-09` for the plain report."""
    return f"{report.name} {period.label}" if report else period.label


def report_folder(out_dir: Path, period: Period, report: ReportSpec | None) -> Path:
    """OUT/<report>/<period>/ for a report of the report set, OUT/<period>/ for the plain one."""
    return (out_dir / report.name if report else out_dir) / period.label


def report_task_name() -> str:
    """`report east 2026-09`: the task run named after its report and period."""
    from prefect.runtime import task_run

    parameters = task_run.parameters
    return f"report {report_label(parameters['period'], parameters.get('report'))}"


@task(cache_policy=NONE, persist_result=False, task_run_name=report_task_name)
def report_period(
    checked: CheckedInputs,
    period: Period,
    out_dir: Path,
    *,
    target_override: float | None,
    fingerprint: dict[str, Any],
    read_timings: dict[str, float],
    report: ReportSpec | None = None,
    company_rates: Rates | None = None,
    tables_from: Path | None = None,
) -> dict[str, Any]:
    """OUT/<period>/ (OUT/<report>/<period>/ for a report of the report set) of the validated
    inputs (already sliced to the report's deals) as of the period's end, whole or not at all:
    `compute_metrics`, `render_report`, `publish_report`; returns its manifest (with
    `out_dir`). `tables_from` holds the tables and quarantine (`store_tables`) when `checked`
    comes without them, as a fan-out sends it."""
    started = time.perf_counter()
    if tables_from is not None:
        checked = replace(
            checked,
            tables=stored_tables(tables_from / "tables"),
            quarantine=stored_tables(tables_from / "quarantine"),
        )
    label, timings = report_label(period, report), dict(read_timings)
    figures = compute_metrics(
        checked,
        period,
        target_override=target_override,
        report=report,
        company_rates=company_rates,
        timings=timings,
    )
    metrics, outputs = figures.metrics, checked.settings.outputs
    tables = compute_tables(figures, outputs, timings, label)
    html, pdf = render_report(metrics, checked, timings, label)
    report_dir = report_folder(out_dir, period, report)
    manifest = publish_report(
        Report(metrics, html, pdf, checked.quarantine, tables, outputs),
        report_dir,
        Run(label, period, checked, fingerprint, timings, started - sum(read_timings.values())),
    )
    publish_artifacts(metrics, checked.settings, report_dir, label)
    return {**manifest, "out_dir": str(report_dir)}


@task(cache_policy=NONE, persist_result=False)
def compute_metrics(
    checked: CheckedInputs,
    period: Period,
    *,
    target_override: float | None,
    report: ReportSpec | None,
    company_rates: Rates | None,
    timings: dict[str, float],
) -> PeriodFigures:
    """metrics.json of a report: every figure of the period (`period_figures`, its steps
    timed into `timings`), the data's freshness and quality, the source and the report;
    with what the figures were computed from, for the tables behind them.
    A period the export does not reach stops here, before anything heavy, unless allowed."""
    settings = checked.settings
    if not settings.allow_stale:
        check_fresh(
            period,
            checked.data_as_of,
            stale_after_days=settings.stale_after_days,
            timezone=settings.timezone,
        )
    tables = checked.tables
    figures = period_figures(
        tables[OPPORTUNITIES],
        tables[STAGE_HISTORY],
        tables[FOLLOWUPS],
        period=period,
        settings=settings.metrics,
        history_available=checked.history_available,
        not_recorded=checked.not_recorded,
        # the period's target (--target, else funnel.toml's) and the next period's (the
        # forecast's chance to reach it), each the report's own or the company's
        target=report_target(report, period.label, settings.targets, target_override),
        next_target=report_target(report, period.shifted(1).label, settings.targets),
        company_rates=company_rates,
        step=lambda name: step(timings, name, report_label(period, report)),
    )
    metrics = {
        **figures.metrics,
        "data_as_of": freshness(period, checked.data_as_of, timezone=settings.timezone),
        "data_quality": checked.quality,
        "source": checked.source,
        **({"report": report_entry(report)} if report else {}),
    }
    return replace(figures, metrics=metrics)


@task(cache_policy=NONE, persist_result=False)
def compute_tables(
    figures: PeriodFigures, outputs: tuple[str, ...], timings: dict[str, float], label: str
) -> dict[str, pl.DataFrame]:
    """The deal-level tables behind the figures (`deal_tables`), when the report folder
    holds them ([report] outputs: xlsx or parquet)."""
    if not {"xlsx", "parquet"} & set(outputs):
        return {}
    with step(timings, "tables", label) as note:
        tables = deal_tables(figures.inputs, figures.metrics)
        note(", ".join(f"{name} {frame.height}" for name, frame in tables.items()))
    return tables


@task(cache_policy=NONE, persist_result=False)
def render_report(
    metrics: dict[str, Any], checked: CheckedInputs, timings: dict[str, float], label: str
) -> tuple[str | None, bytes | None]:
    """The report as HTML and as PDF, each when [report] outputs asks for it (None when
    not); the PDF is rendered from the HTML."""
    settings = checked.settings
    if not {"html", "pdf"} & set(settings.outputs):
        return None, None
    with step(timings, "render_html", label):
        html = render_html(
            report_context(
                metrics, input_files=checked.files, lang=settings.lang, settings=settings.metrics
            )
        )
    pdf = None
    if "pdf" in settings.outputs:
        with step(timings, "render_pdf", label) as note:
            pdf = render_pdf(html)
            note(f"{len(pdf) // 1024} KiB")
    return (html if "html" in settings.outputs else None), pdf


@dataclass(frozen=True)
class Report:
    """What a report folder holds: the figures, the report in HTML and PDF (None: not asked
    for), the quarantine, the deal-level tables."""

    metrics: dict[str, Any]
    html: str | None
    pdf: bytes | None
    quarantine: dict[str, pl.DataFrame]
    tables: dict[str, pl.DataFrame]
    outputs: tuple[str, ...]  # [report] outputs


@dataclass(frozen=True)
class Run:
    """What the manifest says of the run: its period and inputs, the fingerprint, each
    step's seconds, and when it started (its read included); `label` names the report."""

    label: str
    period: Period
    checked: CheckedInputs
    fingerprint: dict[str, Any]
    timings: dict[str, float]
    started: float


@task(cache_policy=NONE, persist_result=False, **FILE_RETRIES)
def publish_report(report: Report, report_dir: Path, run: Run) -> dict[str, Any]:
    """The report written into a staging folder beside `report_dir`, the manifest last, then
    swapped in whole; returns the manifest. A failed write leaves nothing behind."""
    staging = staging_folder(report_dir)
    try:
        with step(run.timings, "write", run.label):
            written = write_report_files(staging, report)
        seconds = time.perf_counter() - run.started
        manifest = run_manifest(
            run.period, run.checked, run.fingerprint, written, run.timings, seconds
        )
        publish_report_folder(staging, report_dir, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone once published; else a failed run's
    say(f"{run.label}: {report_dir}")
    return manifest


def report_entry(report: ReportSpec) -> dict[str, Any]:
    """metrics.json `report`: which report of the report set, and the deals it holds."""
    return {"name": report.name, "title": report.title, "filter": dict(report.filter)}


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow only a-z, 0-9 and dashes."""
    return re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())


def publish_artifacts(
    metrics: dict[str, Any], settings: RunSettings, report_dir: Path, label: str
) -> None:
    """The headline figures and where the report is (markdown), and the conversion table,
    keyed by the report's label."""
    create_markdown_artifact(
        key=artifact_key("funnel-report", label),
        markdown=artifact_markdown(
            metrics, lang=settings.lang, funnel=settings.funnel, report_dir=str(report_dir)
        ),
        description=f"Funnel report {label}: headline figures",
    )
    create_table_artifact(
        key=artifact_key("funnel-conversion", label),
        table=conversion_table(metrics, lang=settings.lang, funnel=settings.funnel),
        description=f"Funnel report {label}: stage conversion",
    )


def versions() -> dict[str, str]:
    return {
        name: version(name)
        for name in ("funnel-reports", "polars", "pandera", "prefect", "weasyprint", "jinja2")
    }


def run_manifest(
    period: Period,
    checked: CheckedInputs,
    fingerprint: dict[str, Any],
    written: list[str],
    timings: dict[str, float],
    seconds: float,
) -> dict[str, Any]:
    """manifest.json: the inputs with their hashes and counts, the outputs, what the figures
    depend on, versions, timings (`flow_total`: this report's read and its own steps)."""
    return {
        "period": period.as_dict(),
        "lang": checked.settings.lang,
        "source": checked.source,
        "inputs": checked.files,
        "outputs": [*written, "manifest.json"],
        "fingerprint": fingerprint,
        "versions": versions(),
        "timings_seconds": {
            "steps": timings,
            "flow_total": round(seconds, 4),
            "flow_overhead": round(seconds - sum(timings.values()), 4),
        },
    }


def report_run_name() -> str:
    """`funnel-report 2024-06`: the run named after the period it reports (`last-month`
    resolved in the configured time zone)."""
    from prefect.runtime import flow_run

    request = request_of(ReportRequest, flow_run.parameters)
    if request is None:  # the run itself says what is wrong with its parameters
        return "funnel-report"
    try:
        settings = settings_from_toml(request.config)
        label = period_from_label(request.period, settings.timezone).label
    except Exception:
        label = request.period
    return f"funnel-report {label}"


@flow(name="funnel-report", flow_run_name=report_run_name, on_failure=[notify_ops])
def funnel_report(
    *,
    input_dir: Path,
    out_dir: Path,
    period: str,
    config: Path | None = None,
    lang: Language | None = None,
    source: Source | None = None,
    target: Amount | None = None,
    deliver: bool = False,
    resend: bool = False,
    allow_stale: bool = False,
) -> dict[str, Any]:
    """Monthly (`2024-06`) or quarterly (`2024-Q2`) funnel report of the exports in input_dir
    (the parameters are `ReportRequest`'s fields).

    `last-month` and `last-quarter` name the last full period before today (for schedules);
    `source` forces an export layout (canonical, template-zh, salesforce, hubspot, pipedrive,
    custom) instead of detecting it; `target` (a won amount for the period) overrides the
    period's entry in funnel.toml [targets]; `allow_stale` reports a period that ends more
    than [report] stale_after_days after the export's latest record (else refused).

    Writes OUT/<period>/: report.html, report.pdf, metrics.json, manifest.json, quarantine/.
    With `deliver`, mails the report once it is on disk ([delivery] in the config) to every
    recipient it was not sent to yet (`resend`: to all again). Returns the manifest.
    """
    request = ReportRequest(**locals())  # the parameters as one request
    settings = settings_from_toml(request.config, lang=request.lang, preset=request.source)
    settings = replace(settings, allow_stale=request.allow_stale)
    delivery = delivery_from_toml(request.config) if request.deliver else None
    reported = period_from_label(request.period, settings.timezone)
    timings: dict[str, float] = {}
    checked = read_checked(request.input_dir, settings, timings)
    manifest = report_period(
        checked,
        reported,
        request.out_dir,
        target_override=request.target,
        fingerprint=fingerprint(request.input_dir, request.config, settings, request.target),
        read_timings=timings,
    )
    if delivery is not None:
        deliver_report(
            Path(manifest["out_dir"]), delivery, funnel=settings.funnel, resend=request.resend
        )
    return manifest
