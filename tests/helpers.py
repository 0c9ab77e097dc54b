"""Small literal canonical tables for tests, built through the real parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from funnel_reports.schemas.canonical import TABLE_MODELS, column_types
from funnel_reports.schemas.vocabulary import PARSE_REASONS
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.intermediate.derived import DerivedTables, derive_tables
from funnel_reports.transforms.marts.backtest import (
    ForecastInputs,
    forecast_inputs,
    next_period_forecast,
)
from funnel_reports.transforms.marts.comparison import comparison
from funnel_reports.transforms.marts.conversion import conversion
from funnel_reports.transforms.marts.dwell import dwell
from funnel_reports.transforms.marts.followups import followup_activity
from funnel_reports.transforms.marts.forecast import forecast, weighted_open_deals
from funnel_reports.transforms.marts.funnel_snapshot import funnel_snapshot
from funnel_reports.transforms.marts.kpis import kpis
from funnel_reports.transforms.marts.point_in_time import point_in_time_notes
from funnel_reports.transforms.marts.segments import segments
from funnel_reports.transforms.marts.stalls import stalled_deals, stalls_summary
from funnel_reports.transforms.marts.targets import target_decomposition
from funnel_reports.transforms.marts.win_probabilities import overall_win_rate, stage_probabilities
from funnel_reports.transforms.metrics_document import period_metrics
from funnel_reports.transforms.periods import Period, parse_period
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


@dataclass(frozen=True)
class World:
    """Literal tables derived as of a period's end: what every mart reads."""

    opportunities: pl.DataFrame
    followups: pl.DataFrame
    derived: DerivedTables
    period: Period
    settings: RunSettings
    history_available: bool
    target: float | None

    @property
    def window_start(self):
        return self.period.window_start(self.settings.window_months)

    @property
    def states(self) -> pl.LazyFrame:
        return self.derived.states.lazy()

    def probabilities(self) -> pl.DataFrame:
        return stage_probabilities(
            self.states,
            funnel=self.settings.funnel,
            window_start=self.window_start,
            smoothing_strength=self.settings.smoothing_strength,
            min_resolved=self.settings.min_resolved_for_p_win,
        )

    def kpis(self) -> dict[str, Any]:
        return kpis(
            self.states,
            period_start=self.period.start,
            as_of=self.period.end,
            window_start=self.window_start,
        )

    def forecast(self) -> dict[str, Any]:
        """Win probabilities, the weighted pipeline and the Monte Carlo range."""
        probabilities = self.probabilities()
        known = probabilities["p_win"].null_count() == 0
        weighted = weighted_open_deals(self.states, probabilities)
        following = self.period.shifted(1)
        return {
            "stage_probabilities": probabilities.to_dicts(),
            "p_bar": overall_win_rate(self.states, window_start=self.window_start),
            **forecast(
                weighted,
                funnel=self.settings.funnel,
                next_period_start=following.start_date,
                next_period_end=following.end_date,
                probabilities_known=known,
            ),
            "next_period_label": following.label,
            **next_period_forecast(self.forecast_inputs(), period=self.period, target=self.target),
        }

    def forecast_inputs(self) -> ForecastInputs | None:
        """What the next period's forecast and its backtest read."""
        return forecast_inputs(
            self.opportunities,
            self.derived,
            self.derived.states_at(self.opportunities, funnel=self.settings.funnel),
            period=self.period,
            funnel=self.settings.funnel,
            timezone=self.settings.timezone,
            window_months=self.settings.window_months,
            smoothing_strength=self.settings.smoothing_strength,
            min_resolved=self.settings.min_resolved_for_p_win,
        )

    def targets(self) -> dict[str, Any] | None:
        if self.target is None:
            return None
        figures, f = self.kpis(), self.forecast()
        return target_decomposition(
            self.derived.reaches.lazy(),
            self.states,
            self.probabilities(),
            funnel=self.settings.funnel,
            target=self.target,
            won_amount=figures["won_amount"],
            avg_won_amount=figures["window"]["avg_won_amount"],
            weighted_pipeline=f["weighted_pipeline"],
            window_start=self.window_start,
            period_end=self.period.end_date,
        )


def world(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
) -> World:
    """Literal tables and their derived tables (no history: an empty history table, flagged as
    absent). The default period 2024-06 in UTC has P = [2024-06-01, 2024-07-01),
    as_of = 2024-07-01 and W = [2023-07-01, 2024-07-01)."""
    report_period = parse_period(period, settings.timezone)
    return World(
        opportunities=opps,
        followups=followups if followups is not None else touches(),
        derived=derive_tables(
            opps,
            stage_history if stage_history is not None else history(),
            as_of=report_period.end,
            funnel=settings.funnel,
        ),
        period=report_period,
        settings=settings,
        history_available=stage_history is not None,
        target=target,
    )


# each figure of metrics.json from its own mart function, as the document keys it
MARTS: dict[str, Callable[[World], Any]] = {
    "funnel": lambda w: funnel_snapshot(w.states, funnel=w.settings.funnel).collect().to_dicts(),
    "conversion": lambda w: conversion(
        w.derived.reaches.lazy(),
        w.states,
        funnel=w.settings.funnel,
        period_start=w.period.start,
        as_of=w.period.end,
        window_start=w.window_start,
        immature_open_share=w.settings.immature_open_share,
    ).to_dicts(),
    "dwell": lambda w: (
        dwell(
            w.derived.visits.lazy(),
            funnel=w.settings.funnel,
            window_start=w.window_start,
            history_available=w.history_available,
        )
        .collect()
        .to_dicts()
    ),
    "stalls": lambda w: stalls_summary(
        stalled_deals(w.states, funnel=w.settings.funnel, as_of=w.period.end)
    ),
    "kpis": World.kpis,
    "forecast": World.forecast,
    "targets": World.targets,
    "comparison": lambda w: comparison(
        w.derived.states_at(w.opportunities, funnel=w.settings.funnel),
        w.kpis(),
        period=w.period,
        window_months=w.settings.window_months,
    ),
    "followups": lambda w: followup_activity(
        w.followups.lazy(),
        w.states,
        period_start=w.period.start,
        as_of=w.period.end,
        as_of_date=w.period.end_date,
        window_start=w.window_start,
    ),
    "segments": lambda w: segments(w.states, period_start=w.period.start, as_of=w.period.end),
    "point_in_time": lambda w: point_in_time_notes(
        w.opportunities.lazy(),
        w.states,
        as_of=w.period.end,
        history_available=w.history_available,
    ),
    "history_available": lambda w: w.history_available,
}


def figures(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    of: tuple[str, ...],
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
) -> dict[str, Any]:
    """The named figures of literal tables, each computed by its own mart (keyed as in
    metrics.json)."""
    w = world(
        opps, stage_history, period=period, settings=settings, followups=followups, target=target
    )
    return {key: MARTS[key](w) for key in of}


def metrics_for(
    opps: pl.DataFrame,
    stage_history: pl.DataFrame | None = None,
    *,
    period: str = "2024-06",
    settings: RunSettings = SETTINGS,
    followups: pl.DataFrame | None = None,
    target: float | None = None,
    not_recorded: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The whole metrics.json document for literal tables (for invariants across figures);
    `not_recorded` as `CheckedInputs.not_recorded` says it."""
    return period_metrics(
        opps,
        stage_history if stage_history is not None else history(),
        followups if followups is not None else touches(),
        period=parse_period(period, settings.timezone),
        settings=settings,
        history_available=stage_history is not None,
        target=target,
        not_recorded=not_recorded,
    )


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
