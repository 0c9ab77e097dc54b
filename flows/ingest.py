"""Read the canonical input folder, parse and validate it: valid tables plus quarantine.

`UnusableInputError` is raised for a file that cannot be used at all (unreadable, or a required
column missing); the CLI turns it into one line on standard error and exit status 2.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from schemas.canonical import REQUIRED_TABLES, TABLE_MODELS, column_types, required_columns
from schemas.validation import ValidatedTable, validate_table
from transforms.funnel_model import RunSettings
from transforms.integrity import (
    history_after_loss_reasons,
    opportunity_rule_reasons,
    orphan_reasons,
)
from transforms.parse import (
    STAGE_FROM_HISTORY,
    derive_status,
    lost_stage_to_status,
    parse_table,
    stage_from_history,
)

DERIVED_WHEN_ABSENT = {"status"}


class UnusableInputError(Exception):
    """An input file that cannot be used at all; the message says what was found and expected."""


@dataclass(frozen=True)
class InputFile:
    """One input file: its table, path, content hash and raw string rows (with `_row`)."""

    table: str
    path: Path
    sha256: str
    raw: pl.DataFrame


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_required_columns(table: str) -> list[str]:
    return [c for c in required_columns(TABLE_MODELS[table]) if c not in DERIVED_WHEN_ABSENT]


def check_columns(table: str, path: Path, found: list[str]) -> None:
    """Stop with a clear message when a required column is missing or a header is repeated."""
    repeated = sorted({c for c in found if found.count(c) > 1})
    if repeated:
        raise UnusableInputError(
            f"{path}: the header repeats column(s) {', '.join(repeated)}; each column must appear "
            "once."
        )
    missing = [c for c in file_required_columns(table) if c not in found]
    if not missing:
        return
    hints = []
    for column in missing:
        near = difflib.get_close_matches(column, found, n=2, cutoff=0.5)
        hints.append(f"{column} (nearest: {', '.join(near)})" if near else column)
    raise UnusableInputError(
        f"{path}: missing required column(s) {'; '.join(hints)}. "
        f"Found: {', '.join(found) or '(no header)'}. "
        f"Expected: {', '.join(file_required_columns(table))} (required; the optional columns "
        "are listed in the README)."
    )


def read_input_file(table: str, path: Path) -> InputFile:
    """The file's rows as strings, numbered from 1 in `_row`; unusable files raise."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UnusableInputError(f"{path}: cannot be read ({error.strerror}).") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnusableInputError(
            f"{path}: is not UTF-8 text (byte {error.start} is 0x{data[error.start]:02x}); "
            "expected a UTF-8 CSV as the canonical layout requires."
        ) from None
    if not data.strip():
        raise UnusableInputError(f"{path}: is empty; expected a CSV with a header row.")
    try:
        raw = pl.read_csv(data, infer_schema=False)
    except pl.exceptions.PolarsError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnusableInputError(
            f"{path}: is not a readable CSV ({first_line}); expected comma-separated UTF-8 text "
            "with one header row."
        ) from None
    header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
    check_columns(table, path, [c.strip() for c in header])
    columns = [c.lstrip("\ufeff").strip() for c in raw.columns]
    raw = raw.rename(dict(zip(raw.columns, columns, strict=True)))
    return InputFile(table, path, sha256_of(path), raw.with_row_index("_row", offset=1))


def read_input_folder(input_dir: Path) -> dict[str, InputFile]:
    """The canonical files present in `input_dir` (opportunities.csv is required)."""
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder holding "
            "opportunities.csv (and optionally stage_history.csv, "
            "followups.csv)."
        )
    files = {}
    for table in TABLE_MODELS:
        path = input_dir / f"{table}.csv"
        if path.exists():
            files[table] = read_input_file(table, path)
        elif table in REQUIRED_TABLES:
            present = sorted(p.name for p in input_dir.iterdir())
            raise UnusableInputError(
                f"{path}: not found. Found in {input_dir}: {', '.join(present) or 'nothing'}. "
                "Expected opportunities.csv, and optionally stage_history.csv and followups.csv."
            )
    return files


def typed_table(file: InputFile | None, table: str, settings: RunSettings) -> pl.DataFrame:
    """Parsed canonical columns of a file, or an empty table when the file is absent."""
    columns = column_types(TABLE_MODELS[table])
    raw = (
        file.raw
        if file is not None
        else pl.DataFrame(schema={"_row": pl.UInt32, **dict.fromkeys(columns, pl.String)})
    )
    frame = raw.lazy()
    if table == "opportunities":
        frame = lost_stage_to_status(frame, funnel=settings.funnel, options=settings.parse)
    typed = parse_table(
        frame,
        columns=columns,
        funnel=settings.funnel,
        options=settings.parse,
        timezone=settings.timezone,
    )
    if table == "opportunities":
        typed = typed.join(frame.select("_row", STAGE_FROM_HISTORY), on="_row", how="left")
    return typed.collect()


def validate_inputs(
    files: dict[str, InputFile], settings: RunSettings
) -> dict[str, ValidatedTable]:
    """Valid rows and quarantined rows of every table, opportunities first."""
    funnel = settings.funnel
    history = typed_table(files.get("stage_history"), "stage_history", settings)
    opportunities = derive_status(
        stage_from_history(
            typed_table(files["opportunities"], "opportunities", settings).lazy(),
            history.lazy(),
            funnel=funnel,
        ),
        funnel=funnel,
    ).collect()
    rules = opportunity_rule_reasons(opportunities.lazy(), history.lazy(), funnel=funnel).collect()
    validated = {
        "opportunities": validate_table(
            "opportunities", opportunities, TABLE_MODELS["opportunities"], rules
        )
    }
    valid_opps = validated["opportunities"].valid.lazy()
    quarantined_ids = opportunities.join(
        validated["opportunities"].quarantined.select("_row"), on="_row", how="semi"
    ).lazy()
    for table in ("stage_history", "followups"):
        typed = (
            history if table == "stage_history" else typed_table(files.get(table), table, settings)
        )
        reasons = [orphan_reasons(typed.lazy(), valid_opps, quarantined_ids)]
        if table == "stage_history":
            reasons.append(history_after_loss_reasons(typed.lazy(), valid_opps))
        validated[table] = validate_table(
            table, typed, TABLE_MODELS[table], pl.concat(reasons).collect()
        )
    return validated
