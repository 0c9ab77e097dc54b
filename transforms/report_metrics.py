"""The whole `metrics.json` document for one period, from the valid canonical tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from transforms import metrics
from transforms.activity import followup_activity
from transforms.bottlenecks import bottlenecks
from transforms.entries import deal_states, reach_column, stage_entries, stage_visits
from transforms.forecast import backtest, monte_carlo, target_decomposition
from transforms.funnel_model import FunnelModel, RunSettings
from transforms.periods import Period

STALLED_DEALS_LISTED = 15
TREND_PERIODS = 6


# what headline figures, win probabilities and forecasts read from a deal state
STATE_COLUMNS = (
    "opportunity_id",
    "state",
    "stage_at",
    "created_at",
    "won_at",
    "closed_at",
    "resolved_at",
    "amount_at",
    "expected_close_date_at",
)


class StatesAt:
    """Deal states as of any instant, each computed once: comparisons, months, the trend and
    the backtest ask for the same period ends again and again."""

    def __init__(
        self,
        opportunities: pl.LazyFrame,
        entries: pl.LazyFrame,
        funnel: FunnelModel,
        known: dict[datetime, pl.LazyFrame],
    ):
        """`known`: deal states already derived, by as-of instant."""
        self._opportunities, self._entries, self._funnel = opportunities, entries, funnel
        self._known = {as_of: self._kept(states) for as_of, states in known.items()}

    def _kept(self, states: pl.LazyFrame) -> pl.DataFrame:
        return states.select(*STATE_COLUMNS, *[reach_column(s) for s in self._funnel.ids]).collect()

    def __call__(self, as_of: datetime) -> pl.LazyFrame:
        if as_of not in self._known:
            self._known[as_of] = self._kept(
                deal_states(self._opportunities, self._entries, as_of=as_of, funnel=self._funnel)
            )
        return self._known[as_of].lazy()


def headline_for(states_at: StatesAt, *, period: Period, settings: RunSettings) -> dict[str, Any]:
    """`period` and `kpis` of another period, for comparisons and side-by-side months."""
    states = states_at(period.end)
    return {
        "period": period.as_dict(),
        "kpis": metrics.kpis(
            states,
            period_start=period.start,
            as_of=period.end,
            window_start=period.window_start(settings.window_months),
        ),
    }


def change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """Difference current - previous for each numeric headline figure (null when either is)."""
    return {
        key: (
            value - previous[key]
            if isinstance(value, int | float) and isinstance(previous.get(key), int | float)
            else None
        )
        for key, value in current.items()
        if key != "window"
    }


def point_in_time_notes(
    opportunities: pl.LazyFrame, states: pl.LazyFrame, *, period: Period, history_available: bool
) -> list[dict[str, Any]]:
    """What could not be reconstructed as of the period end: a note key and how many deals."""
    counts = (
        states.select(
            (pl.col("history_amount").is_null() & pl.col("amount").is_not_null())
            .sum()
            .alias("current_amount_used"),
            ((pl.col("status") != "open") & (pl.col("state") == "open"))
            .sum()
            .alias("closed_after_period"),
        )
        .collect()
        .row(0, named=True)
    )
    counts["created_after_period"] = (
        opportunities.filter(pl.col("created_at") >= period.end).select(pl.len()).collect().item()
    )
    notes = [{"note": "no_stage_history", "count": None}] if not history_available else []
    notes += [{"note": key, "count": n} for key, n in counts.items() if n]
    notes.append({"note": "stall_reason_current", "count": None})
    return notes


@dataclass(frozen=True)
class DerivedTables:
    """Stage entries (all known), and deal states and visits as of the period end."""

    entries: pl.DataFrame
    states: pl.DataFrame
    visits: pl.DataFrame


def derive_tables(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    *,
    period: Period,
    settings: RunSettings,
) -> DerivedTables:
    entries = stage_entries(
        opportunities.lazy(), stage_history.lazy(), funnel=settings.funnel
    ).collect()
    states = deal_states(
        opportunities.lazy(), entries.lazy(), as_of=period.end, funnel=settings.funnel
    ).collect()
    visits = stage_visits(entries.lazy(), states.lazy(), as_of=period.end).collect()
    return DerivedTables(entries, states, visits)


def funnel_metrics(
    opportunities: pl.DataFrame,
    derived: DerivedTables,
    followups: pl.DataFrame,
    *,
    period: Period,
    settings: RunSettings,
    history_available: bool,
    target: float | None = None,
) -> dict[str, Any]:
    """Every figure of DESIGN §5 that this version computes, keyed as metrics.json."""
    funnel = settings.funnel
    window_start = period.window_start(settings.window_months)
    opps = opportunities.lazy()
    entries, states, visits = derived.entries.lazy(), derived.states.lazy(), derived.visits.lazy()
    states_at = StatesAt(opps, entries, funnel, known={period.end: states})

    probabilities, p_bar = metrics.stage_probabilities(
        states, funnel=funnel, window_start=window_start, settings=settings
    )
    probabilities_known = probabilities["p_win"].null_count() == 0
    weighted = metrics.weighted_open_deals(states, probabilities, funnel=funnel)
    next_period = period.shifted(1)
    stalled = metrics.stalled_deals(states, funnel=funnel, as_of=period.end)
    kpis = metrics.kpis(
        states, period_start=period.start, as_of=period.end, window_start=window_start
    )
    previous = headline_for(states_at, period=period.shifted(-1), settings=settings)
    year_ago = headline_for(
        states_at, period=period.shifted(-12 // period.months), settings=settings
    )
    document: dict[str, Any] = {
        "period": period.as_dict(),
        "currency": settings.currency,
        "stages": [
            {
                "id": s.id,
                "label": s.label(settings.lang),
                "is_open": i < funnel.won_index,
                "stall_days": s.stall_days,
            }
            for i, s in enumerate(funnel.stages)
        ],
        "window": {
            "start": period.window_start(settings.window_months).isoformat(),
            "end": period.end.isoformat(),
            "months": settings.window_months,
        },
        "kpis": kpis,
        "totals": metrics.totals(states),
        "segments": metrics.segments(states, period_start=period.start, as_of=period.end),
        "followups": followup_activity(
            followups.lazy(),
            states,
            period_start=period.start,
            as_of=period.end,
            as_of_date=period.end_date,
            window_start=window_start,
        ),
        "funnel": metrics.funnel_snapshot(states, funnel=funnel).collect().to_dicts(),
        "conversion": metrics.conversion(
            states,
            funnel=funnel,
            period_start=period.start,
            as_of=period.end,
            window_start=window_start,
            immature_open_share=settings.immature_open_share,
        ).to_dicts(),
        "dwell": metrics.dwell(
            visits, funnel=funnel, window_start=window_start, history_available=history_available
        )
        .collect()
        .to_dicts(),
        "stalls": {
            **metrics.stalls_summary(stalled),
            # rounded: the last bit of a vectorised division must not reorder equal ages
            "deals": stalled.sort(
                [pl.col("days_in_stage").round(6), "opportunity_id"], descending=[True, False]
            )
            .head(STALLED_DEALS_LISTED)
            .select(
                "opportunity_id",
                "customer_name",
                "owner",
                pl.col("stage_at").alias("stage"),
                "days_in_stage",
                pl.col("amount_at").alias("amount"),
                "stall_reason",
            )
            .collect()
            .to_dicts(),
        },
        "forecast": {
            "stage_probabilities": probabilities.to_dicts(),
            "p_bar": p_bar,
            **metrics.forecast(
                weighted,
                funnel=funnel,
                next_period_start=next_period.start_date,
                next_period_end=next_period.end_date,
                probabilities_known=probabilities_known,
            ),
            "next_period_label": next_period.label,
            "backtest": backtest(states_at, period=period, settings=settings),
            "monte_carlo": monte_carlo(
                weighted, target=target, probabilities_known=probabilities_known
            ),
        },
        "comparison": {
            "previous": {**previous, "change": change(kpis, previous["kpis"])},
            "year_ago": {**year_ago, "change": change(kpis, year_ago["kpis"])},
        },
        "history_available": history_available,
        "point_in_time": point_in_time_notes(
            opps, states, period=period, history_available=history_available
        ),
    }
    document["bottlenecks"] = (
        bottlenecks(
            visits,
            {row["stage"]: row["amount"] for row in document["funnel"]},
            {row["stage"]: row["p_win"] for row in document["forecast"]["stage_probabilities"]},
            funnel=funnel,
            period_start=period.start,
            window_start=window_start,
        )
        if history_available
        else []
    )
    document["trend"] = [
        {
            "label": past.label,
            **{
                k: v
                for k, v in headline_for(states_at, period=past, settings=settings)["kpis"].items()
                if k in ("won_count", "won_amount", "lost_count", "win_rate", "open_amount")
            },
        }
        for past in (period.shifted(-back) for back in range(TREND_PERIODS - 1, -1, -1))
    ]
    forecast = document["forecast"]
    document["targets"] = (
        None
        if target is None
        else target_decomposition(
            states,
            probabilities,
            funnel=funnel,
            target=target,
            won_amount=kpis["won_amount"],
            avg_won_amount=kpis["window"]["avg_won_amount"],
            weighted_pipeline=forecast["weighted_pipeline"],
            window_start=window_start,
            period_end=period.end_date,
        )
    )
    if period.grain == "quarter":
        document["months"] = [
            headline_for(states_at, period=m, settings=settings) for m in period.month_periods()
        ]
    return document
