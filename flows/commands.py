"""The CLI's commands as Prefect flows: demo and generate (run is flows.report_flow; validate,
a check rather than a job, is flows.validate).

The CLI (flows.cli) calls these and prints what they return; nothing here imports it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from funnel_reports.flows.generate import GenerateSpec, generate_exports
from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import latest_full_month
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from funnel_reports.flows.report_flow import funnel_report
from funnel_reports.flows.requests import ReportRequest


@flow(name="funnel-demo")
def funnel_demo(out_dir: str = "out", lang: str | None = None) -> list[dict[str, Any]]:
    """The latest full month of the sample data in data/, and the quarter it belongs to."""
    settings = settings_from_toml(SAMPLE_CONFIG)
    month = latest_full_month(SAMPLE_DIR, settings.timezone)
    quarter = f"{month[:4]}-Q{(int(month[5:]) - 1) // 3 + 1}"
    return [
        funnel_report(
            **dict(
                ReportRequest(
                    input_dir=SAMPLE_DIR,
                    period=period,
                    out_dir=Path(out_dir),
                    config=SAMPLE_CONFIG,
                    lang=lang,
                )
            )
        )
        for period in (month, quarter)
    ]


@flow(name="funnel-generate")
def generate_flow(
    out_dir: str,
    opportunities: int,
    seed: int = 7,
    followups_per_opportunity: float = 5.0,
    updates_per_opportunity: float = 0.0,
    close_date_pushes: bool = False,
    forecast_categories: bool = False,
    amount_sigma: float = 0.7,
    quarter_end_push: float = 0.0,
) -> dict[str, int]:
    """Synthetic canonical exports (see flows.generate), streamed to disk in chunks."""
    return generate_exports(
        Path(out_dir),
        GenerateSpec(
            opportunities=opportunities,
            seed=seed,
            followups_per_opportunity=followups_per_opportunity,
            updates_per_opportunity=updates_per_opportunity,
            close_date_pushes=close_date_pushes,
            forecast_categories=forecast_categories,
            amount_sigma=amount_sigma,
            quarter_end_push=quarter_end_push,
        ),
    )
