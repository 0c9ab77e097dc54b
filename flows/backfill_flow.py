"""`funnel backfill` (and `funnel run --reports`): one report per period of a range and per
report of the report set, each as of its own period end.

The exports are read and validated once; each report is a slice of the validated tables
(`transforms.slices`), and the reports run concurrently through the flow's Prefect task runner
(a process pool by default: WeasyPrint holds the GIL, so threads do not render in parallel),
each sent the slice's validated frames only. A report whose folder is current (its manifest
holds the same fingerprint: inputs, configuration, options, version) is skipped unless `force`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import as_completed
from prefect.task_runners import ProcessPoolTaskRunner

from funnel_reports.flows.delivery import deliver_report
from funnel_reports.flows.errors import one_line
from funnel_reports.flows.io.config import (
    chosen_reports,
    delivery_from_toml,
    period_from_label,
    settings_from_toml,
)
from funnel_reports.flows.io.mail import DeliverySettings
from funnel_reports.flows.io.outputs import store_tables, work_folder
from funnel_reports.flows.progress import say, step
from funnel_reports.flows.report_flow import (
    fingerprint,
    read_checked,
    report_folder,
    report_label,
    report_period,
)
from funnel_reports.schemas.vocabulary import OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.funnel_model import COMPANY, ReportSpec
from funnel_reports.transforms.intermediate.derived import derive_tables
from funnel_reports.transforms.metrics_document import Rates, window_rates
from funnel_reports.transforms.periods import Period, periods_between
from funnel_reports.transforms.slices import (
    EmptySliceError,
    is_team,
    report_language,
    report_target,
    slice_tables,
)
from funnel_reports.transforms.staging.checks import CheckedInputs

WRITTEN, CURRENT, FAILED = "written", "current", "failed"


def current_manifest(report_dir: Path, expected: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of the report in `report_dir` if it was made with `expected`."""
    try:
        manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("fingerprint") == expected else None


def summary_row(
    job: Job, status: str, report_dir: Path, seconds: float, error: str | None = None
) -> dict[str, Any]:
    """A line of the summary: the report and period, what happened, its headline figures."""
    kpis: dict[str, Any] = {}
    if status != FAILED:
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        kpis = metrics["kpis"]
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
    settings = checked.settings
    with step({}, "company rates", period.label):
        derived = derive_tables(
            checked.tables[OPPORTUNITIES],
            checked.tables[STAGE_HISTORY],
            as_of=period.end,
            funnel=settings.funnel,
            partial_history=bool(settings.source.stage_dates),
        )
        return window_rates(derived, period=period, settings=settings)


def run_name() -> str:
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    first, last = parameters["first"], parameters["last"]
    reports = f" [{parameters['reports']}]" if parameters.get("reports") else ""
    if first == last:
        return f"funnel-reports {first}{reports}"
    return f"funnel-backfill {first}..{last} ({parameters['grain']}){reports}"


@flow(name="funnel-backfill", flow_run_name=run_name, task_runner=ProcessPoolTaskRunner(2))
def funnel_backfill(
    input_dir: str,
    first: str,
    last: str,
    out_dir: str,
    grain: str | None = "month",
    force: bool = False,
    config: str | None = None,
    lang: str | None = None,
    source: str | None = None,
    reports: str | None = None,
    deliver: bool = False,
    resend: bool = False,
    allow_stale: bool = False,
) -> list[dict[str, Any]]:
    """Reports for every period of `grain` (month, quarter or both; None: the grain of
    `first`) from `first` to `last` (labels, or last-month / last-quarter), into
    OUT/<period>/; with `reports` (all, or names among company and [[reports]]), one per report
    into OUT/<report>/<period>/. With `deliver`, each report is mailed to its own recipients;
    a period the export does not reach fails unless `allow_stale`.
    Returns one summary row per report and period, oldest first."""
    config_path = Path(config) if config else None
    settings = settings_from_toml(config_path, lang=lang, preset=source)
    settings = replace(settings, allow_stale=allow_stale)
    delivery = delivery_from_toml(config_path) if deliver else None
    first_period, last_period = (period_from_label(p, settings.timezone) for p in (first, last))
    periods = periods_between(
        first_period.label,
        last_period.label,
        grain=grain or first_period.grain,
        timezone=settings.timezone,
    )
    specs = chosen_reports(settings, reports) if reports else [None]
    jobs = [Job(period, spec) for period in periods for spec in specs]
    base = fingerprint(Path(input_dir), config_path, settings)
    expected = {
        job.label: {
            **base,
            "lang": report_language(job.report, given=lang, configured=settings.lang),
        }
        for job in jobs
    }
    rows: dict[str, dict[str, Any]] = {}
    pending = []
    for job in jobs:
        folder = job.folder(Path(out_dir))
        if not force and current_manifest(folder, expected[job.label]):
            rows[job.label] = summary_row(job, CURRENT, folder, 0.0)
        else:
            pending.append(job)
    say(f"{len(jobs)} reports, {len(jobs) - len(pending)} current")
    if pending:
        timings: dict[str, float] = {}
        checked = read_checked(Path(input_dir), settings, timings)
        borrowed = {
            job.period: rates_of_company(checked, job.period)
            for job in pending
            if is_team(job.report)
        }
        started = time.perf_counter()
        futures = {}
        work = work_folder(Path(out_dir))  # each slice's tables, once, for the workers to read
        stored: dict[str, tuple[CheckedInputs, Path] | EmptySliceError] = {}
        try:
            for job in pending:
                name = job.report.name if job.report else COMPANY
                if name not in stored:  # each report's slice once, for all its periods
                    try:
                        inputs = sliced(checked, job, lang)
                    except EmptySliceError as error:
                        stored[name] = error
                    else:
                        store_tables(work / name / "tables", inputs.tables)
                        store_tables(work / name / "quarantine", inputs.quarantine)
                        stored[name] = (replace(inputs, tables={}, quarantine={}), work / name)
                entry = stored[name]
                if isinstance(entry, EmptySliceError):
                    folder = job.folder(Path(out_dir))
                    rows[job.label] = summary_row(job, FAILED, folder, 0.0, str(entry))
                    continue
                inputs, stored_at = entry
                future = report_period.submit(
                    inputs,
                    job.period,
                    Path(out_dir),
                    target=report_target(job.report, job.period.label, settings.targets),
                    fingerprint=expected[job.label],
                    read_timings=timings,
                    report=job.report,
                    company_rates=borrowed.get(job.period) if is_team(job.report) else None,
                    tables_from=stored_at,
                )
                futures[future] = job
            for done, future in enumerate(as_completed(list(futures)), start=1):
                job = futures[future]
                folder = job.folder(Path(out_dir))
                outcome = future.result(raise_on_failure=False)
                if isinstance(outcome, BaseException):
                    seconds = time.perf_counter() - started
                    rows[job.label] = summary_row(
                        job, FAILED, folder, seconds, one_line(outcome)[1]
                    )
                else:
                    own = outcome["timings_seconds"]["flow_total"] - sum(timings.values())
                    rows[job.label] = summary_row(job, WRITTEN, folder, own)
                say(f"[{done}/{len(futures)}] {job.label} {rows[job.label]['status']}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if delivery is not None:
        for job in jobs:
            if rows[job.label]["status"] == FAILED:
                continue
            try:
                deliver_report(
                    job.folder(Path(out_dir)),
                    recipients_of(job, delivery),
                    funnel=settings.funnel,
                    resend=resend,
                )
            except Exception as error:  # one report's failure never stops the others' mail
                rows[job.label] |= {"status": FAILED, "error": one_line(error)[1]}
    return [rows[job.label] for job in jobs]
