"""`funnel backfill` (and `funnel run --reports`): one report per period of a range and per
report of the report set, each as of its own period end.

The exports are read and validated once; each report is a slice of the validated tables
(`transforms.slices`), and the reports run concurrently through the flow's Prefect task runner
(a process pool by default: WeasyPrint holds the GIL, so threads do not render in parallel),
each sent the slice's validated frames only. A report whose folder is current (its manifest
holds the same fingerprint: inputs, configuration, options, version) is skipped unless `force`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from funnel_reports.flows.delivery import deliver_report
from funnel_reports.flows.errors import one_line
from funnel_reports.flows.io.config import chosen_reports, delivery_from_toml, settings_from_toml
from funnel_reports.flows.io.mail import DeliverySettings
from funnel_reports.flows.io.outputs import read_json, store_tables, work_folder
from funnel_reports.flows.progress import say, step
from funnel_reports.flows.report_flow import (
    fingerprint,
    read_checked,
    report_folder,
    report_label,
    report_period,
)
from funnel_reports.flows.requests import BackfillRequest, Grain, Language, Source, request_of
from funnel_reports.schemas.vocabulary import (
    CURRENT,
    FAILED,
    OPPORTUNITIES,
    STAGE_HISTORY,
    WRITTEN,
)
from funnel_reports.transforms.funnel_model import COMPANY, ReportSpec, RunSettings
from funnel_reports.transforms.metrics_document import Rates, period_rates
from funnel_reports.transforms.periods import Period, periods_between, resolve_period
from funnel_reports.transforms.slices import (
    EmptySliceError,
    is_team,
    report_language,
    slice_tables,
)
from funnel_reports.transforms.staging.checks import CheckedInputs


def current_manifest(report_dir: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of the report in `report_dir` if it was made with `expected`."""
    manifest = read_json(report_dir / "manifest.json")
    return (
        manifest if isinstance(manifest, dict) and manifest.get("fingerprint") == expected else None
    )


def summary_row(
    job: Job, status: str, report_dir: Path, seconds: float, error: str | None = None
) -> dict[str, Any]:
    """A line of the summary: the report and period, what happened, its headline figures."""
    kpis: dict[str, Any] = {}
    if status != FAILED:
        kpis = read_json(report_dir / "metrics.json")["kpis"]
    return {
        "report": job.report.name if job.report else None,
        "period": job.period.label,
        "status": status,
        "won_amount": kpis.get("won_amount"),
        "win_rate": kpis.get("win_rate"),
        "seconds": round(seconds, 1),
        "out_dir": str(report_dir),
        "error": error,
    }


@dataclass(frozen=True)
class Job:
    """One report to make: a period, and the report of the report set (None: the plain
    company report in OUT/<period>/)."""

    period: Period
    report: ReportSpec | None

    def folder(self, out_dir: Path) -> Path:
        return report_folder(out_dir, self.period, self.report)

    @property
    def label(self) -> str:
        return report_label(self.period, self.report)


def sliced(checked: CheckedInputs, job: Job, lang: str | None) -> CheckedInputs:
    """The validated inputs of one report: its deals, in its language. A team's report
    carries no quarantine files (they are the export's, written with the company's report);
    its appendix still counts the export's rows read, valid and quarantined."""
    if job.report is None:
        return checked
    language = report_language(job.report, given=lang, configured=checked.settings.lang)
    settings = replace(checked.settings, lang=language)
    if not is_team(job.report):
        return replace(checked, settings=settings)
    return replace(
        checked,
        tables=slice_tables(checked.tables, job.report),
        quarantine={},
        settings=settings,
    )


def recipients_of(job: Job, delivery: DeliverySettings) -> DeliverySettings:
    """[delivery] with the report's own recipients: a team's report goes to its `to` (or to
    [delivery] to when it names none), without cc; the company's to [delivery] to and cc."""
    if not is_team(job.report):
        return delivery
    return replace(delivery, to=job.report.to or delivery.to, cc=())


def rates_of_company(checked: CheckedInputs, period: Period) -> Rates:
    """The company's win rates at a period's end, for the reports too thin to have their own."""
    with step({}, "company rates", period.label):
        return period_rates(
            checked.tables[OPPORTUNITIES],
            checked.tables[STAGE_HISTORY],
            period=period,
            settings=checked.settings.metrics,
        )


def run_name() -> str:
    from prefect.runtime import flow_run

    request = request_of(BackfillRequest, flow_run.parameters)
    if not isinstance(request, BackfillRequest):
        return "funnel-backfill"
    first, last = request.first, request.last
    reports = f" [{request.reports}]" if request.reports else ""
    if first == last:
        return f"funnel-reports {first}{reports}"
    return f"funnel-backfill {first}..{last} ({request.grain}){reports}"


@dataclass(frozen=True)
class Plan:
    """The reports a backfill makes, oldest first, and the fingerprint each one's manifest
    must hold to count as current (`expected`, by the job's label)."""

    jobs: list[Job]
    expected: dict[str, dict[str, Any]]


def backfill_plan(
    request: BackfillRequest, settings: RunSettings, base: dict[str, Any], today: date
) -> Plan:
    """Every period of the request's grain from `first` to `last` (labels, or last-month /
    last-quarter as of `today`), times each report it names (the plain company report when
    it names none), with the fingerprint each is made with: `base` (`fingerprint`) in the
    report's own language."""
    timezone = settings.timezone
    first, last = (
        resolve_period(p, today=today, timezone=timezone) for p in (request.first, request.last)
    )
    periods = periods_between(
        first.label, last.label, grain=request.grain or first.grain, timezone=timezone
    )
    specs = chosen_reports(settings, request.reports) if request.reports else [None]
    jobs = [Job(period, spec) for period in periods for spec in specs]
    expected = {
        job.label: {
            **base,
            "lang": report_language(job.report, given=request.lang, configured=settings.lang),
        }
        for job in jobs
    }
    return Plan(jobs, expected)


