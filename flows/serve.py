"""`funnel serve`: the monthly and quarterly report deployments, served on their cron schedules
in the configured time zone against a running Prefect server (prefect.yaml holds the same two
deployments for `prefect deploy --all` with a work pool)."""

from __future__ import annotations

from pathlib import Path

from prefect import serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import PREFECT_API_URL

from funnel_reports.flows.io.config import ConfigError, delivery_from_toml, settings_from_toml
from funnel_reports.flows.report_flow import funnel_report
from funnel_reports.flows.requests import ReportRequest

# deployment name: (the period it reports, cron, description)
SCHEDULES = {
    "monthly": ("last-month", "0 6 1 * *", "The month just ended, at 06:00 on the 1st."),
    "quarterly": (
        "last-quarter",
        "0 6 1 1,4,7,10 *",
        "The quarter just ended, at 06:00 on the 1st of January, April, July, October.",
    ),
}


def report_deployments(
    input_dir: Path, out_dir: Path, config: Path | None, lang: str | None, deliver: bool
) -> list[RunnerDeployment]:
    """The two scheduled deployments of the report flow, with absolute paths as parameters."""
    settings = settings_from_toml(config, lang=lang)
    if deliver:
        delivery_from_toml(config)  # a run that cannot mail must not wait for its schedule
    return [
        funnel_report.to_deployment(
            name=name,
            description=description,
            schedule=Cron(cron, timezone=settings.timezone),
            entrypoint_type=EntrypointType.MODULE_PATH,  # runs wherever the package is installed
            parameters=ReportRequest(
                input_dir=input_dir.resolve(),
                period=period,
                out_dir=out_dir.resolve(),
                config=config.resolve() if config else None,
                lang=lang,
                deliver=deliver,
            ).model_dump(mode="json"),
        )
        for name, (period, cron, description) in SCHEDULES.items()
    ]


def serve_reports(
    input_dir: Path, out_dir: Path, config: Path | None, lang: str | None, deliver: bool
) -> None:
    """Serve the deployments until stopped (Ctrl-C or SIGTERM; their schedules stay active)."""
    if not PREFECT_API_URL.value():
        raise ConfigError(
            "funnel serve needs a running Prefect server: start one with `prefect server start` "
            "and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)"
        )
    if not input_dir.is_dir():
        raise ConfigError(f"{input_dir}: is not a folder; expected a folder of exports")
    serve(
        *report_deployments(input_dir, out_dir, config, lang, deliver),
        pause_on_shutdown=False,
    )
