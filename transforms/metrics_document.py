"""The `metrics.json` document of one period: every mart, under the keys of docs/metrics.md.

It holds numbers, ids and keys only, never text in the report's language: the same export
and period give the same document whatever language the report is rendered in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import polars as pl

from funnel_reports.transforms.forecast import (
    ForecastInputs,
    forecast,
    forecast_inputs,
    next_period_forecast,
    weighted_open_deals,
)
from funnel_reports.transforms.funnel_model import FunnelModel, MetricsSettings
from funnel_reports.transforms.intermediate.derived import DerivedTables, derive_tables
from funnel_reports.transforms.intermediate.entries import observed_stages
from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.bottlenecks import bottlenecks, step_baseline
from funnel_reports.transforms.marts.comparison import comparison, months, trend
from funnel_reports.transforms.marts.conversion import conversion
from funnel_reports.transforms.marts.dwell import dwell
from funnel_reports.transforms.marts.followups import followup_activity
from funnel_reports.transforms.marts.funnel_snapshot import funnel_snapshot
from funnel_reports.transforms.marts.kpis import kpis
from funnel_reports.transforms.marts.movement import pipeline_movement
from funnel_reports.transforms.marts.point_in_time import point_in_time_notes
from funnel_reports.transforms.marts.segments import segments
from funnel_reports.transforms.marts.stalls import stalled_deals, stalls_summary
from funnel_reports.transforms.marts.targets import target_decomposition
from funnel_reports.transforms.marts.totals import totals
from funnel_reports.transforms.marts.win_probabilities import (
    overall_win_rate,
    resolved_in_window,
    stage_probabilities,
)
from funnel_reports.transforms.periods import Period, Window

OWN, COMPANY_RATES = "own", "company"

# why a figure is null in `not_measurable`: the export has no column or table it needs, or no
# deal ever entered the stage it measures (a stage after the won one, never reached by skips)
NOT_RECORDED, NEVER_ENTERED = "not_recorded", "never_entered"
# figures that need a column or table an export may not hold: section, key, what it needs
NEEDS = (
    ("stalls", "missing_reason_count", "opportunities.stall_reason"),
    ("stalls", "compliance_rate", "opportunities.stall_reason"),
    ("followups", "touches_in_period", "followups"),
    ("followups", "touches_per_open_deal", "followups"),
    ("followups", "channel_mix", "followups"),
    ("followups", "silent_open_deals", "followups"),
    ("followups", "silent_open_amount", "followups"),
    ("followups", "overdue_next_actions", "followups.next_action_due"),
    ("followups", "won_vs_lost", "followups"),
    ("pipeline_movement", "increased_count", "stage_history.amount"),
    ("pipeline_movement", "increased_amount", "stage_history.amount"),
    ("pipeline_movement", "decreased_count", "stage_history.amount"),
    ("pipeline_movement", "decreased_amount", "stage_history.amount"),
    ("pipeline_movement", "expected", "stage_history.expected_close_date"),
)
# what no export shows: a deal's state comes from its status and close date as exported now
NEVER_RECORDED = (
    {
        "figure": "pipeline_movement.reopened_count",
        "reason": NOT_RECORDED,
        "needs": "a history of each deal's status",
    },
)


@dataclass(frozen=True)
class Rates:
    """Historical rates a report of the report set may borrow from the company's: the overall
    win rate p̄, the win probability of each stage, and each step's conversion and dwell
    before the period (what bottlenecks are measured against), over the window W."""

    p_bar: float | None
    probabilities: pl.DataFrame
    step_baseline: pl.DataFrame


def period_rates(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    *,
    period: Period,
    settings: MetricsSettings,
) -> Rates:
    """The rates of the deals in the tables at the period's end (`window_rates` of their
    derived tables): what a report of the report set too thin for its own borrows."""
    derived = derived_at(opportunities, stage_history, period=period, settings=settings)
    return window_rates(derived, window=Window(period, settings.window_months), settings=settings)


def derived_at(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    *,
    period: Period,
    settings: MetricsSettings,
) -> DerivedTables:
    """The derived tables as of the period's end (`derive_tables`)."""
    return derive_tables(
        opportunities,
        stage_history,
        as_of=period.end,
        funnel=settings.funnel,
        partial_history=settings.partial_history,
    )


