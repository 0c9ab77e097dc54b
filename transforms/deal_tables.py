"""The rows behind the figures (issue 27): a report's deal-level tables, and the rule that
reproduces each headline figure of metrics.json from them.

The tables, each a polars frame (Parquet files and the sheets of `report.xlsx`):

- `deals`: every deal open at the period's start or end, or created, won or lost in it: its
  state, stage, amount and expected close date at both instants, owner and segments, age in
  its stage, whether it is stalled and why, its stage's win probability and expected value,
  the pipeline-movement step it falls in, and whether the forecast priced it;
- `stage_visits`: the stays in a stage that the time-in-stage figures read (open at the
  period's end, or ended in the window W);
- `conversion`: the cohorts of the stage conversion: each deal and stage it first reached in
  W, with the next stage and whether it advanced, was lost or is still open;
- `forecast`: each deal open at the period's end with its chance of being won within the
  next period and the amount the forecast used;
- `backtest`: the forecast's backtest, one row per origin;
- `figures`: each headline figure, its value, and the rule (`Rule`) that reproduces it.

Instants are given as local date-times of the report's time zone (a spreadsheet holds no
time zone); amounts are in the report currency, days are fractional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, SEGMENT_DIMENSIONS
from funnel_reports.transforms.expressions import days_between, in_interval
from funnel_reports.transforms.forecast.backtest import LANDMARK, forecast_parts
from funnel_reports.transforms.marts.conversion import advanced
from funnel_reports.transforms.marts.kpis import lost_in, won_in
from funnel_reports.transforms.marts.movement import (
    CARRIED,
    moved_deals,
    period_flags,
    states_at_start,
)
from funnel_reports.transforms.marts.stalls import days_in_stage, stall_thresholds, stalled_deals
from funnel_reports.transforms.metrics_document import FigureInputs

DEALS, STAGE_VISITS, CONVERSION, FORECAST, BACKTEST, FIGURES = (
    "deals",
    "stage_visits",
    "conversion",
    "forecast",
    "backtest",
    "figures",
)
# the sheets in the workbook's order; `figures` first, as the way in
TABLES = (FIGURES, DEALS, STAGE_VISITS, CONVERSION, FORECAST, BACKTEST)
ADVANCED = "advanced"
# a carried deal's movement step by the sign of its amount change
INCREASED, DECREASED, UNCHANGED = "increased", "decreased", "unchanged"


def local(column: str, timezone: str) -> pl.Expr:
    """An instant as the local date-time of `timezone`, without a zone (what a sheet holds)."""
    return pl.col(column).dt.convert_time_zone(timezone).dt.replace_time_zone(None)


def deals_in_play(inputs: FigureInputs) -> pl.LazyFrame:
    """Every deal's state at the period's end beside its state at the start, its movement
    step, its stage's stall threshold and win probability, and the flags of what it did in
    the period; only the deals in play (open at either instant, or created, won or lost)."""
    window, funnel = inputs.window, inputs.funnel
    start = states_at_start(inputs.states_at, window=window)
    moved = moved_deals(inputs.states_at, window=window).select("opportunity_id", "step", "change")
    stalled = stalled_deals(inputs.states, funnel=funnel, window=window).select(
        "opportunity_id", pl.lit(True).alias("stalled")
    )
    # as the weighted pipeline: nothing is weighted without every stage's win probability
    known = inputs.probabilities["p_win"].null_count() == 0
    p_win = inputs.probabilities.lazy().select(
        pl.col("stage").alias("stage_at"), pl.when(known).then(pl.col("p_win")).alias("p_win")
    )
    won, lost = won_in(window.start, window.as_of), lost_in(window.start, window.as_of)
    flags = period_flags(window) | {"won_in_period": won, "lost_in_period": lost}
    return (
        inputs.states.join(start, on="opportunity_id", how="left")
        .join(moved, on="opportunity_id", how="left")
        .join(stalled, on="opportunity_id", how="left")
        .join(stall_thresholds(funnel), on="stage_at", how="left")
        .join(p_win, on="stage_at", how="left")
        .with_columns(
            *(flag.alias(name) for name, flag in flags.items()),
            (won | lost).alias("closed_in_period"),
            pl.col("stalled").fill_null(False),
        )
        .filter(pl.any_horizontal(*flags))
    )


def movement_step() -> pl.Expr:
    """The pipeline-movement step of a deal in play (`marts.movement`), a carried deal by the
    sign of its amount change."""
    change = pl.col("change")
    return (
        pl.when(pl.col("step") != CARRIED)
        .then(pl.col("step"))
        .when(change > 0)
        .then(pl.lit(INCREASED))
        .when(change < 0)
        .then(pl.lit(DECREASED))
        .otherwise(pl.lit(UNCHANGED))
    )


def deals_table(inputs: FigureInputs, forecast: pl.DataFrame) -> pl.DataFrame:
    """`deals`: one row per deal in play in the period, by opportunity_id; whether its
    amount was estimated is the `forecast` table's (null for a deal it does not hold)."""
    tz = inputs.settings.timezone
    opened, change = pl.col("open_at_end"), pl.col("change")
    estimated = forecast.lazy().select("opportunity_id", "amount_estimated")
    return (
        deals_in_play(inputs)
        .join(estimated, on="opportunity_id", how="left", maintain_order="left")
        .select(
            "opportunity_id",
            "customer_name",
            "owner",
            *(c for c in SEGMENT_DIMENSIONS if c != "owner"),
            "product",
            "forecast_category",
            local("created_at", tz).alias("created_at"),
            "state_start",
            "stage_start",
            "amount_start",
            pl.col("expected_start").alias("expected_close_start"),
            pl.col("state").alias("state_end"),
            pl.col("stage_at").alias("stage_end"),
            pl.col("amount_at").alias("amount_end"),
            "amount_estimated",
            pl.col("expected_close_date_at").alias("expected_close_end"),
            "open_at_start",
            "open_at_end",
            "created_in_period",
            "won_in_period",
            "lost_in_period",
            "closed_in_period",
            pl.when("won_in_period").then(pl.col("amount_at")).alias("won_amount"),
            local("won_at", tz).alias("won_at"),
            pl.when("won_in_period")
            .then(days_between(pl.col("created_at"), pl.col("won_at")))
            .alias("cycle_days"),
            pl.when(opened).then(days_in_stage(inputs.window)).alias("days_in_stage"),
            pl.when(opened).then(pl.col("stall_days")).alias("stall_days"),
            "stalled",
            "stall_reason",
            "lost_reason",
            pl.when(opened).then(pl.col("p_win")).alias("win_probability"),
            pl.when(opened).then(pl.col("amount_at") * pl.col("p_win")).alias("expected_value"),
            movement_step().alias("movement_step"),
            change.alias("amount_change"),
            pl.when(change > 0).then(change).alias("amount_increase"),
            pl.when(change < 0).then(-change).alias("amount_decrease"),
        )
        .collect()
        .sort("opportunity_id")
    )


