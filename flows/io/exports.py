"""Read an input folder of exports (CSV or XLSX, or dated snapshot folders of them) into
canonical raw tables, with the layout that fits them."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from flows.io.config import load_presets
from flows.io.readers import (
    Limits,
    export_files,
    holds_records,
    read_again,
    read_headers,
    read_rows,
    sha256_of,
)
from schemas.vocabulary import OPPORTUNITIES, TABLES
from transforms.funnel_model import Lookup, RunSettings
from transforms.periods import add_months
from transforms.staging.checks import CheckedInputs
from transforms.staging.currency import currency_settings, export_rates, is_rate_table
from transforms.staging.layout import (
    InputFile,
    Inputs,
    Lookalike,
    SourceTable,
    UnusableInputError,
    assign_files,
    choose_layout,
    detection_reason,
    effective_settings,
    needed_headers,
    refuse_needed_files,
    refuse_ties,
)
from transforms.staging.lookups import joined_lookups
from transforms.staging.mapping import (
    SNAPSHOT,
    canonical_rows,
    canonical_tables,
    latest_observations,
    numbered,
    snapshot_history,
)
from transforms.staging.parse import parse_timestamp

SNAPSHOT_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def read_folder(folder: Path, settings: RunSettings, label: str | None = None) -> list[SourceTable]:
    """Every table of a folder's exports, by its header only (`needed_rows` reads the ones a
    table needs)."""
    limits = Limits.of(settings.source)
    tables = [
        replace(t, folder=label)
        for p in export_files(folder)
        for t in read_headers(p, settings.parse.encoding, limits)
    ]
    for table, name in settings.source.files.items():
        if not any(name in (t.path.name, t.name) for t in tables):
            found = ", ".join(t.name for t in tables) or "no CSV or XLSX file"
            raise UnusableInputError(
                f"{folder / name}: named for {table} in [source.files] but not found; the "
                f"folder holds {found}."
            )
    return tables


def needed_rows(
    tables: list[SourceTable],
    used: list[InputFile],
    settings: RunSettings,
    lookups: tuple[Lookup, ...] = (),
) -> tuple[list[SourceTable], list[InputFile]]:
    """The tables with the rows of those a run reads read in: the files used (with the
    columns a figure or a check reads: `needed_headers`), the side files of `lookups` (the
    first present of each) and the export's exchange rates, whole. The others stay headers:
    a file no table needs is never read past its header."""
    columns: dict[str, list[str] | None] = {
        f.source.name: needed_headers(f, settings, lookups) for f in used
    }
    columns |= {t.name: None for t in tables if is_rate_table(t)}
    for lookup in lookups:
        side = next((t for name in lookup.files for t in tables if t.name == name), None)
        if side is not None:
            columns[side.name] = None
    limits = Limits.of(settings.source)
    loaded = {
        t.name: read_rows(t, settings.parse.encoding, limits, columns[t.name])
        for t in tables
        if t.name in columns
    }
    return (
        [loaded.get(t.name, t) for t in tables],
        [replace(f, source=loaded[f.source.name]) for f in used],
    )


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


def refuse_empty(files: list[InputFile], holds_rows: Callable[[InputFile], bool]) -> None:
    """Stop when the opportunities file has a header but no rows (`holds_rows` tells): a
    report of it would be all zeros, as if the team had sold nothing."""
    deals = [f for f in files if f.table == OPPORTUNITIES]
    if deals and not any(holds_rows(f) for f in deals):
        raise UnusableInputError(
            f"{deals[0].source.path}: has a header but no rows, so the report would be all "
            "zeros; export it again, or name the file that holds the deals in funnel.toml: "
            '[source.files] opportunities = "<file>"'
        )


def export_date(paths: list[Path], today: date, timezone: str) -> date:
    """When the export was taken, as well as the files tell: the newest of their
    modification dates (local), never after today."""
    newest = max((p.stat().st_mtime for p in paths), default=None)
    if newest is None:
        return today
    return min(datetime.fromtimestamp(newest, ZoneInfo(timezone)).date(), today)


def with_export_date(settings: RunSettings, day: date) -> RunSettings:
    """The settings with the export's date, which bounds the dates its values may hold."""
    return replace(settings, parse=replace(settings.parse, export_date=day))


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


def read_inputs(input_dir: Path, settings: RunSettings, today: date | None = None) -> Inputs:
    """The folder's exports under canonical column names, with the layout that fits them.

    A folder of dated snapshot folders (exports/2024-05-31/, exports/2024-06-30/, ...) is read
    as one export whose stage history comes from the differences between snapshots. `today`
    (the run's clock, in the configured time zone, by default) bounds the snapshot dates.
    """
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
    today = today or local_today(settings.timezone)
    if not export_files(input_dir) and (snapshots := snapshot_folders(input_dir)):
        return read_snapshots(snapshots, settings, today)
    tables = read_folder(input_dir, settings)
    preset, assignment = choose_layout(input_dir, tables, settings, load_presets())
    tables, used = needed_rows(
        tables, assignment.used, settings, (*preset.lookups, *settings.source.lookups)
    )
    refuse_empty(used, lambda f: f.rows > 0)
    read = {t.path for t in tables if t.frame is not None}
    settings = with_export_date(settings, export_date(sorted(read), today, settings.timezone))
    raw = canonical_tables(used, settings.source.stage_dates)
    raw[OPPORTUNITIES], lookups = joined_lookups(
        raw[OPPORTUNITIES],
        used,
        tables,
        optional=preset.lookups,
        required=settings.source.lookups,
    )
    sides = {lookup["file"] for lookup in lookups} | {t.name for t in tables if is_rate_table(t)}
    return Inputs(
        preset,
        detection_reason(preset, used),
        used,
        [name for name in assignment.ignored if name not in sides],
        raw,
        settled_currency(effective_settings(settings, preset), raw, tables, used),
        [lookalike for lookalike in assignment.lookalikes if lookalike.file not in sides],
        lookups,
    )


