"""The input folder's exports as canonical raw tables: the one staging entry that owns the
layout, the columns to read, the mapping, the lookups and dated snapshots.

Pure: the folder arrives as its files' headers (`Export`, listed and read by `flows.io`), and
the rows of the files the layout takes are asked for through `read`, the one door to the
files (`flows.io.readers.read_rows`), with only the columns a figure or a check needs
(`needed_headers`). What comes out is `Inputs`, ready for `transforms.staging.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import polars as pl

from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.funnel_model import Lookup, RunSettings
from funnel_reports.transforms.staging.checks import input_headers, typed_table
from funnel_reports.transforms.staging.currency import (
    currency_settings,
    export_rates,
    is_rate_table,
)
from funnel_reports.transforms.staging.layout import (
    Assignment,
    InputFile,
    Inputs,
    Lookalike,
    SourceTable,
    TypedTable,
    UnusableInputError,
    assign_files,
    choose_layout,
    detection_reason,
    effective_settings,
    needed_headers,
    refuse_needed_files,
    refuse_ties,
)
from funnel_reports.transforms.staging.lookups import joined_lookups
from funnel_reports.transforms.staging.mapping import (
    SNAPSHOT,
    canonical_rows,
    canonical_tables,
    latest_observations,
    numbered,
    snapshot_history,
)
from funnel_reports.transforms.staging.presets import Preset

# a table's rows, read: only the given headers of it (all of them: None)
RowReader = Callable[[SourceTable, list[str] | None], SourceTable]


@dataclass(frozen=True)
class ExportFolder:
    """One folder of export files, by their headers: the input folder itself, or one of its
    dated snapshot folders (`name` its date, YYYY-MM-DD)."""

    path: Path
    tables: list[SourceTable]
    name: str | None = None
    # each file's last modification, as a local date (the export's date is the newest)
    modified: Mapping[Path, date] = field(default_factory=dict)


@dataclass(frozen=True)
class Export:
    """An input folder as its headers tell it: one folder of files, or dated snapshot
    folders oldest first; and today, in the run's time zone (the run's clock, read by
    `flows.io`)."""

    folder: Path
    folders: list[ExportFolder]
    today: date

    @property
    def snapshots(self) -> bool:
        return self.folders[0].name is not None

    @property
    def latest(self) -> ExportFolder:
        return self.folders[-1]


def refuse_missing_named(folder: ExportFolder, settings: RunSettings) -> None:
    """Stop when a file [source.files] names is not in the folder."""
    for table, name in settings.source.files.items():
        if not any(name in (t.path.name, t.name) for t in folder.tables):
            found = ", ".join(t.name for t in folder.tables) or "no CSV or XLSX file"
            raise UnusableInputError(
                f"{folder.path / name}: named for {table} in [source.files] but not found; the "
                f"folder holds {found}."
            )


def refuse_bad_snapshot_dates(export: Export) -> None:
    """Stop at a snapshot folder dated after today, or not a date at all: read as the
    latest, it would be the export's present."""
    for folder in export.folders:
        try:
            day = date.fromisoformat(folder.name or "")
        except ValueError:
            raise UnusableInputError(
                f"{folder.path}: a snapshot folder named like a date that is none; rename it "
                "to the date its export was taken (YYYY-MM-DD)"
            ) from None
        if day > export.today:
            raise UnusableInputError(
                f"{folder.path}: a snapshot folder dated after today ({export.today}); rename "
                "it to the date its export was taken"
            )


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


def layout_of(
    export: Export, settings: RunSettings, presets: Mapping[str, Preset]
) -> tuple[Preset, Assignment]:
    """The preset that fits the export (its latest snapshot folder's, for dated snapshots)
    and the latest folder's file assignment; what the folder's shape makes unusable stops
    here, before any row is read."""
    if export.snapshots:
        refuse_bad_snapshot_dates(export)
    for folder in export.folders:
        refuse_missing_named(folder, settings)
    latest = export.latest
    return choose_layout(latest.path, latest.tables, settings, presets)


def needed_columns(
    tables: list[SourceTable],
    used: list[InputFile],
    settings: RunSettings,
    lookups: tuple[Lookup, ...] = (),
) -> dict[str, list[str] | None]:
    """What of each file a run reads, by file name: the files used, with the columns a figure
    or a check reads (`needed_headers`); the side files of `lookups` (the first present of
    each) and the export's exchange rates, whole (None). A file not named is never read past
    its header."""
    columns: dict[str, list[str] | None] = {
        f.source.name: needed_headers(f, settings, lookups) for f in used
    }
    columns |= {t.name: None for t in tables if is_rate_table(t)}
    for lookup in lookups:
        side = next((t for name in lookup.files for t in tables if t.name == name), None)
        if side is not None:
            columns[side.name] = None
    return columns


