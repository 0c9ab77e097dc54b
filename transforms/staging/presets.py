"""Export layouts: which input headers feed each canonical column, per table, and how a file's
header matches a layout.

Pure: a `Preset` is data (schemas/presets.toml, a mapping in funnel.toml, or the canonical
layout itself); `match_header` scores a file's header against one of its tables.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from funnel_reports.schemas.canonical import TABLE_MODELS, required_columns
from funnel_reports.schemas.vocabulary import CANONICAL, PRESETS, STAGE_HISTORY
from funnel_reports.transforms.funnel_model import Lookup

# required canonical columns: the models' non-nullable ones, but status (derived when absent)
REQUIRED = {
    table: tuple(c for c in required_columns(model) if c != "status")
    for table, model in TABLE_MODELS.items()
}
FLAG_COLUMNS = ("is_won", "is_closed")
DATE_ENTERED = "date_entered"


def header_key(header: str) -> str:
    return " ".join(header.strip().lower().split())


@dataclass(frozen=True)
class Preset:
    """One export layout: canonical column -> input headers, per table, and value maps."""

    name: str
    label: str
    columns: Mapping[str, Mapping[str, Sequence[str]]]
    stages: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    forecast_categories: Mapping[str, str] = field(default_factory=dict)
    date_order: str | None = None
    closed_before_created: str | None = None
    lookups: tuple[Lookup, ...] = ()  # joined when their file is in the folder
    # id columns built from several headers, per table ([source.composite_ids])
    composites: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)

    def extended(self, other: Preset) -> Preset:
        """This preset with `other` laid over it: other's name and label, its keys winning in
        every map (columns per table), and its settings where it has them."""
        merged: dict[str, Any] = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if f.name == "lookups":
                merged[f.name] = (*mine, *theirs)
            elif f.name in ("columns", "composites"):
                merged[f.name] = {
                    t: {**mine.get(t, {}), **theirs.get(t, {})} for t in {*mine, *theirs}
                }
            elif isinstance(mine, Mapping):
                merged[f.name] = {**mine, **theirs}
            elif f.name in ("name", "label"):
                merged[f.name] = theirs
            else:
                merged[f.name] = theirs if theirs is not None else mine
        return Preset(**merged)


def canonical_preset() -> Preset:
    """The data contract itself: every canonical column under its own name."""
    return Preset(
        CANONICAL,
        "canonical layout",
        {t: {c: (c,) for c in m.to_schema().columns} for t, m in TABLE_MODELS.items()},
    )


def presets_from_document(document: Mapping[str, Any]) -> dict[str, Preset]:
    """The known layouts: the canonical one, then the presets of a presets.toml document."""
    presets = {CANONICAL: canonical_preset()}
    for name, doc in document.items():
        presets[name] = Preset(
            name=name,
            label=doc.get("label", name),
            columns={
                t: {c: tuple(h) for c, h in cols.items()}
                for t, cols in doc.get("columns", {}).items()
            },
            stages=doc.get("stages", {}),
            statuses=doc.get("status", {}),
            channels=doc.get("channels", {}),
            forecast_categories=doc.get("forecast_categories", {}),
            date_order=doc.get("date_order"),
            closed_before_created=doc.get("closed_before_created"),
            lookups=tuple(
                Lookup(
                    name=lookup_name,
                    files=tuple(lookup["file"]),
                    on=lookup["on"],
                    key=lookup["key"],
                    columns=lookup["columns"],
                )
                for lookup_name, lookup in doc.get("lookups", {}).items()
            ),
        )
    if tuple(presets) != PRESETS:
        raise ValueError(f"presets {list(presets)} differ from the vocabulary's {list(PRESETS)}")
    return presets


@dataclass(frozen=True)
class TableMatch:
    """How a file's header maps onto one canonical table of a preset."""

    table: str
    columns: dict[str, list[str]]  # canonical column -> headers present in the file
    missing: list[str]  # required canonical columns with no header
    # canonical id column -> every header it is built from, as the file spells those it has
    composites: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_usable(self) -> bool:
        return not self.missing

    @property
    def score(self) -> int:
        return len(self.columns)


def match_header(preset: Preset, table: str, header: Sequence[str]) -> TableMatch:
    """Which of the file's headers feed which canonical column (patterns may use *)."""
    present = {header_key(h): h for h in header}
    columns: dict[str, list[str]] = {}
    for canonical, candidates in preset.columns.get(table, {}).items():
        found = []
        for candidate in candidates:
            key = header_key(candidate)
            if "*" in key:
                found += [h for k, h in present.items() if fnmatch.fnmatchcase(k, key)]
            elif key in present:
                found.append(present[key])
        if found:
            columns[canonical] = found
    composites: dict[str, tuple[str, ...]] = {}
    for canonical, parts in preset.composites.get(table, {}).items():
        # a file with any of the parts builds the id; one without the others is refused
        # once it is chosen (`transforms.staging.layout.refuse_needed_files`)
        if found := [present[header_key(h)] for h in parts if header_key(h) in present]:
            columns[canonical] = found
            composites[canonical] = tuple(present.get(header_key(h), h) for h in parts)
    missing = [c for c in REQUIRED[table] if c not in columns]
    if table == STAGE_HISTORY and DATE_ENTERED in columns:
        missing = []
    return TableMatch(table, columns, missing, composites)


def nearest_header(preset: Preset, table: str, header: Sequence[str], missing: str) -> str | None:
    """The file's header most like a missing canonical column or the names it goes by."""
    pool = {header_key(h): h for h in header}
    near = difflib.get_close_matches(header_key(missing), pool, n=1, cutoff=0.5)
    for candidate in preset.columns.get(table, {}).get(missing, [missing]):
        near = near or difflib.get_close_matches(header_key(candidate), pool, n=1, cutoff=0.6)
    return pool[near[0]] if near else None


def near_miss_hint(preset: Preset, table: str, header: Sequence[str], missing: str) -> str:
    """'created_at (expected CreatedDate or Created Date; nearest header: 'Create Date')'."""
    expected = list(preset.columns.get(table, {}).get(missing, [missing]))
    near = nearest_header(preset, table, header, missing)
    hint = f"{missing} (expected {' or '.join(repr(e) for e in expected[:3])}"
    return hint + (f"; nearest header: {near!r})" if near else ")")


def mapping_hint(preset: Preset, table: str, header: Sequence[str], missing: Sequence[str]) -> str:
    """The funnel.toml lines that would map the missing columns (the nearest header, or a
    placeholder)."""
    lines = [
        f'{c} = "{nearest_header(preset, table, header, c) or "<the column that holds it>"}"'
        for c in missing
    ]
    return f"map it in funnel.toml: [source.columns.{table}] " + ", ".join(lines)
