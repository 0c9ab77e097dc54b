"""Small export folders written by the reading tests, read the way a run reads them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import validate_inputs

HEADER = "opportunity_id,stage,status,created_at,closed_at,amount,owner\n"


def read(folder: Path, config: str = ""):
    settings = RunSettings()
    if config:
        (folder.parent / "funnel.toml").write_text(config, encoding="utf-8")
        settings = settings_from_toml(folder.parent / "funnel.toml")
    inputs = read_inputs(folder, settings)
    return inputs, validate_inputs(inputs)


def as_read(inputs, table: str = "opportunities") -> pl.DataFrame:
    """A table as the run typed it, each row with what its text was let go to (its file,
    line and number in its file, and its stage name as written)."""
    typed, _ = inputs.typed[table]
    raw = inputs.raw[table]
    return pl.concat([typed.drop(raw.columns, strict=False), raw], how="horizontal")


def quarantined(inputs, validated, table: str = "opportunities") -> dict[str, list[str]]:
    """Each quarantined row's reasons, by its first column's value."""
    key = "opportunity_id"
    ids = as_read(inputs, table).select("_row", key)
    rows = validated[table].quarantined.join(ids, on="_row")
    return {row[key]: row["reasons"] for row in rows.to_dicts()}


def deals_folder(tmp_path: Path, text: str | bytes, name: str = "opportunities.csv") -> Path:
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    (folder / name).write_bytes(data)
    return folder


def refusal(capsys) -> str:
    [line] = capsys.readouterr().err.strip().splitlines()
    return line
