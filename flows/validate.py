"""`funnel validate`: a check of an input folder, not a job. It reads and validates the
exports and says what it found, without a Prefect server (and without importing Prefect)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.staging.checks import (
    data_quality,
    validate_inputs,
    validation_summary,
)


def validation(input_dir: Path, config: Path | None, source: str | None) -> dict[str, Any]:
    """The layout detected and, per input file, rows read, valid, quarantined, and the top
    reasons with example lines."""
    settings = settings_from_toml(config, preset=source)
    inputs = read_inputs(input_dir, settings)
    validated = validate_inputs(inputs)
    return validation_summary(inputs, validated, data_quality(inputs, validated))
