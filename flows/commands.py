"""The CLI's commands as Prefect flows: demo, validate and generate (run is flows.report_flow).

The CLI (flows.cli) calls these and prints what they return; nothing here imports it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.io.config import settings_from_toml
from flows.io.exports import latest_full_month, read_inputs
from flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from flows.report_flow import funnel_report
from flows.tools.generate import GenerateSpec, generate_exports
from transforms.staging.checks import data_quality, validate_inputs, validation_summary


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