def stage_visits_table(inputs: FigureInputs) -> pl.DataFrame:
    """`stage_visits`: each stay in a stage open at the period's end or ended in W (what
    `dwell` reads of the open stages), with whether it is `completed`."""
    tz, window = inputs.settings.timezone, inputs.window
    return (
        inputs.derived.visits.lazy()
        .filter(pl.col("is_open") | (pl.col("ended_at") >= window.window_start))
        .select(
            "opportunity_id",
            "stage",
            local("started_at", tz).alias("started_at"),
            local("ended_at", tz).alias("ended_at"),
            "days",
            (~pl.col("is_open")).alias("completed"),
            "outcome",
        )
        .collect()
    )


def conversion_table(inputs: FigureInputs) -> pl.DataFrame:
    """`conversion`: the cohorts of the stage conversion, one row per deal and stage it first
    reached in W (skipped stages count as reached), with the next stage, whether the reach
    lies in the period, and its outcome by the period's end: advanced (the deal reached a
    later stage), lost, or open."""
    tz, window, ids = inputs.settings.timezone, inputs.window, inputs.funnel.ids
    next_stage = pl.DataFrame(
        {"stage": ids[:-1], "to": ids[1:]}, schema={"stage": pl.String, "to": pl.String}
    )
    reaches = inputs.derived.reaches.lazy().join(
        inputs.states.select("opportunity_id", "state"), on="opportunity_id"
    )
    return (
        reaches.with_columns(advanced().alias("_advanced"))
        .filter(in_interval(pl.col("reached_at"), window.window_start, window.as_of))
        .join(next_stage.lazy(), on="stage", how="inner")
        .select(
            "opportunity_id",
            pl.col("stage").alias("from"),
            "to",
            local("reached_at", tz).alias("reached_at"),
            in_interval(pl.col("reached_at"), window.start, window.as_of).alias("in_period"),
            pl.when("_advanced")
            .then(pl.lit(ADVANCED))
            .when(pl.col("state") == LOST)
            .then(pl.lit(LOST))
            .otherwise(pl.lit(OPEN))
            .alias("outcome"),
        )
        .collect()
        .sort("from", "opportunity_id")
    )


