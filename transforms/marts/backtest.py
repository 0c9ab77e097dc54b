"""The forecast report card (DESIGN §5 `forecast.backtest`): the forecast method scored on
earlier period ends, each rebuilt with only what was known then."""

from __future__ import annotations

from typing import Any

import polars as pl

from schemas.vocabulary import RESOLVED, WON
from transforms.funnel_model import FunnelModel
from transforms.intermediate.states import DealStatesAt
from transforms.marts.forecast import forecast as forecast_totals
from transforms.marts.forecast import weighted_open_deals
from transforms.marts.kpis import headline
from transforms.marts.win_probabilities import stage_probabilities
from transforms.periods import Period

BACKTEST_PERIODS = 6


def backtest(
    states_at: DealStatesAt,
    *,
    period: Period,
    funnel: FunnelModel,
    window_months: int,
    smoothing_strength: float,
    min_resolved: int,
    periods: int = BACKTEST_PERIODS,
) -> dict[str, Any]:
    """The forecast method scored on the last `periods` period ends before this period's end.

    At each earlier end e it rebuilds the pipeline with only what was known at e (deal states,
    win probabilities over the window ending at e) and forecasts the following period
    (`next_period`: open deals expected to close then, weighted by p_win); `actual` is the
    amount won in that following period. MAPE averages |forecast − actual| / actual over
    periods with wins; bias is (Σ forecast − Σ actual) / Σ actual; the Brier score averages
    (p_win − outcome)² over the deals open at each e that are won (1) or lost (0) by now.
    """
    now = states_at.states(period.end).select(
        "opportunity_id",
        (pl.col("state") == WON).cast(pl.Float64).alias("_won"),
        pl.col("state").is_in(RESOLVED).alias("_resolved"),
    )
    rows, squared_errors = [], []
    for back in range(periods, 0, -1):
        past = period.shifted(-back)
        following = past.shifted(1)
        states = states_at.states(past.end)
        window_start = past.window_start(window_months)
        probabilities = stage_probabilities(
            states_at.reaches(past.end),
            states,
            funnel=funnel,
            window_start=window_start,
            smoothing_strength=smoothing_strength,
            min_resolved=min_resolved,
        )
        known = probabilities["p_win"].null_count() == 0
        weighted = weighted_open_deals(states, probabilities)
        forecast = forecast_totals(
            weighted,
            funnel=funnel,
            next_period_start=following.start_date,
            next_period_end=following.end_date,
            probabilities_known=known,
        )["next_period"]
        actual = (
            headline(
                states_at.states(following.end),
                period_start=following.start,
                as_of=following.end,
            )
            .collect()["won_amount"]
            .item()
        )
        rows.append(
            {
                "period": following.label,
                "forecast_at": past.end_date.isoformat(),
                "forecast": forecast,
                "actual": actual,
                "error": None if forecast is None else forecast - actual,
            }
        )
        if known:
            squared_errors.append(
                weighted.join(now, on="opportunity_id")
                .filter("_resolved")
                .select((pl.col("p_win") - pl.col("_won")) ** 2)
                .collect()
                .to_series()
            )
    scored = [r for r in rows if r["forecast"] is not None]
    with_wins = [r for r in scored if r["actual"] > 0]
    actual_total = sum(r["actual"] for r in scored)
    errors = pl.concat(squared_errors) if squared_errors else pl.Series([], dtype=pl.Float64)
    return {
        "periods": rows,
        "mape": (
            sum(abs(r["error"]) / r["actual"] for r in with_wins) / len(with_wins)
            if with_wins
            else None
        ),
        "bias": (
            (sum(r["forecast"] for r in scored) - actual_total) / actual_total
            if actual_total
            else None
        ),
        "brier": errors.mean() if errors.len() else None,
        "scored_deals": errors.len(),
    }