def read_needed(
    tables: list[SourceTable],
    used: list[InputFile],
    columns: Mapping[str, list[str] | None],
    read: RowReader,
) -> tuple[list[SourceTable], list[InputFile]]:
    """The tables with the rows of those named in `columns` (`needed_columns`) read in, but
    for those read already, and the files used with their rows."""
    loaded = {
        t.name: read(t, columns[t.name]) if t.frame is None else t
        for t in tables
        if t.name in columns
    }
    return (
        [loaded.get(t.name, t) for t in tables],
        [replace(f, source=loaded[f.source.name]) for f in used],
    )


def typed_at_once(
    table: str, raw: pl.DataFrame, files: list[InputFile], settings: RunSettings
) -> tuple[pl.DataFrame, TypedTable, list[InputFile]]:
    """A canonical table typed as soon as its files are read, and its text let go: `raw`
    kept to the row's file, line and number in its file (and the stage name, for
    `checks.unknown_stages`), the files without their rows, every column `unread`, so that
    a quarantined row is read again from its file (`flows.io.exports.whole_quarantine`).
    A table with rows made from other rows (HubSpot's "Date entered" columns) keeps them:
    no file holds them."""
    mine = [f for f in files if f.table == table]
    typed = typed_table(raw, table, settings, input_headers(mine, table))
    if not set(raw["_file"].unique().cast(pl.String)) <= {f.name for f in mine}:
        return raw, typed, files
    released = [
        replace(
            f,
            source=replace(
                f.source, frame=f.source.rows.select("_line"), unread=tuple(f.source.header)
            ),
        )
        if f.table == table
        else f
        for f in files
    ]
    kept = [c for c in ("_source_row", "_line", "_file", "stage") if c in raw.columns]
    return raw.select(kept), typed, released


def export_date(folder: ExportFolder, read: Collection[str], today: date) -> date:
    """When the export was taken, as well as its files tell: the newest modification date of
    those read (`read`: their names), never after today."""
    days = [folder.modified[t.path] for t in folder.tables if t.name in read]
    return min(max(days, default=today), today)


def with_export_date(settings: RunSettings, day: date) -> RunSettings:
    """The settings with the export's date, which bounds the dates its values may hold."""
    return replace(settings, parse=replace(settings.parse, export_date=day))


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


def staged_inputs(
    export: Export, settings: RunSettings, presets: Mapping[str, Preset], read: RowReader
) -> Inputs:
    """The export's tables under canonical column names, with the layout that fits them,
    each typed as soon as it is read (`typed_at_once`): the deals and their history first,
    then the follow-ups (ten a deal, the largest), so that no two tables' text is held at
    once.

    A folder of dated snapshot folders (exports/2024-05-31/, exports/2024-06-30/, ...) is
    one export whose stage history comes from the differences between snapshots."""
    preset, assignment = layout_of(export, settings, presets)
    if export.snapshots:
        return snapshot_inputs(export, settings, preset, read)
    folder = export.latest
    lookups = (*preset.lookups, *settings.source.lookups)
    columns = needed_columns(folder.tables, assignment.used, settings, lookups)
    settings = with_export_date(settings, export_date(folder, columns, export.today))
    followups = [f for f in assignment.used if f.table == FOLLOWUPS]
    later = {f.name for f in followups}
    inputs = deal_inputs(
        folder,
        preset,
        replace(assignment, used=[f for f in assignment.used if f.name not in later]),
        settings,
        read,
        {name: read_as for name, read_as in columns.items() if name not in later},
    )
    if not followups:
        return inputs
    _, followups = read_needed(folder.tables, followups, {n: columns[n] for n in later}, read)
    raw, typed, followups = typed_at_once(
        FOLLOWUPS, canonical_tables(followups)[FOLLOWUPS], followups, inputs.settings
    )
    order = [f.name for f in assignment.used]
    files = sorted([*inputs.files, *followups], key=lambda f: order.index(f.name))
    return replace(
        inputs,
        reason=detection_reason(preset, files),
        files=files,
        raw=inputs.raw | {FOLLOWUPS: raw},
        typed=inputs.typed | {FOLLOWUPS: typed},
    )