def settled_currency(
    settings: RunSettings,
    raw: dict[str, pl.DataFrame],
    tables: list[SourceTable],
    used: list[InputFile],
) -> RunSettings:
    """The settings with the report currency and the rates the export needs (its own
    CurrencyType.csv among `tables`, unless funnel.toml gives rates); stops the run when its
    amounts cannot all be put in one currency."""
    return currency_settings(
        raw[OPPORTUNITIES].lazy(),
        settings,
        export_rates=export_rates(tables),
        file_name=next(f.name for f in used if f.table == OPPORTUNITIES),
    )


def snapshot_dates(snapshots: list[Path], today: date) -> None:
    """Stop at a snapshot folder dated after today, or not a date at all: read as the
    latest, it would be the export's present."""
    for folder in snapshots:
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            raise UnusableInputError(
                f"{folder}: a snapshot folder named like a date that is none; rename it to the "
                "date its export was taken (YYYY-MM-DD)"
            ) from None
        if day > today:
            raise UnusableInputError(
                f"{folder}: a snapshot folder dated after today ({today}); rename it to the "
                "date its export was taken"
            )


def check_layout(input_dir: Path, settings: RunSettings) -> None:
    """The layout of an input folder chosen from the headers of its files (of the latest
    snapshot folder, for dated snapshots), reading no more than each file's start: what
    `read_inputs` would refuse for the folder's shape (no layout fits, a needed file lacks a
    column, a named file is not there, the deals' file has a header and no rows), refused at
    once."""
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
    folder = input_dir
    if not export_files(input_dir) and (snapshots := snapshot_folders(input_dir)):
        folder = snapshots[-1]
    _, assignment = choose_layout(folder, read_folder(folder, settings), settings, load_presets())
    limits = Limits.of(settings.source)
    refuse_empty(
        assignment.used, lambda f: holds_records(f.source, settings.parse.encoding, limits)
    )


def read_snapshots(snapshots: list[Path], settings: RunSettings, today: date) -> Inputs:
    snapshot_dates(snapshots, today)
    latest = snapshots[-1]
    headers = {folder: read_folder(folder, settings, folder.name) for folder in snapshots}
    preset, _ = choose_layout(latest, headers[latest], settings, load_presets())
    used: list[InputFile] = []
    ignored: list[str] = []
    lookalikes: list[Lookalike] = []
    observations = []
    latest_tables: list[SourceTable] = []
    for folder in snapshots:
        assignment = assign_files(preset, headers[folder], dict(settings.source.files))
        refuse_needed_files(preset, headers[folder], assignment)
        refuse_ties(folder, assignment)
        tables, files = needed_rows(headers[folder], assignment.used, settings)
        if folder == latest:
            latest_tables = tables
            refuse_empty(files, lambda f: f.rows > 0)
        ignored += assignment.ignored
        lookalikes += assignment.lookalikes
        for file in files:
            if file.table == "opportunities":
                observations.append(
                    canonical_rows(file.source.rows.lazy(), file.match, file.name).with_columns(
                        pl.lit(folder.name).alias(SNAPSHOT)
                    )
                )
            used.append(file)
    # follow-ups accumulate: the latest snapshot that has them holds them all
    followups = [f for f in used if f.table == "followups"]
    ignored += [f.name for f in followups[:-1]]
    used = [f for f in used if f.table != "followups"] + followups[-1:]
    if not observations:
        raise UnusableInputError(f"{latest.parent}: no snapshot holds opportunities.")
    settings = with_export_date(settings, date.fromisoformat(latest.name))
    seen = pl.concat(observations, how="diagonal").rename({"_row": "_source_row"})
    tables = canonical_tables([f for f in used if f.table != "opportunities"])
    history = snapshot_history(seen).collect()
    if "stage_history" in tables:
        history = pl.concat([tables["stage_history"].drop("_row"), history], how="diagonal")
    tables["stage_history"] = numbered(history)
    tables["opportunities"] = numbered(latest_observations(seen).collect())
    reason = (
        f"{detection_reason(preset, [f for f in used if f.name.startswith(latest.name)])}"
        f"; stage history from {len(snapshots)} dated snapshots "
        f"({snapshots[0].name} … {latest.name})"
    )
    # a snapshot folder's rate files are read from the latest one: none is "not used"
    rate_files = {t.path.name for t in latest_tables if is_rate_table(t)}
    return Inputs(
        preset,
        reason,
        used,
        [name for name in ignored if name.rsplit("/", 1)[-1] not in rate_files],
        tables,
        settled_currency(effective_settings(settings, preset), tables, latest_tables, used),
        lookalikes,
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