def forecast_table(inputs: FigureInputs, metrics: Mapping[str, Any]) -> pl.DataFrame:
    """`forecast`: each deal open at the period's end, under the model the forecast used:
    the amount it used (the deal's, or comparable deals' mean when it has none), its chance
    of being won within the next period, and the two multiplied."""
    schema = pl.Schema(
        {
            "opportunity_id": pl.String,
            "stage": pl.String,
            "age_days": pl.Float64,
            "amount_used": pl.Float64,
            "amount_estimated": pl.Boolean,
            "chance_within_next_period": pl.Float64,
            "expected_amount": pl.Float64,
        }
    )
    forecast_inputs = inputs.forecast_inputs
    if forecast_inputs is None:
        return pl.DataFrame(schema=schema)
    model = metrics["forecast"]["monte_carlo"].get("model") or LANDMARK
    deals = forecast_parts(forecast_inputs, inputs.period).deals[model]
    return deals.select(
        "opportunity_id",
        "stage",
        "age_days",
        "amount_used",
        pl.col("is_imputed").alias("amount_estimated"),
        pl.col("p_within").alias("chance_within_next_period"),
        (pl.col("p_within") * pl.col("amount_used")).alias("expected_amount"),
    ).cast(schema)


def backtest_table(metrics: Mapping[str, Any]) -> pl.DataFrame:
    """`backtest`: one row per origin of the forecast's backtest: the period forecast, the
    method used then and its forecast, what was won, the error and its size, the range
    shown, and each candidate's forecast (`forecast_<method>`)."""
    rows = metrics["forecast"]["backtest"]["periods"]
    methods = list(rows[0]["forecasts"]) if rows else []
    schema: dict[str, Any] = {
        "period": pl.String,
        "forecast_at": pl.String,
        "method": pl.String,
        "forecast": pl.Float64,
        "actual": pl.Float64,
        "error": pl.Float64,
        "abs_error": pl.Float64,
        "p10": pl.Float64,
        "p90": pl.Float64,
    } | {f"forecast_{m}": pl.Float64 for m in methods}
    return pl.DataFrame(
        [
            {
                **{k: row[k] for k in ("period", "forecast_at", "method", "forecast", "actual")},
                "error": row["error"],
                "abs_error": None if row["error"] is None else abs(row["error"]),
                "p10": row["p10"],
                "p90": row["p90"],
                **{f"forecast_{m}": row["forecasts"].get(m) for m in methods},
            }
            for row in rows
        ],
        schema=schema,
    )


Condition = Mapping[str, bool | str | tuple[str, ...]]


def condition_text(where: Condition) -> str:
    """`won_in_period and from = lead and outcome in (advanced, lost)`."""
    parts = []
    for column, value in where.items():
        if value is True:
            parts.append(column)
        elif value is False:
            parts.append(f"not {column}")
        elif isinstance(value, tuple):
            parts.append(f"{column} in ({', '.join(value)})")
        else:
            parts.append(f"{column} = {value}")
    return " and ".join(parts)