def deal_inputs(
    folder: ExportFolder,
    preset: Preset,
    assignment: Assignment,
    settings: RunSettings,
    read: RowReader,
    columns: Mapping[str, list[str] | None],
) -> Inputs:
    """The opportunities and their stage history (the files `assignment` uses, and the
    side files and rates `columns` names), read, looked up, in one currency, and typed."""
    tables, used = read_needed(folder.tables, assignment.used, columns, read)
    refuse_empty(used, lambda f: f.rows > 0)
    raw = canonical_tables(used, settings.source.stage_dates)
    raw[OPPORTUNITIES], looked_up = joined_lookups(
        raw[OPPORTUNITIES],
        used,
        tables,
        optional=preset.lookups,
        required=settings.source.lookups,
    )
    sides = {lookup["file"] for lookup in looked_up} | {t.name for t in tables if is_rate_table(t)}
    settings = settled_currency(effective_settings(settings, preset), raw, tables, used)
    reason = detection_reason(preset, used)
    typed: dict[str, TypedTable] = {}
    for table in [t for t in (STAGE_HISTORY, OPPORTUNITIES) if t in raw]:
        raw[table], typed[table], used = typed_at_once(table, raw[table], used, settings)
    return Inputs(
        preset,
        reason,
        used,
        [name for name in assignment.ignored if name not in sides],
        raw,
        settings,
        [lookalike for lookalike in assignment.lookalikes if lookalike.file not in sides],
        looked_up,
        typed,
    )


def snapshot_inputs(
    export: Export, settings: RunSettings, preset: Preset, read: RowReader
) -> Inputs:
    """Dated snapshots as one export: each deal's latest row is its opportunity, and every
    observed row a stage-history row at its snapshot's date."""
    latest = export.latest
    used: list[InputFile] = []
    ignored: list[str] = []
    lookalikes: list[Lookalike] = []
    observations = []
    latest_tables: list[SourceTable] = []
    for folder in export.folders:
        assignment = assign_files(preset, folder.tables, dict(settings.source.files))
        refuse_needed_files(preset, folder.tables, assignment)
        refuse_ties(folder.path, assignment)
        columns = needed_columns(folder.tables, assignment.used, settings)
        tables, files = read_needed(folder.tables, assignment.used, columns, read)
        if folder is latest:
            latest_tables = tables
            refuse_empty(files, lambda f: f.rows > 0)
        ignored += assignment.ignored
        lookalikes += assignment.lookalikes
        for file in files:
            if file.table == OPPORTUNITIES:
                observations.append(
                    canonical_rows(file.source.rows.lazy(), file.match, file.name).with_columns(
                        pl.lit(folder.name).alias(SNAPSHOT)
                    )
                )
            used.append(file)
    # follow-ups accumulate: the latest snapshot that has them holds them all
    followups = [f for f in used if f.table == FOLLOWUPS]
    ignored += [f.name for f in followups[:-1]]
    used = [f for f in used if f.table != FOLLOWUPS] + followups[-1:]
    if not observations:
        raise UnusableInputError(f"{export.folder}: no snapshot holds opportunities.")
    settings = with_export_date(settings, date.fromisoformat(latest.name or ""))
    seen = pl.concat(observations, how="diagonal").rename({"_row": "_source_row"})
    raw = canonical_tables([f for f in used if f.table != OPPORTUNITIES])
    history = snapshot_history(seen).collect()
    if STAGE_HISTORY in raw:
        history = pl.concat([raw[STAGE_HISTORY].drop("_row"), history], how="diagonal")
    raw[STAGE_HISTORY] = numbered(history)
    raw[OPPORTUNITIES] = numbered(latest_observations(seen).collect())
    first = export.folders[0].name
    reason = (
        f"{detection_reason(preset, [f for f in used if f.name.startswith(f'{latest.name}/')])}"
        f"; stage history from {len(export.folders)} dated snapshots ({first} … {latest.name})"
    )
    # a snapshot folder's rate files are read from the latest one: none is "not used"
    rate_files = {t.path.name for t in latest_tables if is_rate_table(t)}
    return Inputs(
        preset,
        reason,
        used,
        [name for name in ignored if name.rsplit("/", 1)[-1] not in rate_files],
        raw,
        settled_currency(effective_settings(settings, preset), raw, latest_tables, used),
        lookalikes,
    )
