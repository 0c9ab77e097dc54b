"""Read an input folder of exports (CSV or XLSX, or dated snapshot folders of them) into
canonical raw tables: the folder is listed and its headers read here, the rest is the staging
entry's (`transforms.staging.inputs`), which asks for the rows it needs through `read_rows`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from funnel_reports.flows.io.config import load_presets
from funnel_reports.flows.io.readers import (
    Limits,
    export_files,
    holds_records,
    read_again,
    read_headers,
    read_rows,
    sha256_of,
)
from funnel_reports.schemas.vocabulary import TABLES
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.periods import add_months
from funnel_reports.transforms.staging.checks import CheckedInputs
from funnel_reports.transforms.staging.inputs import (
    Export,
    ExportFolder,
    layout_of,
    refuse_empty,
    staged_inputs,
)
from funnel_reports.transforms.staging.layout import (
    InputFile,
    Inputs,
    SourceTable,
    UnusableInputError,
)
from funnel_reports.transforms.staging.parse import parse_timestamp

SNAPSHOT_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def whole_quarantine(checked: CheckedInputs, files: list[InputFile]) -> CheckedInputs:
    """The checked inputs with each quarantined row as it came in: the columns its file had
    that were not read (`SourceTable.unread`: no figure or check reads them) read again from
    the file for those rows only, in the header's order."""
    encoding, limits = checked.settings.parse.encoding, Limits.of(checked.settings.source)
    quarantine = {}
    for table, rows in checked.quarantine.items():
        if rows.is_empty():
            quarantine[table] = rows
            continue
        mine = [f for f in files if f.table == table]
        # rows made from other rows (HubSpot's "Date entered" columns, snapshots' history)
        parts = [rows.filter(~pl.col("_file").is_in([f.name for f in mine]))]
        for file in mine:
            part = rows.filter(pl.col("_file") == file.name)
            if part.is_empty():
                continue
            if file.source.unread:
                part = part.hstack(read_again(file.source, part["_source_row"], encoding, limits))
            parts.append(part.select("_file", "_line", "_reasons", *file.source.header))
        quarantine[table] = (
            pl.concat(parts, how="diagonal")
            .drop("_source_row", strict=False)
            .sort("_file", "_line")
        )
    return replace(checked, quarantine=quarantine)


def local_today(timezone: str) -> date:
    """Today in the run's time zone: the run's clock is read here, never in transforms/."""
    return datetime.now(ZoneInfo(timezone)).date()


def snapshot_folders(input_dir: Path) -> list[Path]:
    """Dated sub-folders (YYYY-MM-DD) of exports, oldest first."""
    return sorted(p for p in input_dir.iterdir() if p.is_dir() and SNAPSHOT_FOLDER.match(p.name))


def input_digest(input_dir: Path) -> str:
    """One SHA-256 for everything a run could read in the folder: each export file's path
    (relative to the folder) and content hash, snapshot folders included."""
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
    folders = [input_dir, *snapshot_folders(input_dir)]
    digest = hashlib.sha256()
    for path in (p for folder in folders for p in export_files(folder)):
        digest.update(f"{path.relative_to(input_dir).as_posix()}\0{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def export_folder(path: Path, settings: RunSettings, name: str | None = None) -> ExportFolder:
    """One folder of exports by its files' headers (no row read) and their modification
    dates, local to the run's time zone (`name`: a snapshot folder's date)."""
    limits = Limits.of(settings.source)
    files = export_files(path)
    zone = ZoneInfo(settings.timezone)
    return ExportFolder(
        path,
        [
            replace(t, folder=name)
            for p in files
            for t in read_headers(p, settings.parse.encoding, limits)
        ],
        name,
        {p: datetime.fromtimestamp(p.stat().st_mtime, zone).date() for p in files},
    )


def export_of(input_dir: Path, settings: RunSettings, today: date | None = None) -> Export:
    """The input folder as its headers tell it: its own files, or its dated snapshot folders
    (YYYY-MM-DD, oldest first) when it holds no export file itself; `today` (the run's
    clock, in the configured time zone, by default) bounds the snapshots' dates."""
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
    today = today or local_today(settings.timezone)
    if not export_files(input_dir) and (snapshots := snapshot_folders(input_dir)):
        return Export(input_dir, [export_folder(p, settings, p.name) for p in snapshots], today)
    return Export(input_dir, [export_folder(input_dir, settings)], today)


def read_inputs(input_dir: Path, settings: RunSettings, today: date | None = None) -> Inputs:
    """The folder's exports under canonical column names, with the layout that fits them:
    the folder listed and its headers read here, then one call to the staging entry
    (`transforms.staging.inputs.staged_inputs`), which asks for the rows it needs."""
    limits = Limits.of(settings.source)

    def read(table: SourceTable, columns: list[str] | None) -> SourceTable:
        return read_rows(table, settings.parse.encoding, limits, columns)

    return staged_inputs(export_of(input_dir, settings, today), settings, load_presets(), read)


def check_layout(input_dir: Path, settings: RunSettings) -> None:
    """The layout of an input folder chosen from the headers of its files (of the latest
    snapshot folder, for dated snapshots), reading no more than each file's start: what
    `read_inputs` would refuse for the folder's shape (no layout fits, a needed file lacks a
    column, a named file is not there, a snapshot folder dated after today, the deals' file
    has a header and no rows), refused at once."""
    limits = Limits.of(settings.source)
    _, assignment = layout_of(export_of(input_dir, settings), settings, load_presets())
    refuse_empty(
        assignment.used, lambda f: holds_records(f.source, settings.parse.encoding, limits)
    )


def latest_full_month(input_dir: Path, timezone: str) -> str:
    """The last month whose final day the exports reach (their latest timestamp, local time)."""
    latest = None
    for table, column in zip(TABLES, ("created_at", "entered_at", "occurred_at"), strict=True):
        path = input_dir / f"{table}.csv"
        if path.exists():
            stamp = (
                pl.scan_csv(path, infer_schema=False)
                .select(parse_timestamp(pl.col(column), timezone=timezone).max())
                .collect()
                .item()
            )
            latest = stamp if latest is None or (stamp and stamp > latest) else latest
    if latest is None:
        raise ValueError(f"{input_dir}: no timestamps to find the latest month from")
    day = latest.astimezone(ZoneInfo(timezone)).date()
    month_start = date(day.year, day.month, 1)
    if (day + timedelta(days=1)).month == day.month:
        month_start = add_months(month_start, -1)
    return f"{month_start.year}-{month_start.month:02d}"
