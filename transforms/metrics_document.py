"""The `metrics.json` document of one period: every mart, under the keys of DESIGN §5.

It holds numbers, ids and keys only, never text in the report's language: the same export
and period give the same document whatever language the report is rendered in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from funnel_reports.transforms.funnel_model import FunnelModel, RunSettings
from funnel_reports.transforms.intermediate.derived import DerivedTables, derive_tables
from funnel_reports.transforms.intermediate.entries import observed_stages
from funnel_reports.transforms.marts.backtest import forecast_inputs, next_period_forecast
from funnel_reports.transforms.marts.bottlenecks import bottlenecks, step_baseline
from funnel_reports.transforms.marts.comparison import comparison, months, trend
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
from funnel_reports.transforms.marts.totals import totals
from funnel_reports.transforms.marts.win_probabilities import (
    overall_win_rate,
    resolved_in_window,
    stage_probabilities,
)
from funnel_reports.transforms.periods import Period

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
)


@dataclass(frozen=True)
class Rates:
    """Historical rates a report of the report set may borrow from the company's: the overall
    win rate p̄, the win probability of each stage, and each step's conversion and dwell
    before the period (what bottlenecks are measured against), over the window W."""

    p_bar: float | None
    probabilities: pl.DataFrame
    step_baseline: pl.DataFrame


def window_rates(derived: DerivedTables, *, period: Period, settings: RunSettings) -> Rates:
    """p̄, the stage win probabilities and the step baseline of the deals in `derived`."""
    states = derived.states.lazy()
    window_start = period.window_start(settings.window_months)
    return Rates(
        overall_win_rate(states, window_start=window_start),
        stage_probabilities(
            states,
            funnel=settings.funnel,
            window_start=window_start,
            smoothing_strength=settings.smoothing_strength,
            min_resolved=settings.min_resolved_for_p_win,
        ),
        step_baseline(
            derived.visits.lazy(),
            funnel=settings.funnel,
            period_start=period.start,
            window_start=window_start,
        ),
    )


@dataclass(frozen=True)
class CoreFigures:
    """The figures that follow from the deal states at the period end and the stage win
    probabilities: what `python -m benchmarks.benchmark` also computes in DuckDB SQL."""

    kpis: dict[str, Any]
    funnel: pl.DataFrame
    conversion: pl.DataFrame
    dwell: pl.DataFrame
    stalls: dict[str, Any]
    pipeline: dict[str, Any]


def core_figures(
    derived: DerivedTables,
    probabilities: pl.DataFrame,
    *,
    period: Period,
    settings: RunSettings,
    history_available: bool,
) -> CoreFigures:
    funnel = settings.funnel
    start, as_of = period.start, period.end
    window_start = period.window_start(settings.window_months)
    states, reaches, visits = derived.states.lazy(), derived.reaches.lazy(), derived.visits.lazy()
    next_period = period.shifted(1)
    return CoreFigures(
        kpis=kpis(states, period_start=start, as_of=as_of, window_start=window_start),
        funnel=funnel_snapshot(states, funnel=funnel).collect(),
        conversion=conversion(
            reaches,
            states,
            funnel=funnel,
            period_start=start,
            as_of=as_of,
            window_start=window_start,
            immature_open_share=settings.immature_open_share,
        ),
        dwell=dwell(
            visits, funnel=funnel, window_start=window_start, history_available=history_available
        ).collect(),
        stalls=stalls_summary(stalled_deals(states, funnel=funnel, as_of=as_of)),
        pipeline=forecast(
            weighted_open_deals(states, probabilities),
            funnel=funnel,
            next_period_start=next_period.start_date,
            next_period_end=next_period.end_date,
            probabilities_known=probabilities["p_win"].null_count() == 0,
        ),
    )


def funnel_metrics(
    opportunities: pl.DataFrame,
    derived: DerivedTables,
    followups: pl.DataFrame,
    *,
    period: Period,
    settings: RunSettings,
    history_available: bool,
    target: float | None = None,
    company_rates: Rates | None = None,
    not_recorded: Collection[str] = (),
) -> dict[str, Any]:
    """Every figure of DESIGN §5 that this version computes, keyed as metrics.json.

    A report of the report set passes the company's `company_rates`: when fewer than
    `min_resolved_for_p_win` of its own deals were resolved in W, it forecasts with them
    (`forecast.rates_from` = "company") instead of its own thin history.

    `not_recorded` names what the export does not hold (`CheckedInputs.not_recorded`): the
    figures that need it are null, listed in `not_measurable` with the reason. `stages[]`
    says which stages a deal was seen in (`observed`) and which the report shows (`shown`);
    `observed_funnel` holds the conversion between the shown stages."""
    funnel, window = settings.funnel, settings.window_months
    start, as_of, window_start = period.start, period.end, period.window_start(window)
    states, reaches, visits = derived.states.lazy(), derived.reaches.lazy(), derived.visits.lazy()
    states_at = derived.states_at(opportunities, funnel=funnel)
    resolved = resolved_in_window(states, window_start=window_start).select(pl.len()).collect()
    borrows = company_rates is not None and resolved.item() < settings.min_resolved_for_p_win
    rates = (
        company_rates
        if borrows and company_rates is not None
        else window_rates(derived, period=period, settings=settings)
    )
    observed = observed_stages(states, derived.entries.lazy(), as_of=as_of, funnel=funnel)
    shown = funnel.shown_ids(observed)
    p_bar = rates.p_bar
    probabilities = rates.probabilities.with_columns(  # only skips reach an unobserved stage
        (pl.col("insufficient_history") | ~pl.col("stage").is_in(observed)).alias(
            "insufficient_history"
        )
    )
    core = core_figures(
        derived,
        probabilities,
        period=period,
        settings=settings,
        history_available=history_available,
    )
    headline, pipeline = core.kpis, core.pipeline
    next_period = period.shifted(1)
    document: dict[str, Any] = {
        "period": period.as_dict(),
        "currency": settings.currency,
        "stages": [
            {
                "id": s.id,
                "is_open": i < funnel.won_index,
                "stall_days": s.stall_days,
                "observed": s.id in observed,
                "shown": s.id in shown,
            }
            for i, s in enumerate(funnel.stages)
        ],
        "window": {"start": window_start.isoformat(), "end": as_of.isoformat(), "months": window},
        "kpis": headline,
        "totals": totals(states),
        "segments": segments(states, period_start=start, as_of=as_of),
        "followups": followup_activity(
            followups.lazy(),
            states,
            period_start=start,
            as_of=as_of,
            as_of_date=period.end_date,
            window_start=window_start,
        ),
        "funnel": core.funnel.to_dicts(),
        "conversion": inferred_rows(core.conversion, observed),
        "observed_funnel": {
            "folded": [stage for stage in funnel.ids if stage not in shown],
            "conversion": inferred_rows(
                core.conversion
                if len(shown) == len(funnel.ids)
                else core_figures(
                    derived,
                    probabilities,
                    period=period,
                    settings=replace(settings, funnel=funnel.folded(shown)),
                    history_available=history_available,
                ).conversion,
                observed,
            ),
        },
        "dwell": core.dwell.to_dicts(),
        "stalls": core.stalls,
        "forecast": {
            "stage_probabilities": probabilities.to_dicts(),
            "p_bar": p_bar,
            "rates_from": COMPANY_RATES if borrows else OWN,
            "resolved_in_window": resolved.item(),
            **pipeline,
            "next_period_label": next_period.label,
            **next_period_forecast(
                forecast_inputs(
                    opportunities,
                    derived,
                    states_at,
                    period=period,
                    funnel=funnel,
                    timezone=settings.timezone,
                    window_months=window,
                    smoothing_strength=settings.smoothing_strength,
                    min_resolved=settings.min_resolved_for_p_win,
                ),
                period=period,
                target=target,
            ),
        },
        "comparison": comparison(states_at, headline, period=period, window_months=window),
        "history_available": history_available,
        "point_in_time": point_in_time_notes(
            opportunities.lazy(), states, as_of=as_of, history_available=history_available
        ),
        "bottlenecks": (
            bottlenecks(
                visits,
                core.funnel.lazy(),
                probabilities,
                funnel=funnel,
                period_start=start,
                window_start=window_start,
                baseline=rates.step_baseline,
            )
            if history_available
            else []
        ),
        "trend": trend(states_at, period=period, window_months=window),
        "targets": None
        if target is None
        else target_decomposition(
            reaches,
            states,
            probabilities,
            funnel=funnel,
            target=target,
            won_amount=headline["won_amount"],
            avg_won_amount=headline["window"]["avg_won_amount"],
            weighted_pipeline=pipeline["weighted_pipeline"],
            window_start=window_start,
            period_end=period.end_date,
        ),
    }
    if period.grain == "quarter":
        document["months"] = months(states_at, period=period, window_months=window)
    document["not_measurable"] = without_unmeasurable(document, not_recorded, observed, funnel)
    return document


def untimed(name: str) -> AbstractContextManager[None]:
    return nullcontext()


def period_metrics(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    followups: pl.DataFrame,
    *,
    period: Period,
    settings: RunSettings,
    history_available: bool,
    target: float | None = None,
    company_rates: Rates | None = None,
    not_recorded: Collection[str] = (),
    step: Callable[[str], AbstractContextManager[Any]] = untimed,
) -> dict[str, Any]:
    """Every figure of a period from the validated tables: the derived tables as of the
    period's end (`derive_tables`), then `funnel_metrics`. The one way from tables to
    figures, for the flows, the tests and the benchmarks; `step("derive")` and
    `step("compute")` wrap the two parts (the flows time them)."""
    with step("derive"):
        derived = derive_tables(
            opportunities,
            stage_history,
            as_of=period.end,
            funnel=settings.funnel,
            partial_history=bool(settings.source.stage_dates),
        )
    with step("compute"):
        return funnel_metrics(
            opportunities,
            derived,
            followups,
            period=period,
            settings=settings,
            history_available=history_available,
            target=target,
            company_rates=company_rates,
            not_recorded=not_recorded,
        )


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
    missing = []
    for section, key, needs in NEEDS:
        if needs in not_recorded or needs.split(".")[0] in not_recorded:
            value = document[section][key]
            document[section][key] = [] if isinstance(value, list) else None
            missing.append({"figure": f"{section}.{key}", "reason": NOT_RECORDED, "needs": needs})
    if "opportunities.stall_reason" in not_recorded:
        for row in document["stalls"]["by_owner"]:
            row["missing_reason"] = row["compliance_rate"] = None
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