def window_rates(derived: DerivedTables, *, window: Window, settings: MetricsSettings) -> Rates:
    """p̄, the stage win probabilities and the step baseline of the deals in `derived`."""
    states = derived.states.lazy()
    return Rates(
        overall_win_rate(states, window=window),
        stage_probabilities(
            states,
            funnel=settings.funnel,
            window=window,
            smoothing_strength=settings.smoothing_strength,
            min_resolved=settings.min_resolved_for_p_win,
        ),
        step_baseline(derived.visits.lazy(), funnel=settings.funnel, window=window),
    )


@dataclass(frozen=True)
class CoreFigures:
    """The figures that follow from the deal states at the period end and the stage win
    probabilities: what `python -m benchmarks.benchmark` also computes in DuckDB SQL. Each is
    a frame: `kpis`, `stalls` and `pipeline` a single row."""

    kpis: pl.DataFrame
    funnel: pl.DataFrame
    conversion: pl.DataFrame
    dwell: pl.DataFrame
    stalls: pl.DataFrame
    pipeline: pl.DataFrame


def core_figures(
    derived: DerivedTables,
    probabilities: pl.DataFrame,
    *,
    window: Window,
    settings: MetricsSettings,
    history_available: bool,
) -> CoreFigures:
    funnel = settings.funnel
    states, reaches, visits = derived.states.lazy(), derived.reaches.lazy(), derived.visits.lazy()
    return CoreFigures(
        kpis=kpis(states, window=window).collect(),
        funnel=funnel_snapshot(states, funnel=funnel).collect(),
        conversion=conversion(
            reaches,
            states,
            funnel=funnel,
            window=window,
            immature_open_share=settings.immature_open_share,
        ),
        dwell=dwell(
            visits, funnel=funnel, window=window, history_available=history_available
        ).collect(),
        stalls=stalls_summary(stalled_deals(states, funnel=funnel, window=window)).collect(),
        pipeline=forecast(
            weighted_open_deals(states, probabilities),
            funnel=funnel,
            next_period=window.next_period,
            probabilities_known=probabilities["p_win"].null_count() == 0,
        ).collect(),
    )


