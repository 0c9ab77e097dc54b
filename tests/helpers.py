"""Small literal canonical tables for tests, built through the real parser."""

from __future__ import annotations

from typing import Any

import polars as pl

from funnel_reports.schemas.canonical import TABLE_MODELS, column_types
from funnel_reports.schemas.vocabulary import PARSE_REASONS
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.intermediate.derived import derive_tables
from funnel_reports.transforms.metrics_document import FIGURES, FigureInputs, period_metrics
from funnel_reports.transforms.periods import Window, parse_period
from funnel_reports.transforms.staging.outcomes import derive_status
from funnel_reports.transforms.staging.parse import parse_table

SETTINGS = RunSettings()


def raw_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """String columns from dicts (missing keys are empty), numbered in `_row` from 1."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    data = {c: [None if r.get(c) is None else str(r[c]) for r in rows] for c in columns}
    return pl.DataFrame(data, schema=dict.fromkeys(columns, pl.String)).with_row_index(
        "_row", offset=1
    )


def typed(table: str, rows: list[dict[str, Any]], settings: RunSettings = SETTINGS) -> pl.DataFrame:
    """A parsed canonical table; fails the test if any literal value cannot be read."""
    raw = raw_frame(rows) if rows else pl.DataFrame(schema={"_row": pl.UInt32})
    frame = parse_table(
        raw.lazy(),
        columns=column_types(TABLE_MODELS[table]),
        funnel=settings.funnel,
        options=settings.parse,
        timezone=settings.timezone,
    )
    if table == "opportunities":
        frame = derive_status(frame, funnel=settings.funnel)
    frame = frame.collect()
    bad = frame.filter(pl.col(PARSE_REASONS).list.len() > 0)
    assert bad.height == 0, f"unreadable literal values: {bad[PARSE_REASONS].to_list()}"
    return frame.drop(PARSE_REASONS)


def opp(oid: str, stage: str, created: str, **fields: object) -> dict[str, object]:
    """An opportunity row: id, stage, created_at and any other canonical fields."""
    return {"opportunity_id": oid, "stage": stage, "created_at": created, **fields}


def opportunities(*rows: dict[str, Any]) -> pl.DataFrame:
    return typed("opportunities", list(rows)).drop("_row")


def history(*rows: tuple[str, str, str] | dict[str, Any]) -> pl.DataFrame:
    """Stage entries as (opportunity_id, stage, entered_at) tuples or full dicts."""
    dicts = [
        r if isinstance(r, dict) else {"opportunity_id": r[0], "stage": r[1], "entered_at": r[2]}
        for r in rows
    ]
    return typed("stage_history", dicts).drop("_row")


def touches(*rows: dict[str, Any]) -> pl.DataFrame:
    return typed("followups", list(rows)).drop("_row")


def path(opportunity_id: str, *steps: tuple[str, str]) -> list[tuple[str, str, str]]:
    """History rows for one deal: path("A", ("lead", "2024-06-01"), ("qualified", ...))."""
    return [(opportunity_id, stage, at) for stage, at in steps]


def world(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
    next_target: float | None = None,
) -> FigureInputs:
    """Literal tables and their derived tables as every figure reads them (no history: an
    empty history table, flagged as absent). The default period 2024-06 in UTC has
    P = [2024-06-01, 2024-07-01), as_of = 2024-07-01 and W = [2023-07-01, 2024-07-01)."""
    report_period = parse_period(period, settings.timezone)
    return FigureInputs(
        opps,
        derive_tables(
            opps,
            stage_history if stage_history is not None else history(),
            as_of=report_period.end,
            funnel=settings.funnel,
        ),
        followups if followups is not None else touches(),
        window=Window(report_period, settings.window_months),
        settings=settings.metrics,
        history_available=stage_history is not None,
        target=target,
        next_target=next_target,
    )


def figures(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    of: tuple[str, ...],
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
    next_target: float | None = None,
) -> dict[str, Any]:
    """The named sections of metrics.json for literal tables, each computed by its entry of
    the document's registry (`FIGURES`), as `funnel_metrics` computes it."""
    w = world(
        opps,
        stage_history,
        period=period,
        settings=settings,
        followups=followups,
        target=target,
        next_target=next_target,
    )
    return {key: FIGURES[key](w) for key in of}


def metrics_for(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
    next_target: float | None = None,
    not_recorded: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The whole metrics.json document for literal tables (for invariants across figures);
    `not_recorded` as `CheckedInputs.not_recorded` says it."""
    return period_metrics(
        opps,
        stage_history if stage_history is not None else history(),
        followups if followups is not None else touches(),
        period=parse_period(period, settings.timezone),
        settings=settings.metrics,
        history_available=stage_history is not None,
        target=target,
        next_target=next_target,
        not_recorded=not_recorded,
    )


def bridged(bridge: dict[str, Any]) -> tuple[int, float]:
    """The open pipeline at the end as a `pipeline_movement` bridge's steps add it up: start
    + created − won − lost deals, and in amounts also + increased − decreased."""
    count = (
        bridge["open_start_count"]
        + bridge["created_count"]
        - bridge["won_count"]
        - bridge["lost_count"]
    )
    amount = (
        bridge["open_start_amount"]
        + bridge["created_amount"]
        + bridge["increased_amount"]
        - bridge["decreased_amount"]
        - bridge["won_amount"]
        - bridge["lost_amount"]
    )
    return count, amount


def by_key(rows: list[dict[str, Any]], key: str = "stage") -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


def step(metrics: dict[str, Any], a: str, b: str) -> dict[str, Any]:
    return next(r for r in metrics["conversion"] if r["from"] == a and r["to"] == b)


def write_csv(path, rows: list[dict[str, Any]]) -> None:
    """A CSV with the union of the rows' keys as header (empty cells for missing keys)."""
    import csv

    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