@flow(name="funnel-backfill", flow_run_name=run_name, task_runner=ProcessPoolTaskRunner(2))
def funnel_backfill(
    *,
    input_dir: Path,
    out_dir: Path,
    first: str,
    last: str,
    grain: Grain | None = "month",
    force: bool = False,
    config: Path | None = None,
    lang: Language | None = None,
    source: Source | None = None,
    reports: str | None = None,
    deliver: bool = False,
    resend: bool = False,
    allow_stale: bool = False,
) -> list[dict[str, Any]]:
    """Reports for every period of `grain` (month, quarter or both; None: the grain of
    `first`) from `first` to `last` (labels, or last-month / last-quarter), into
    OUT/<period>/; with `reports` (all, or names among company and [[reports]]), one per report
    into OUT/<report>/<period>/ (the parameters are `BackfillRequest`'s fields). A report
    whose folder is current is skipped unless `force`. With `deliver`, each report is mailed
    to its own recipients; a period the export does not reach fails unless `allow_stale`.
    Returns one summary row per report and period, oldest first."""
    request = BackfillRequest(**locals())  # the parameters as one request
    settings = settings_from_toml(request.config, lang=request.lang, preset=request.source)
    settings = replace(settings, allow_stale=request.allow_stale)
    delivery = delivery_from_toml(request.config) if request.deliver else None
    plan = backfill_plan(
        request,
        settings,
        fingerprint(request.input_dir, request.config, settings),
        datetime.now(ZoneInfo(settings.timezone)).date(),
    )
    rows: dict[str, dict[str, Any]] = {}
    pending = []
    for job in plan.jobs:
        folder = job.folder(request.out_dir)
        if not request.force and current_manifest(folder, plan.expected[job.label]):
            rows[job.label] = summary_row(job, CURRENT, folder, 0.0)
        else:
            pending.append(job)
    say(f"{len(plan.jobs)} reports, {len(plan.jobs) - len(pending)} current")
    if pending:
        timings: dict[str, float] = {}
        checked = read_checked(request.input_dir, settings, timings)
        rows |= made_reports(checked, pending, plan, request, timings)
    if delivery is not None:
        for job in plan.jobs:
            if rows[job.label]["status"] != FAILED:
                rows[job.label] = delivered(rows[job.label], job, request, delivery, settings)
    return [rows[job.label] for job in plan.jobs]


def made_reports(
    checked: CheckedInputs,
    pending: list[Job],
    plan: Plan,
    request: BackfillRequest,
    timings: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Each pending report made through the flow's task runner (`report_period`, each sent
    its slice's tables through a work folder), summarised as it completes."""
    out_dir = request.out_dir
    borrowed = {
        job.period: rates_of_company(checked, job.period) for job in pending if is_team(job.report)
    }
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    futures = {}
    work = work_folder(out_dir)  # each slice's tables, once, for the workers to read
    stored: dict[str, tuple[CheckedInputs, Path] | EmptySliceError] = {}
    try:
        for job in pending:
            name = job.report.name if job.report else COMPANY
            if name not in stored:  # each report's slice once, for all its periods
                stored[name] = stored_slice(checked, job, request.lang, work / name)
            entry = stored[name]
            if isinstance(entry, EmptySliceError):
                rows[job.label] = summary_row(job, FAILED, job.folder(out_dir), 0.0, str(entry))
                continue
            inputs, stored_at = entry
            future = report_period.submit(
                inputs,
                job.period,
                out_dir,
                target_override=None,
                fingerprint=plan.expected[job.label],
                read_timings=timings,
                report=job.report,
                company_rates=borrowed.get(job.period) if is_team(job.report) else None,
                tables_from=stored_at,
            )
            futures[future] = job
        for done, future in enumerate(as_completed(list(futures)), start=1):
            job = futures[future]
            outcome = future.result(raise_on_failure=False)
            if isinstance(outcome, BaseException):
                seconds = time.perf_counter() - started
                error = one_line(outcome)[1]
                rows[job.label] = summary_row(job, FAILED, job.folder(out_dir), seconds, error)
            else:
                own = outcome["timings_seconds"]["flow_total"] - sum(timings.values())
                rows[job.label] = summary_row(job, WRITTEN, job.folder(out_dir), own)
            say(f"[{done}/{len(futures)}] {job.label} {rows[job.label]['status']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def stored_slice(
    checked: CheckedInputs, job: Job, lang: str | None, folder: Path
) -> tuple[CheckedInputs, Path] | EmptySliceError:
    """The report's slice of the validated inputs with its tables and quarantine stored in
    `folder` (the inputs sent without them), or why the report has no deals."""
    try:
        inputs = sliced(checked, job, lang)
    except EmptySliceError as error:
        return error
    store_tables(folder / "tables", inputs.tables)
    store_tables(folder / "quarantine", inputs.quarantine)
    return replace(inputs, tables={}, quarantine={}), folder


def delivered(
    row: dict[str, Any],
    job: Job,
    request: BackfillRequest,
    delivery: DeliverySettings,
    settings: RunSettings,
) -> dict[str, Any]:
    """The summary row once the report is mailed to its own recipients; a failed mail fails
    the row, never the other reports' mail."""
    try:
        deliver_report(
            job.folder(request.out_dir),
            recipients_of(job, delivery),
            funnel=settings.funnel,
            resend=request.resend,
        )
    except Exception as error:
        return row | {"status": FAILED, "error": one_line(error)[1]}
    return row
