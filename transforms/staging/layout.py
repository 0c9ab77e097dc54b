"""The layout of an input folder: which preset fits its files, and which file feeds each
canonical table.

Pure: files arrive as `SourceTable`s (read by `flows.io.readers`); presets as data.
`UnusableInputError` stops a run whose input cannot be used at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from schemas.vocabulary import (
    AUTO,
    CANONICAL,
    CUSTOM,
    OPPORTUNITIES,
    PRESETS,
    QUARANTINE,
    TABLES,
)
from transforms.funnel_model import RunSettings
from transforms.staging.presets import REQUIRED, Preset, TableMatch, match_header, near_miss_hint


class UnusableInputError(Exception):
    """An input that cannot be used at all; the message says what was found and expected."""


@dataclass(frozen=True)
class SourceTable:
    """One CSV file or spreadsheet sheet, as strings."""

    path: Path
    sheet: str | None
    sha256: str
    encoding: str
    delimiter: str | None
    header: list[str]
    rows: pl.DataFrame  # the header's columns as strings, plus _row and _line
    folder: str | None = None  # the snapshot folder it came from, if any

    @property
    def name(self) -> str:
        name = f"{self.path.name}[{self.sheet}]" if self.sheet else self.path.name
        return f"{self.folder}/{name}" if self.folder else name


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


def candidate_presets(settings: RunSettings, presets: Mapping[str, Preset]) -> list[Preset]:
    """The presets to try, in order: the forced one, or all of them for "auto"."""
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
) -> tuple[Preset, list[InputFile], list[str]]:
    """The preset whose opportunities match is strongest, with its file assignment."""
    candidates = candidate_presets(settings, presets)
    best: tuple[Preset, list[InputFile], list[str]] | None = None
    for preset in candidates:
        used, ignored = assign_files(preset, tables, dict(settings.source.files))
        score = max((f.match.score for f in used if f.table == OPPORTUNITIES), default=0)
        if score and (
            best is None or score > max(f.match.score for f in best[1] if f.table == OPPORTUNITIES)
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
        or QUARANTINE,
    )
    return replace(settings, parse=parse)