def condition(where: Condition) -> pl.Expr:
    """Every column of `where` equal to its value (in its values, for a tuple)."""
    terms = [
        pl.col(c).is_in(list(v)) if isinstance(v, tuple) else pl.col(c) == v
        for c, v in where.items()
    ]
    return pl.all_horizontal(terms) if terms else pl.lit(True)


@dataclass(frozen=True)
class Rule:
    """How a headline figure (`figure`, its metrics.json path) is reproduced from the rows of
    the table `sheet`: the `aggregate` (count, sum, mean or median) of `column` over the
    rows where `where` holds; a `share` is the count of those rows over the count of the
    rows where `over` holds, a `ratio` the sum of `column` over them over the sum of
    `over_column` over all rows."""

    figure: str
    sheet: str
    aggregate: str
    column: str | None = None
    where: Condition = field(default_factory=dict)
    over: Condition = field(default_factory=dict)
    over_column: str | None = None

    def text(self) -> str:
        """The rule in one line, as the `figures` sheet gives it."""
        where = f" where {condition_text(self.where)}" if self.where else ""
        if self.aggregate == "count":
            body = f"number of {self.sheet} rows{where}"
        elif self.aggregate == "share":
            over = f" where {condition_text(self.over)}" if self.over else ""
            body = f"number of {self.sheet} rows{where}, over the number of its rows{over}"
        elif self.aggregate == "ratio":
            body = (
                f"sum of {self.sheet}.{self.column}{where}, over the sum of "
                f"{self.sheet}.{self.over_column}"
            )
        else:
            body = f"{self.aggregate} of {self.sheet}.{self.column}{where}"
        return f"{self.figure} = {body}"

    def value(self, tables: Mapping[str, pl.DataFrame]) -> float | None:
        """The figure as the rule computes it from `tables` (None where a share or ratio
        has nothing to divide by, or a mean or median nothing to average)."""
        frame = tables[self.sheet]
        rows = frame.filter(condition(self.where))
        if self.aggregate == "count":
            return float(rows.height)
        if self.aggregate == "share":
            held = frame.filter(condition(self.over)).height
            return rows.height / held if held else None
        column = rows[self.column or ""]
        if self.aggregate == "sum":
            return float(column.sum())
        if self.aggregate == "ratio":
            whole = float(frame[self.over_column or ""].sum())
            return float(column.sum()) / whole if whole else None
        result = column.mean() if self.aggregate == "mean" else column.median()
        return None if result is None else float(result)  # type: ignore[arg-type]


def metric(metrics: Mapping[str, Any], figure: str) -> Any:
    """The value at a figure's path: `kpis.won_amount`; `conversion[from=lead].cohort_rate`
    (the item of a list whose `from` is `lead`)."""
    value: Any = metrics
    for part in figure.split("."):
        key, _, selector = part.partition("[")
        value = value[key]
        if selector:
            field_name, _, wanted = selector.rstrip("]").partition("=")
            value = next(item for item in value if item[field_name] == wanted)
    return value


