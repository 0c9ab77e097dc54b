"""The layout of an input folder: which preset fits its files, and which file feeds each
canonical table.

Pure: files arrive as `SourceTable`s (read by `flows.io.readers`); presets as data.
`UnusableInputError` stops a run whose input cannot be used at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from funnel_reports.schemas.canonical import NOT_ANALYSED
from funnel_reports.schemas.vocabulary import (
    AUTO,
    CANONICAL,
    COMPOSITE_ID_TABLES,
    CUSTOM,
    LOST,
    OPPORTUNITIES,
    PRESETS,
    QUARANTINE,
    TABLES,
)
from funnel_reports.transforms.funnel_model import Lookup, RunSettings
from funnel_reports.transforms.staging.presets import (
    REQUIRED,
    Preset,
    TableMatch,
    header_key,
    mapping_hint,
    match_header,
    near_miss_hint,
)


class UnusableInputError(Exception):
    """An input that cannot be used at all; the message says what was found and expected."""


@dataclass(frozen=True)
class SourceTable:
    """One CSV file or spreadsheet sheet, as strings: read whole, or by its header only
    (`frame` None: a file no table needs is never read past its header)."""

    path: Path
    sheet: str | None
    sha256: str  # empty for a file read by its header only
    encoding: str
    delimiter: str | None
    header: list[str]
    frame: pl.DataFrame | None  # the header's columns as strings, plus _row and _line
    folder: str | None = None  # the snapshot folder it came from, if any
    # columns of the header left out of `frame` (no figure or check reads them, or their
    # text was let go once typed: `transforms.staging.inputs.typed_at_once`); the
    # quarantine reads them again from the file (`flows.io.exports.whole_quarantine`)
    unread: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        name = f"{self.path.name}[{self.sheet}]" if self.sheet else self.path.name
        return f"{self.folder}/{name}" if self.folder else name

    @property
    def rows(self) -> pl.DataFrame:
        if self.frame is None:
            raise RuntimeError(f"{self.name}: read by its header only, its rows are not read")
        return self.frame


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
class Lookalike:
    """A file left out that looks like a canonical table, by its name or by most of its
    headers: either it lacks required columns, or the table takes another file."""

    file: str
    table: str
    by: str  # "name" or "headers"
    missing: tuple[str, ...]  # the required columns it has no header for
    used_instead: str | None  # the file the table takes instead

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "table": self.table,
            "by": self.by,
            "missing": list(self.missing),
            "used_instead": self.used_instead,
        }


@dataclass(frozen=True)
class Assignment:
    """The files a preset uses (one per table), the ones it leaves out, and which of those
    look like a table."""

    used: list[InputFile]
    ignored: list[str]
    lookalikes: list[Lookalike]
    # tables that two or more files fit equally well (the file taken first): the table, files
    ties: list[tuple[str, list[InputFile]]] = field(default_factory=list)


# a typed table and, per column, how many of its cells held a null word
# (`transforms.staging.checks.typed_table`)
TypedTable = tuple[pl.DataFrame, dict[str, int]]


@dataclass(frozen=True)
class Inputs:
    """What was read: the preset and why, the files used, and canonical raw string tables."""

    preset: Preset
    reason: str
    files: list[InputFile]
    ignored: list[str]
    raw: dict[str, pl.DataFrame]  # canonical names; _row (per table), _line, _file, _source_row
    settings: RunSettings  # the run's settings with the preset's value maps merged in
    lookalikes: list[Lookalike] = field(default_factory=list)
    lookups: list[dict[str, Any]] = field(default_factory=list)  # what each lookup did
    # tables typed as soon as they were read (`raw` then holds their row numbers, lines and
    # files only)
    typed: dict[str, TypedTable] = field(default_factory=dict)


def candidate_presets(settings: RunSettings, presets: Mapping[str, Preset]) -> list[Preset]:
    """The presets to try, in order: the forced one, or all of them for "auto"; each builds
    the ids of `[source.composite_ids]`."""
    composites: dict[str, dict[str, tuple[str, ...]]] = {}
    for column, parts in settings.source.composite_ids.items():
        composites.setdefault(COMPOSITE_ID_TABLES[column], {})[column] = parts
    return [
        replace(p, composites=composites) if composites else p
        for p in layout_candidates(settings, presets)
    ]


def layout_candidates(settings: RunSettings, presets: Mapping[str, Preset]) -> list[Preset]:
    custom_columns = settings.source.columns
    custom = Preset(CUSTOM, "custom mapping in funnel.toml", custom_columns)
    name = settings.source.preset
    if name == CUSTOM or (name == AUTO and custom_columns):
        return [presets[CANONICAL].extended(custom)]
    if name == AUTO:
        return [presets[n] for n in PRESETS]
    base = presets[name]
    return [
        base.extended(replace(custom, name=base.name, label=base.label)) if custom_columns else base
    ]


def assign_files(preset: Preset, tables: list[SourceTable], files: dict[str, str]) -> Assignment:
    """Each canonical table takes one file: the one named in [source.files], else the one
    named after it (`followups.csv`), else the file whose header fits it best (ties to the
    earlier file). A file named in [source.files] that
    lacks a required column is refused here; one that a table needs by its name or its
    headers is refused by `refuse_needed_files` once the preset is chosen."""
    chosen: dict[str, InputFile] = {}
    for table, name in files.items():
        source = next(t for t in tables if name in (t.path.name, t.name))
        match = match_header(preset, table, source.header)
        if not match.is_usable:
            raise UnusableInputError(
                unusable_file_message(preset, source, match, "is set as {} in [source.files]")
            )
        chosen[table] = InputFile(table, source, match)
    taken = {id(f.source) for f in chosen.values()}
    candidates = sorted(
        (
            (table in names_of(t), m.score, -i, m, t)
            for i, t in enumerate(tables)
            if id(t) not in taken
            for table in TABLES
            if table not in chosen
            if (m := match_header(preset, table, t.header)).is_usable
        ),
        key=lambda c: (c[0], c[1], c[2]),
        reverse=True,
    )
    for _, _, _, match, source in candidates:
        if match.table not in chosen and id(source) not in taken:
            chosen[match.table] = InputFile(match.table, source, match)
            taken.add(id(source))
    left_out = [t for t in tables if id(t) not in taken]
    lookalikes = [
        lookalike
        for t in left_out
        if (lookalike := looks_like(preset, t, {n: f.name for n, f in chosen.items()}))
    ]
    ties = []
    for table, file in chosen.items():
        if table in files:
            continue
        fit = (table in names_of(file.source), file.match.score)
        rivals = [
            InputFile(table, t, m)
            for t in left_out
            if (m := match_header(preset, table, t.header)).is_usable
            and (table in names_of(t), m.score) == fit
        ]
        if rivals:
            ties.append((table, [file, *rivals]))
    return Assignment(
        [chosen[t] for t in TABLES if t in chosen], [t.name for t in left_out], lookalikes, ties
    )


def refuse_ties(folder: Path, assignment: Assignment) -> None:
    """Stop when two files fit one table equally well (the same headers, as two months'
    exports side by side): which one is meant is for `[source.files]` to say, not the order of
    their names."""
    for table, files in assignment.ties:
        names = sorted(f.source.name.rsplit("/", 1)[-1] for f in files)
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        raise UnusableInputError(
            f"{folder}: {listed} fit {table} equally well ({files[0].match.score} columns "
            f"each); name the one to use in funnel.toml: [source.files] {table} = "
            f'"{names[-1]}"'
        )


def names_of(source: SourceTable) -> set[str]:
    """The names a file goes by, as a table would be named: its stem and its sheet."""
    return {header_key(n).replace(" ", "_") for n in (source.path.stem, source.sheet or "")}


def looks_like(preset: Preset, source: SourceTable, chosen: dict[str, str]) -> Lookalike | None:
    """The table a file left out looks like: the one it is named after (`followups.csv`, a
    sheet `followups`), else the one that more than half of its headers map to."""
    matches: dict[str, TableMatch] = {t: match_header(preset, t, source.header) for t in TABLES}
    by_name: list[str] = [t for t in TABLES if t in names_of(source)]
    by_headers = [t for t, m in matches.items() if m.score * 2 > len(source.header)]
    table: str
    if by_name:
        table, by = by_name[0], "name"
    elif by_headers:
        table, by = max(by_headers, key=lambda t: matches[t].score), "headers"
    else:
        return None
    return Lookalike(source.name, table, by, tuple(matches[table].missing), chosen.get(table))


def unusable_file_message(preset: Preset, source: SourceTable, match: TableMatch, why: str) -> str:
    """A file a table needs but cannot use: what it lacks, the nearest headers, the fix."""
    hints = "; ".join(near_miss_hint(preset, match.table, source.header, m) for m in match.missing)
    return (
        f"{source.path}: {why.format(match.table)} but has no column for {hints}. "
        f"Found: {', '.join(source.header)}. To use it, "
        f"{mapping_hint(preset, match.table, source.header, match.missing)}."
    )


def refuse_needed_files(preset: Preset, tables: list[SourceTable], assignment: Assignment) -> None:
    """Stop when a table that no file feeds has a file that looks like it but lacks a
    required column: it must never be silently left out. Stop too when a file used lacks a
    header that `[source.composite_ids]` builds its id from."""
    for file in assignment.used:
        for column, parts in file.match.composites.items():
            if absent := [h for h in parts if h not in file.source.header]:
                raise UnusableInputError(
                    f"{file.source.path}: has no column {', '.join(repr(h) for h in absent)} "
                    f"named in [source.composite_ids] {column}; its columns are "
                    f"{', '.join(file.source.header)}"
                )
    for lookalike in assignment.lookalikes:
        if lookalike.used_instead is None and lookalike.missing:
            source = next(t for t in tables if t.name == lookalike.file)
            match = match_header(preset, lookalike.table, source.header)
            why = "is named like {}" if lookalike.by == "name" else "looks like {} by its headers"
            raise UnusableInputError(unusable_file_message(preset, source, match, why))


def needed_headers(
    file: InputFile, settings: RunSettings, lookups: tuple[Lookup, ...]
) -> list[str]:
    """The headers of a used file that a figure or a check reads, in the file's order: those
    mapped to a canonical column other than contact details and free text (`NOT_ANALYSED`),
    the parts of a composite id, the flags, the stage-date columns, and the keys of lookups.
    The rest (unmapped columns, contacts, notes) are read only for quarantined rows."""
    not_analysed = set(NOT_ANALYSED[file.table])
    needed = {
        header
        for canonical, headers in file.match.columns.items()
        if canonical not in not_analysed
        for header in headers
    }
    needed |= {h for parts in file.match.composites.values() for h in parts}
    if file.table == OPPORTUNITIES:
        needed |= set(settings.source.stage_dates.values()) | {lookup.on for lookup in lookups}
    return [h for h in file.source.header if h in needed]


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
        ((p, t, match_header(p, OPPORTUNITIES, t.header)) for p in presets for t in tables),
        key=lambda x: (x[2].score, -len(x[2].missing)),
        default=None,
    )
    if best is None:
        return (
            f"{input_dir}: holds no CSV or XLSX file; expected an export with opportunities "
            "(for example opportunities.csv)."
        )
    preset, table, match = best
    hints = "; ".join(near_miss_hint(preset, OPPORTUNITIES, table.header, m) for m in match.missing)
    return (
        f"{table.path}: no known export layout has all the opportunity columns it needs. "
        f"Nearest: {preset.label}, which lacks {hints}. Found: {', '.join(table.header)}. "
        f"Expected at least: {', '.join(REQUIRED['opportunities'])}; map the missing ones in "
        "funnel.toml under [source.columns.opportunities] (see the README)."
    )


def choose_layout(
    folder: Path,
    tables: list[SourceTable],
    settings: RunSettings,
    presets: Mapping[str, Preset],
) -> tuple[Preset, Assignment]:
    """The preset whose opportunities match is strongest, with its file assignment."""
    candidates = candidate_presets(settings, presets)
    best: tuple[Preset, Assignment] | None = None
    best_score = 0
    refusal: UnusableInputError | None = None  # the first layout a [source.files] file misses
    for preset in candidates:
        try:
            assignment = assign_files(preset, tables, dict(settings.source.files))
        except UnusableInputError as error:
            refusal = refusal or error
            continue
        score = max((f.match.score for f in assignment.used if f.table == OPPORTUNITIES), default=0)
        if score > best_score:
            best, best_score = (preset, assignment), score
    if best is None:
        raise refusal or UnusableInputError(no_layout_error(folder, candidates, tables))
    refuse_needed_files(best[0], tables, best[1])
    refuse_ties(folder, best[1])
    return best


def effective_settings(settings: RunSettings, preset: Preset) -> RunSettings:
    """The run's settings with the preset's value maps under the configured ones. A preset
    maps stage values to the default funnel's ids: a target the run's funnel lacks is left
    out, so that its own stage ids, labels and aliases read the value (or it is an unknown
    stage, quarantined with a hint)."""
    known = {*settings.funnel.ids, LOST}
    parse = replace(
        settings.parse,
        stages={
            **{value: stage for value, stage in preset.stages.items() if stage in known},
            **settings.parse.stages,
        },
        statuses={**preset.statuses, **settings.parse.statuses},
        channels={**preset.channels, **settings.parse.channels},
        forecast_categories={
            **preset.forecast_categories,
            **settings.parse.forecast_categories,
        },
        default_date_order=preset.date_order or settings.parse.default_date_order,
        closed_before_created=settings.parse.closed_before_created
        or preset.closed_before_created
        or QUARANTINE,
    )
    return replace(settings, parse=parse)
