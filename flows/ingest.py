"""Read an input folder in any known export layout, then parse and validate it.

The folder's files (CSV or XLSX) are matched against the source presets (or the one forced
with --source / [source].preset); the chosen preset maps each file onto a canonical table.
`UnusableInputError` stops a run whose input cannot be used at all.

Tables of a million rows are transformed lazily (`frame.lazy()....collect()`): an eager
operation on a frame that polars' streaming engine produced first realigns the chunks of every
column, a copy of the whole table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from flows.config import load_presets
from flows.readers import SourceTable, UnusableInputError, export_files, read_source_file
from schemas.canonical import NOT_ANALYSED, TABLE_MODELS, column_types
from schemas.validation import (
    REASON_SEPARATOR,
    ValidatedTable,
    reason_counts,
    validate_table,
)
from transforms.funnel_model import RunSettings
from transforms.integrity import (
    history_after_loss_reasons,
    opportunity_rule_reasons,
    orphan_reasons,
)
from transforms.parse import (
    MOVED_CREATED,
    STAGE_FROM_HISTORY,
    derive_status,
    loss_from_history,
    lost_stage_to_status,
    parse_table,
    settle_close_dates,
    stage_from_history,
)
from transforms.sources import (
    DATE_ENTERED,
    REQUIRED,
    SNAPSHOT,
    TABLES,
    Preset,
    TableMatch,
    canonical_rows,
    date_entered_history,
    latest_observations,
    match_header,
    near_miss_hint,
    snapshot_history,
)

__all__ = [
    "CheckedInputs",
    "InputFile",
    "Inputs",
    "UnusableInputError",
    "check_inputs",
    "data_quality",
    "read_inputs",
    "validate_inputs",
]
DETECTION_ORDER = ("canonical", "template-zh", "salesforce", "hubspot", "pipedrive")


@dataclass(frozen=True)
class InputFile:
    """One input table (a CSV or a sheet) and the canonical table it feeds."""

    table: str
    source: SourceTable
    match: TableMatch

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def rows(self) -> int:
        return self.source.rows.height


@dataclass(frozen=True)
class Inputs:
    """What was read: the preset and why, the files used, and canonical raw string tables."""

    preset: Preset
    reason: str
    files: list[InputFile]
    ignored: list[str]
    raw: dict[str, pl.DataFrame]  # canonical names; _row (per table), _line, _file, _source_row
    settings: RunSettings  # the run's settings with the preset's value maps merged in


def chosen_preset(settings: RunSettings) -> list[Preset]:
    """The presets to try, in order: the forced one, or all of them for "auto"."""
    presets = load_presets()
    custom_columns = settings.source.columns
    custom = Preset("custom", "custom mapping in funnel.toml", custom_columns)
    name = settings.source.preset
    if name == "custom" or (name == "auto" and custom_columns):
        return [presets["canonical"].extended(custom)]
    if name == "auto":
        return [presets[n] for n in DETECTION_ORDER]
    base = presets[name]
    return [
        base.extended(replace(custom, name=base.name, label=base.label)) if custom_columns else base
    ]


def assign_files(
    preset: Preset, tables: list[SourceTable], files: dict[str, str]
) -> tuple[list[InputFile], list[str]]:
    """Each canonical table takes one file: the one named in [source.files], else the file
    whose header fits it best (ties to the earlier file). Returns the used files and the names
    of the files left out."""
    chosen: dict[str, InputFile] = {}
    for table, name in files.items():
        source = next(t for t in tables if name in (t.path.name, t.name))
        match = match_header(preset, table, source.header)
        if not match.is_usable:
            hints = "; ".join(
                near_miss_hint(preset, table, source.header, m) for m in match.missing
            )
            raise UnusableInputError(
                f"{source.path}: is set as {table} in [source.files] but has no column for "
                f"{hints}. Found: {', '.join(source.header)}."
            )
        chosen[table] = InputFile(table, source, match)
    taken = {id(f.source) for f in chosen.values()}
    candidates = sorted(
        (
            (m.score, -i, m, t)
            for i, t in enumerate(tables)
            if id(t) not in taken
            for table in TABLES
            if table not in chosen
            if (m := match_header(preset, table, t.header)).is_usable
        ),
        key=lambda c: (c[0], c[1]),
        reverse=True,
    )
    for _, _, match, source in candidates:
        if match.table not in chosen and id(source) not in taken:
            chosen[match.table] = InputFile(match.table, source, match)
            taken.add(id(source))
    used = [chosen[t] for t in TABLES if t in chosen]
    return used, [t.name for t in tables if id(t) not in taken]


def detection_reason(preset: Preset, used: list[InputFile]) -> str:
    parts = []
    for file in used:
        headers = [h for hs in file.match.columns.values() for h in hs][:5]
        parts.append(
            f"{file.name} as {file.table} ({file.match.score} columns: "
            f"{', '.join(headers)}{', ...' if file.match.score > 5 else ''})"
        )
    return f"{preset.label}: " + "; ".join(parts)


def no_layout_error(input_dir: Path, presets: list[Preset], tables: list[SourceTable]) -> str:
    """The message for a folder where no preset finds opportunities: the nearest miss."""
    best = max(
        ((p, t, match_header(p, "opportunities", t.header)) for p in presets for t in tables),
        key=lambda x: (x[2].score, -len(x[2].missing)),
        default=None,
    )
    if best is None:
        return (
            f"{input_dir}: holds no CSV or XLSX file; expected an export with opportunities "
            "(for example opportunities.csv)."
        )
    preset, table, match = best
    hints = "; ".join(
        near_miss_hint(preset, "opportunities", table.header, m) for m in match.missing
    )
    return (
        f"{table.path}: no known export layout has all the opportunity columns it needs. "
        f"Nearest: {preset.label}, which lacks {hints}. Found: {', '.join(table.header)}. "
        f"Expected at least: {', '.join(REQUIRED['opportunities'])}; map the missing ones in "
        "funnel.toml under [source.columns.opportunities] (see the README)."
    )


SNAPSHOT_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def read_folder(folder: Path, settings: RunSettings, label: str | None = None) -> list[SourceTable]:
    tables = [replace(t, folder=label) for p in export_files(folder) for t in read_source_file(p)]
    for table, name in settings.source.files.items():
        if not any(name in (t.path.name, t.name) for t in tables):
            found = ", ".join(t.name for t in tables) or "no CSV or XLSX file"
            raise UnusableInputError(
                f"{folder / name}: named for {table} in [source.files] but not found; the "
                f"folder holds {found}."
            )
    return tables


def choose_layout(
    folder: Path, tables: list[SourceTable], settings: RunSettings
) -> tuple[Preset, list[InputFile], list[str]]:
    """The preset whose opportunities match is strongest, with its file assignment."""
    candidates = chosen_preset(settings)
    best: tuple[Preset, list[InputFile], list[str]] | None = None
    for preset in candidates:
        used, ignored = assign_files(preset, tables, dict(settings.source.files))
        score = max((f.match.score for f in used if f.table == "opportunities"), default=0)
        if score and (
            best is None
            or score > max(f.match.score for f in best[1] if f.table == "opportunities")
        ):
            best = (preset, used, ignored)
    if best is None:
        raise UnusableInputError(no_layout_error(folder, candidates, tables))
    return best


def effective_settings(settings: RunSettings, preset: Preset) -> RunSettings:
    """The run's settings with the preset's value maps under the configured ones."""
    parse = replace(
        settings.parse,
        stages={**preset.stages, **settings.parse.stages},
        statuses={**preset.statuses, **settings.parse.statuses},
        channels={**preset.channels, **settings.parse.channels},
        default_date_order=preset.date_order or settings.parse.default_date_order,
        closed_before_created=settings.parse.closed_before_created
        or preset.closed_before_created
        or "quarantine",
    )
    return replace(settings, parse=parse)


def snapshot_folders(input_dir: Path) -> list[Path]:
    """Dated sub-folders (YYYY-MM-DD) of exports, oldest first."""
    return sorted(p for p in input_dir.iterdir() if p.is_dir() and SNAPSHOT_FOLDER.match(p.name))


def read_inputs(input_dir: Path, settings: RunSettings) -> Inputs:
    """The folder's exports under canonical column names, with the layout that fits them.

    A folder of dated snapshot folders (exports/2024-05-31/, exports/2024-06-30/, ...) is read
    as one export whose stage history comes from the differences between snapshots.
    """
    if not input_dir.is_dir():
        raise UnusableInputError(
            f"{input_dir}: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
    if not export_files(input_dir) and (snapshots := snapshot_folders(input_dir)):
        return read_snapshots(snapshots, settings)
    tables = read_folder(input_dir, settings)
    preset, used, ignored = choose_layout(input_dir, tables, settings)
    return Inputs(
        preset,
        detection_reason(preset, used),
        used,
        ignored,
        canonical_tables(used),
        effective_settings(settings, preset),
    )


def read_snapshots(snapshots: list[Path], settings: RunSettings) -> Inputs:
    latest = snapshots[-1]
    preset, _, _ = choose_layout(latest, read_folder(latest, settings, latest.name), settings)
    used: list[InputFile] = []
    ignored: list[str] = []
    observations = []
    for folder in snapshots:
        files, left_out = assign_files(
            preset, read_folder(folder, settings, folder.name), dict(settings.source.files)
        )
        ignored += left_out
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
    return Inputs(preset, reason, used, ignored, tables, effective_settings(settings, preset))


def numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """`_row` 1..n over a canonical table assembled from several files."""
    return frame.with_row_index("_row", offset=1).with_columns(pl.col("_row").cast(pl.Int64))


def rows_numbered(frame: pl.DataFrame, numbers: pl.Series) -> pl.DataFrame:
    """The rows of a table numbered 1..n in order (a canonical table's `_row`, a file's
    `_row`) with the given numbers: row r sits at index r - 1, so no join is needed."""
    return frame[numbers.cast(pl.Int64) - 1]


def canonical_tables(used: list[InputFile]) -> dict[str, pl.DataFrame]:
    """Per canonical table, the rows of every file feeding it, numbered 1.. in `_row`."""
    parts: dict[str, list[pl.LazyFrame]] = {t: [] for t in TABLES}
    for file in used:
        rows = file.source.rows.lazy()
        parts[file.table].append(canonical_rows(rows, file.match, file.name))
        if DATE_ENTERED in file.match.columns:
            id_header = file.match.columns["opportunity_id"][0]
            parts["stage_history"].append(
                date_entered_history(
                    rows, file.match, f"{file.name} (Date entered)", id_column=id_header
                )
            )
    return {
        table: numbered(pl.concat(frames, how="diagonal").collect().rename({"_row": "_source_row"}))
        for table, frames in parts.items()
        if frames
    }


def typed_table(
    raw: pl.DataFrame | None,
    table: str,
    settings: RunSettings,
    headers: dict[str, str] | None = None,
) -> pl.DataFrame:
    """Parsed canonical columns of a table, or an empty table when no file feeds it."""
    columns = column_types(TABLE_MODELS[table])
    frame = (raw if raw is not None else pl.DataFrame(schema={"_row": pl.Int64})).lazy()
    if table == "opportunities":
        frame = lost_stage_to_status(frame, funnel=settings.funnel, options=settings.parse)
    typed = parse_table(
        frame,
        columns=columns,
        funnel=settings.funnel,
        options=settings.parse,
        timezone=settings.timezone,
        headers=headers,
    )
    if table == "opportunities":
        typed = typed.join(frame.select("_row", STAGE_FROM_HISTORY), on="_row", how="left")
    return typed.collect()


def input_headers(inputs: Inputs, table: str) -> dict[str, str]:
    """Canonical column -> the input header it came from (the first file's), for messages."""
    for file in inputs.files:
        if file.table == table:
            return {c: headers[0] for c, headers in file.match.columns.items()}
    return {}


def validate_inputs(inputs: Inputs) -> dict[str, ValidatedTable]:
    """Valid rows and quarantined rows of every canonical table, opportunities first."""
    settings = inputs.settings
    funnel = settings.funnel

    def typed(table: str) -> pl.DataFrame:
        return typed_table(inputs.raw.get(table), table, settings, input_headers(inputs, table))

    history = typed("stage_history")
    opportunities = (
        typed("opportunities")
        .lazy()
        .pipe(stage_from_history, history.lazy(), funnel=funnel)
        .pipe(derive_status, funnel=funnel)
        .pipe(loss_from_history, history.lazy())
        .pipe(
            settle_close_dates,
            keep_closed_before_created=settings.parse.closed_before_created == "keep",
        )
        .collect()
    )
    moved = int(opportunities[MOVED_CREATED].sum())
    opportunities = opportunities.lazy().drop(MOVED_CREATED).collect()
    rules = opportunity_rule_reasons(opportunities.lazy(), history.lazy(), funnel=funnel).collect()
    notes = (
        ({"note": "created_at moved back to closed_at (closed before created)", "rows": moved},)
        if moved
        else ()
    )
    validated = {
        "opportunities": replace(
            validate_table("opportunities", opportunities, TABLE_MODELS["opportunities"], rules),
            notes=notes,
        )
    }
    valid_opps = validated["opportunities"].valid.lazy()
    quarantined_ids = opportunities.lazy().join(
        validated["opportunities"].quarantined.lazy().select("_row"), on="_row", how="semi"
    )
    for table in ("stage_history", "followups"):
        rows = history if table == "stage_history" else typed(table)
        reasons = [orphan_reasons(rows.lazy(), valid_opps, quarantined_ids)]
        if table == "stage_history":
            reasons.append(history_after_loss_reasons(rows.lazy(), valid_opps))
        validated[table] = validate_table(
            table, rows, TABLE_MODELS[table], pl.concat(reasons).collect()
        )
    return validated


def data_quality(inputs: Inputs, validated: dict[str, ValidatedTable]) -> dict[str, Any]:
    """Per canonical table: rows read, valid, quarantined, reasons, and the same per file."""
    quality = {}
    for name, table in validated.items():
        raw = inputs.raw.get(name, pl.DataFrame(schema={"_row": pl.Int64, "_file": pl.Categorical}))
        bad = rows_numbered(raw.select("_file"), table.quarantined["_row"])
        counts = dict(raw.select("_file").group_by("_file", maintain_order=True).len().iter_rows())
        names = [f.name for f in inputs.files if f.table == name]
        names += [n for n in counts if n not in names]
        per_file = []
        for file_name in names:
            rows = counts.get(file_name, 0)
            quarantined = bad.filter(pl.col("_file") == file_name).height
            per_file.append(
                {
                    "file": file_name,
                    "rows_read": rows,
                    "rows_valid": rows - quarantined,
                    "rows_quarantined": quarantined,
                }
            )
        quality[name] = {
            "rows_read": table.rows_read,
            "rows_valid": table.rows_valid,
            "rows_quarantined": table.rows_quarantined,
            "reasons": reason_counts(table),
            "notes": list(table.notes),
            "files": per_file,
        }
    return quality


def quarantine_rows(
    raw: pl.DataFrame, table: ValidatedTable, files: list[InputFile]
) -> pl.DataFrame:
    """Quarantined rows as they came in (their file's own columns), with file, line number and
    every reason. `_line` is where the record starts, the header being line 1."""
    keys = pl.concat(
        [
            table.quarantined,
            rows_numbered(raw.select("_file", "_line", "_source_row"), table.quarantined["_row"]),
        ],
        how="horizontal",
    )
    reasons = pl.col("reasons").list.join(REASON_SEPARATOR).alias("_reasons")
    parts = []
    for file in files:
        mine = keys.filter(pl.col("_file") == file.name)
        if mine.height == 0:
            continue
        original = rows_numbered(file.source.rows.select(file.source.header), mine["_source_row"])
        parts.append(
            pl.concat([mine.select("_file", "_line", reasons), original], how="horizontal")
        )
    derived = keys.filter(~pl.col("_file").is_in([f.name for f in files]))
    if derived.height:  # rows made from other rows (HubSpot's "Date entered" columns)
        values = [c for c in raw.columns if not c.startswith("_")]
        parts.append(
            pl.concat(
                [
                    derived.select("_file", "_line", reasons),
                    rows_numbered(raw.select(values), derived["_row"]),
                ],
                how="horizontal",
            )
        )
    if not parts:
        return pl.DataFrame()
    return (
        pl.concat(parts, how="diagonal")
        .with_columns(pl.col("_file").cast(pl.String))
        .sort("_file", "_line")
    )


def input_summary(inputs: Inputs, quality: dict[str, Any]) -> list[dict[str, Any]]:
    """Per input file: where it is, its SHA-256, how it was read, and its row counts."""
    per_file = {f["file"]: f for t in quality.values() for f in t["files"]}
    return [
        {
            "table": f.table,
            "name": f.name,
            "path": str(f.source.path),
            "sha256": f.source.sha256,
            "encoding": f.source.encoding,
            "delimiter": f.source.delimiter,
            "rows": f.rows,
            "rows_valid": per_file[f.name]["rows_valid"],
            "rows_quarantined": per_file[f.name]["rows_quarantined"],
        }
        for f in inputs.files
    ]


@dataclass(frozen=True)
class CheckedInputs:
    """What a run keeps of its inputs once they are validated; the raw rows can then go.

    `tables` holds the valid rows of each canonical table without the columns no figure reads
    (contact details, free text: `NOT_ANALYSED`); `quarantine` the quarantined rows as they
    came in, ready to write.
    """

    tables: dict[str, pl.DataFrame]
    quality: dict[str, Any]
    quarantine: dict[str, pl.DataFrame]
    files: list[dict[str, Any]]
    source: dict[str, Any]
    settings: RunSettings
    history_available: bool


def check_inputs(inputs: Inputs) -> CheckedInputs:
    validated = validate_inputs(inputs)
    quality = data_quality(inputs, validated)
    return CheckedInputs(
        tables={
            name: table.valid.lazy().drop(NOT_ANALYSED[name], strict=False).collect()
            for name, table in validated.items()
        },
        quality=quality,
        quarantine={
            name: quarantine_rows(
                raw, validated[name], [f for f in inputs.files if f.table == name]
            )
            for name, raw in inputs.raw.items()
        },
        files=input_summary(inputs, quality),
        source={
            "preset": inputs.preset.name,
            "detected": inputs.reason,
            "files": {f.name: f.table for f in inputs.files},
            "ignored": inputs.ignored,
        },
        settings=inputs.settings,
        history_available="stage_history" in inputs.raw,
    )