def headline_rules() -> list[Rule]:
    """The rules of the figures every report has: kpis, the pipeline's movement, stalls, the
    weighted pipeline, the forecast's open deals and its backtest's error."""
    won, lost = {"won_in_period": True}, {"lost_in_period": True}
    opened = {"open_at_end": True}
    rules = [
        Rule("kpis.won_count", DEALS, "count", where=won),
        Rule("kpis.won_amount", DEALS, "sum", "won_amount", won),
        Rule("kpis.lost_count", DEALS, "count", where=lost),
        Rule("kpis.win_rate", DEALS, "share", where=won, over={"closed_in_period": True}),
        Rule("kpis.avg_won_amount", DEALS, "mean", "won_amount", won),
        Rule("kpis.median_cycle_days", DEALS, "median", "cycle_days", won),
        Rule("kpis.open_count", DEALS, "count", where=opened),
        Rule("kpis.open_amount", DEALS, "sum", "amount_end", opened),
        Rule("pipeline_movement.open_start_count", DEALS, "count", where={"open_at_start": True}),
        Rule(
            "pipeline_movement.open_start_amount",
            DEALS,
            "sum",
            "amount_start",
            {"open_at_start": True},
        ),
    ]
    amounts = {
        "created": "amount_end",
        "increased": "amount_increase",
        "decreased": "amount_decrease",
        "won": "amount_start",
        "lost": "amount_start",
    }
    for step, column in amounts.items():
        where = {"movement_step": step}
        rules += [
            Rule(f"pipeline_movement.{step}_count", DEALS, "count", where=where),
            Rule(f"pipeline_movement.{step}_amount", DEALS, "sum", column, where),
        ]
    estimated = {"amount_estimated": True}
    return [
        *rules,
        Rule("stalls.stalled_count", DEALS, "count", where={"stalled": True}),
        Rule("stalls.stalled_amount", DEALS, "sum", "amount_end", {"stalled": True}),
        Rule("forecast.weighted_pipeline", DEALS, "sum", "expected_value", opened),
        Rule("forecast.next_period_components.open_deals", FORECAST, "sum", "expected_amount"),
        Rule("forecast.imputed_amount_count", FORECAST, "count", where=estimated),
        Rule("forecast.imputed_amount", FORECAST, "sum", "amount_used", estimated),
        Rule("forecast.backtest.wape", BACKTEST, "ratio", "abs_error", over_column="actual"),
        Rule("forecast.backtest.bias", BACKTEST, "ratio", "error", over_column="actual"),
    ]


def stage_rules(metrics: Mapping[str, Any], *, history_available: bool) -> list[Rule]:
    """Per step of the conversion, its cohort and rate; per open stage, with a history, its
    time in stage."""
    rules = []
    for row in metrics["conversion"]:
        step = {"from": row["from"]}
        at = f"conversion[from={row['from']}]"
        rules += [
            Rule(f"{at}.cohort_size", CONVERSION, "count", where=step),
            *(
                Rule(f"{at}.{outcome}", CONVERSION, "count", where=step | {"outcome": outcome})
                for outcome in (ADVANCED, LOST, OPEN)
            ),
            Rule(
                f"{at}.cohort_rate",
                CONVERSION,
                "share",
                where=step | {"outcome": ADVANCED},
                over=step,
            ),
            Rule(f"{at}.entries_from", CONVERSION, "count", where=step | {"in_period": True}),
        ]
    if not history_available:
        return rules
    for row in metrics["dwell"]:
        stage = {"stage": row["stage"]}
        at = f"dwell[stage={row['stage']}]"
        rules += [
            Rule(
                f"{at}.completed_visits", STAGE_VISITS, "count", where=stage | {"completed": True}
            ),
            Rule(f"{at}.open_visits", STAGE_VISITS, "count", where=stage | {"completed": False}),
            Rule(f"{at}.median_days", STAGE_VISITS, "median", "days", stage | {"completed": True}),
        ]
    return rules


def figures_table(rules: list[Rule], metrics: Mapping[str, Any]) -> pl.DataFrame:
    """`figures`: each figure with a value in metrics.json, that value and its rule."""
    rows = []
    for rule in rules:
        value = metric(metrics, rule.figure)
        if value is not None:
            rows.append({"figure": rule.figure, "value": float(value), "rule": rule.text()})
    return pl.DataFrame(rows, schema={"figure": pl.String, "value": pl.Float64, "rule": pl.String})


def figure_rules(metrics: Mapping[str, Any]) -> list[Rule]:
    return headline_rules() + stage_rules(metrics, history_available=metrics["history_available"])


def deal_tables(inputs: FigureInputs, metrics: Mapping[str, Any]) -> dict[str, pl.DataFrame]:
    """Every table of a report folder, in the workbook's order (`TABLES`)."""
    forecast = forecast_table(inputs, metrics)
    tables = {
        DEALS: deals_table(inputs, forecast),
        STAGE_VISITS: stage_visits_table(inputs),
        CONVERSION: conversion_table(inputs),
        FORECAST: forecast,
        BACKTEST: backtest_table(metrics),
    }
    return {FIGURES: figures_table(figure_rules(metrics), metrics), **tables}