def single_row(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """A one-row mart as a metrics.json object."""
    return frame.lazy().collect().row(0, named=True)


def rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A mart's rows as a metrics.json list."""
    return frame.to_dicts()


class FigureInputs:
    """What the figures of one period are computed from: the tables, the `Window`, the
    settings; and what several figures share (the stage win probabilities, the core figures,
    the observed stages), each computed once, when a figure first asks for it."""

    def __init__(
        self,
        opportunities: pl.DataFrame,
        derived: DerivedTables,
        followups: pl.DataFrame,
        *,
        window: Window,
        settings: MetricsSettings,
        history_available: bool,
        target: float | None = None,
        next_target: float | None = None,
        company_rates: Rates | None = None,
    ) -> None:
        self.opportunities, self.derived, self.followups = opportunities, derived, followups
        self.window, self.settings, self.funnel = window, settings, settings.funnel
        self.history_available, self.company_rates = history_available, company_rates
        # the won amount the report period aims at, and the next period (the forecast's)
        self.target, self.next_target = target, next_target
        self.states = derived.states.lazy()

    @property
    def period(self) -> Period:
        return self.window.period

    @cached_property
    def states_at(self) -> DealStatesAt:
        return self.derived.states_at(self.opportunities, funnel=self.funnel)

    @cached_property
    def resolved(self) -> int:
        """Deals resolved (won or lost) in W."""
        resolved = resolved_in_window(self.states, window=self.window)
        return int(resolved.select(pl.len()).collect().item())

    @cached_property
    def borrows(self) -> bool:
        """Whether a report too thin for its own rates uses the company's."""
        return (
            self.company_rates is not None and self.resolved < self.settings.min_resolved_for_p_win
        )

    @cached_property
    def rates(self) -> Rates:
        if self.borrows and self.company_rates is not None:
            return self.company_rates
        return window_rates(self.derived, window=self.window, settings=self.settings)

    @cached_property
    def observed(self) -> list[str]:
        entries = self.derived.entries.lazy()
        return observed_stages(self.states, entries, as_of=self.window.as_of, funnel=self.funnel)

    @cached_property
    def probabilities(self) -> pl.DataFrame:
        """The stage win probabilities; only skips reach an unobserved stage, so its own is
        `insufficient_history`."""
        return self.rates.probabilities.with_columns(
            (pl.col("insufficient_history") | ~pl.col("stage").is_in(self.observed)).alias(
                "insufficient_history"
            )
        )

    def core_of(self, funnel: FunnelModel) -> CoreFigures:
        return core_figures(
            self.derived,
            self.probabilities,
            window=self.window,
            settings=replace(self.settings, funnel=funnel),
            history_available=self.history_available,
        )

    @cached_property
    def core(self) -> CoreFigures:
        return self.core_of(self.funnel)

    @cached_property
    def kpis(self) -> dict[str, Any]:
        return single_row(self.core.kpis)

    def stages(self) -> list[dict[str, Any]]:
        shown = self.funnel.shown_ids(self.observed)
        return [
            {
                "id": s.id,
                "label_en": s.label_en,
                "label_zh": s.label_zh,
                "is_open": i < self.funnel.won_index,
                "stall_days": s.stall_days,
                "observed": s.id in self.observed,
                "shown": s.id in shown,
            }
            for i, s in enumerate(self.funnel.stages)
        ]

    def observed_funnel(self) -> dict[str, Any]:
        """The conversion between the shown stages, the others folded into their next."""
        shown = self.funnel.shown_ids(self.observed)
        conversion = (
            self.core.conversion
            if len(shown) == len(self.funnel.ids)
            else self.core_of(self.funnel.folded(shown)).conversion
        )
        return {
            "folded": [stage for stage in self.funnel.ids if stage not in shown],
            "conversion": inferred_rows(conversion, self.observed),
        }

    @cached_property
    def forecast_inputs(self) -> ForecastInputs | None:
        """What the next period's forecast and its backtest read."""
        return forecast_inputs(
            self.opportunities,
            self.derived,
            self.states_at,
            period=self.period,
            funnel=self.funnel,
            timezone=self.settings.timezone,
            window_months=self.window.months,
            smoothing_strength=self.settings.smoothing_strength,
            min_resolved=self.settings.min_resolved_for_p_win,
        )

    def forecast(self) -> dict[str, Any]:
        return {
            "stage_probabilities": self.probabilities.to_dicts(),
            "p_bar": self.rates.p_bar,
            "rates_from": COMPANY_RATES if self.borrows else OWN,
            "resolved_in_window": self.resolved,
            **single_row(self.core.pipeline),
            "next_period_label": self.window.next_period.label,
            **next_period_forecast(
                self.forecast_inputs, period=self.period, target=self.next_target
            ),
        }

    def followups_section(self) -> dict[str, Any]:
        return single_row(followup_activity(self.followups.lazy(), self.states, window=self.window))

    def bottlenecks(self) -> list[dict[str, Any]]:
        if not self.history_available:
            return []
        return rows(
            bottlenecks(
                self.derived.visits.lazy(),
                self.core.funnel.lazy(),
                self.probabilities,
                funnel=self.funnel,
                window=self.window,
                baseline=self.rates.step_baseline,
            )
        )

    def targets(self) -> dict[str, Any] | None:
        if self.target is None:
            return None
        return single_row(
            target_decomposition(
                self.derived.reaches.lazy(),
                self.states,
                self.probabilities,
                funnel=self.funnel,
                target=self.target,
                kpis=self.core.kpis.lazy(),
                pipeline=self.core.pipeline.lazy(),
                window=self.window,
            )
        )


# every section of metrics.json, in the document's order, from what it is computed from
FIGURES: dict[str, Callable[[FigureInputs], Any]] = {
    "period": lambda f: f.window.period.as_dict(),
    "currency": lambda f: f.settings.currency,
    "stages": FigureInputs.stages,
    "window": lambda f: f.window.as_dict(),
    "kpis": lambda f: f.kpis,
    "totals": lambda f: single_row(totals(f.states)),
    "segments": lambda f: single_row(segments(f.states, window=f.window)),
    "followups": FigureInputs.followups_section,
    "funnel": lambda f: rows(f.core.funnel),
    "conversion": lambda f: inferred_rows(f.core.conversion, f.observed),
    "observed_funnel": FigureInputs.observed_funnel,
    "dwell": lambda f: rows(f.core.dwell),
    "stalls": lambda f: single_row(f.core.stalls),
    "forecast": FigureInputs.forecast,
    "comparison": lambda f: single_row(
        comparison(f.states_at, f.core.kpis.lazy(), window=f.window)
    ),
    "pipeline_movement": lambda f: single_row(
        pipeline_movement(f.states_at, f.opportunities.lazy(), window=f.window, funnel=f.funnel)
    ),
    "history_available": lambda f: f.history_available,
    "point_in_time": lambda f: rows(
        point_in_time_notes(
            f.opportunities.lazy(),
            f.states,
            window=f.window,
            history_available=f.history_available,
        )
    ),
    "bottlenecks": FigureInputs.bottlenecks,
    "trend": lambda f: rows(trend(f.states_at, window=f.window)),
    "targets": FigureInputs.targets,
    # a quarterly report's months side by side
    "months": lambda f: rows(months(f.states_at, window=f.window)),
}


@dataclass(frozen=True)
class PeriodFigures:
    """A period's figures keyed as metrics.json, and what they were computed from: the rows
    behind them (`transforms.deal_tables`) read the same frames."""

    metrics: dict[str, Any]
    inputs: FigureInputs


def funnel_figures(
    opportunities: pl.DataFrame,
    derived: DerivedTables,
    followups: pl.DataFrame,
    *,
    period: Period,
    settings: MetricsSettings,
    history_available: bool,
    target: float | None = None,
    next_target: float | None = None,
    company_rates: Rates | None = None,
    not_recorded: Collection[str] = (),
) -> PeriodFigures:
    """Every figure of docs/metrics.md that this version computes, keyed as metrics.json: each
    section of `FIGURES` (`months` for a quarter only), then `not_measurable`.

    A report of the report set passes the company's `company_rates`: when fewer than
    `min_resolved_for_p_win` of its own deals were resolved in W, it forecasts with them
    (`forecast.rates_from` = "company") instead of its own thin history.

    `not_recorded` names what the export does not hold (`CheckedInputs.not_recorded`): the
    figures that need it are null, listed in `not_measurable` with the reason. `stages[]`
    says which stages a deal was seen in (`observed`) and which the report shows (`shown`);
    `observed_funnel` holds the conversion between the shown stages."""
    inputs = FigureInputs(
        opportunities,
        derived,
        followups,
        window=Window(period, settings.window_months),
        settings=settings,
        history_available=history_available,
        target=target,
        next_target=next_target,
        company_rates=company_rates,
    )
    document = {
        key: figure(inputs)
        for key, figure in FIGURES.items()
        if key != "months" or period.grain == "quarter"
    }
    document["not_measurable"] = without_unmeasurable(
        document, not_recorded, inputs.observed, settings.funnel
    )
    return PeriodFigures(document, inputs)


def funnel_metrics(
    opportunities: pl.DataFrame,
    derived: DerivedTables,
    followups: pl.DataFrame,
    **options: Any,
) -> dict[str, Any]:
    """`funnel_figures`' metrics.json document alone."""
    return funnel_figures(opportunities, derived, followups, **options).metrics


Note = Callable[[str], None]


def untimed(name: str) -> AbstractContextManager[Note]:
    """A step nobody times: its notes go nowhere."""
    return nullcontext(lambda detail: None)


def period_figures(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    followups: pl.DataFrame,
    *,
    period: Period,
    settings: MetricsSettings,
    history_available: bool,
    target: float | None = None,
    next_target: float | None = None,
    company_rates: Rates | None = None,
    not_recorded: Collection[str] = (),
    step: Callable[[str], AbstractContextManager[Note]] = untimed,
) -> PeriodFigures:
    """Every figure of a period from the validated tables: the derived tables as of the
    period's end (`derive_tables`), then `funnel_figures`. The one way from tables to
    figures, for the flows, the tests and the benchmarks; `step("derive")` and
    `step("compute")` wrap the two parts (the flows time them and say them: each gives a
    function that takes a note on the step)."""
    with step("derive") as note:
        derived = derived_at(opportunities, stage_history, period=period, settings=settings)
        note(f"{derived.states.height} deals, {derived.entries.height} stage entries")
    with step("compute"):
        return funnel_figures(
            opportunities,
            derived,
            followups,
            period=period,
            settings=settings,
            history_available=history_available,
            target=target,
            next_target=next_target,
            company_rates=company_rates,
            not_recorded=not_recorded,
        )


def period_metrics(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    followups: pl.DataFrame,
    **options: Any,
) -> dict[str, Any]:
    """`period_figures`' metrics.json document alone."""
    return period_figures(opportunities, stage_history, followups, **options).metrics


def inferred_rows(conversion: pl.DataFrame, observed: Collection[str]) -> list[dict[str, Any]]:
    """The conversion rows, each `inferred` when no deal was seen in one of its two stages
    (its figures then rest on skipped stages counting as reached)."""
    return conversion.with_columns(
        (~pl.col("from").is_in(observed) | ~pl.col("to").is_in(observed)).alias("inferred")
    ).to_dicts()


def without_unmeasurable(
    document: dict[str, Any],
    not_recorded: Collection[str],
    observed: Collection[str],
    funnel: FunnelModel,
) -> list[dict[str, Any]]:
    """Null in `document` each figure the export cannot give, and the list of them with the
    reason: a column or table it does not hold (NEEDS), or a stage after the won one that no
    deal ever entered (no skip reaches it, so its conversion would read 0 %)."""

    def unheld(needs: str) -> bool:
        return needs in not_recorded or needs.split(".")[0] in not_recorded

    missing = [dict(figure) for figure in NEVER_RECORDED]
    for section, key, needs in NEEDS:
        if unheld(needs):
            value = document[section][key]
            document[section][key] = [] if isinstance(value, list) else None
            missing.append({"figure": f"{section}.{key}", "reason": NOT_RECORDED, "needs": needs})
    if unheld("opportunities.stall_reason"):
        for row in document["stalls"]["by_owner"]:
            row["missing_reason"] = row["compliance_rate"] = None
    if unheld("stage_history.amount"):
        for row in document["pipeline_movement"]["by_stage"]:
            for key in (
                "increased_count",
                "increased_amount",
                "decreased_count",
                "decreased_amount",
            ):
                row[key] = None
    after_won = funnel.ids[funnel.won_index + 1 :]
    for table in (document["conversion"], document["observed_funnel"]["conversion"]):
        for row in table:
            if row["to"] in after_won and row["to"] not in observed:
                for key in ("flow_rate", "cohort_rate", "resolved_rate", "is_immature"):
                    row[key] = None
    missing += [
        {
            "figure": f"conversion.{funnel.ids[funnel.index(stage) - 1]}.{stage}",
            "reason": NEVER_ENTERED,
            "needs": stage,
        }
        for stage in after_won
        if stage not in observed
    ]
    return missing
