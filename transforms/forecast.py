"""What the open pipeline may bring: a Monte Carlo range, and what a target asks of the funnel."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from transforms import metrics
from transforms.entries import days_between, reach_column
from transforms.funnel_model import FunnelModel, RunSettings
from transforms.periods import Period

DRAWS = 5_000
SEED = 20_240_601
CHUNK = 4_096
BACKTEST_PERIODS = 6


def monte_carlo(
    weighted: pl.LazyFrame,
    *,
    target: float | None,
    probabilities_known: bool,
    draws: int = DRAWS,
    seed: int = SEED,
) -> dict[str, float | None]:
    """P10/P50/P90 of the amount the open deals bring if each closes independently with its
    stage's win probability (deals without an amount or a probability bring 0), and the share
    of draws reaching `target`. The same seed gives the same figures."""
    deals = (
        weighted.select("opportunity_id", pl.col("amount_at").fill_null(0.0), "p_win")
        .filter(pl.col("p_win").is_not_null())
        .sort("opportunity_id")
        .collect()
    )
    if not probabilities_known:
        return {"p10": None, "p50": None, "p90": None, "p_hit_target": None, "draws": 0}
    rng = np.random.default_rng(seed)
    totals = np.zeros(draws)
    amounts, probabilities = deals["amount_at"].to_numpy(), deals["p_win"].to_numpy()
    for start in range(0, deals.height, CHUNK):
        p = probabilities[start : start + CHUNK]
        wins = rng.random((p.size, draws)) < p[:, None]
        totals += amounts[start : start + CHUNK] @ wins
    p10, p50, p90 = np.quantile(totals, [0.1, 0.5, 0.9])
    return {
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "p_hit_target": None if target is None else float(np.mean(totals >= target)),
        "draws": draws,
    }


def target_decomposition(
    states: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
    target: float,
    won_amount: float,
    avg_won_amount: float | None,
    weighted_pipeline: float | None,
    window_start: datetime,
    period_end: date,
) -> dict[str, object]:
    """What a period target asks: won deals needed (target / average won amount over W),
    entries needed at each stage (won needed / p_win), the latest date to enter each stage
    (period end minus the median days from that stage to won, over deals won in W), the gap
    between what is left to win and the weighted pipeline, and coverage."""
    won_needed = target / avg_won_amount if avg_won_amount else None
    won_in_w = states.filter((pl.col("state") == "won") & (pl.col("won_at") >= window_start))
    to_won = (
        won_in_w.select(
            [
                days_between(pl.col(reach_column(s.id)), pl.col("won_at")).median().alias(s.id)
                for s in funnel.open_stages
            ]
        )
        .collect()
        .row(0, named=True)
    )
    p_win = dict(zip(probabilities["stage"], probabilities["p_win"], strict=True))
    stages = []
    for stage in funnel.open_stages:
        days = to_won[stage.id]
        stages.append(
            {
                "stage": stage.id,
                "p_win": p_win[stage.id],
                "entries_needed": (
                    won_needed / p_win[stage.id]
                    if won_needed is not None and p_win[stage.id]
                    else None
                ),
                "median_days_to_won": days,
                "latest_entry_date": (period_end - timedelta(days=days)).isoformat()
                if days is not None
                else None,
            }
        )
    remaining = max(target - won_amount, 0.0)
    return {
        "target": target,
        "won_amount": won_amount,
        "remaining": remaining,
        "won_needed": won_needed,
        "stages": stages,
        "gap": None if weighted_pipeline is None else remaining - weighted_pipeline,
        "coverage": (
            weighted_pipeline / remaining
            if weighted_pipeline is not None and remaining > 0
            else None
        ),
    }


def backtest(
    states_at: Callable[[datetime], pl.LazyFrame],
    *,
    period: Period,
    settings: RunSettings,
    periods: int = BACKTEST_PERIODS,
) -> dict[str, object]:
    """The forecast method scored on the last `periods` period ends before this period's end.

    At each earlier end e it rebuilds the pipeline with only what was known at e (deal states,
    win probabilities over the window ending at e) and forecasts the following period
    (`next_period`: open deals expected to close then, weighted by p_win); `actual` is the
    amount won in that following period. MAPE averages |forecast − actual| / actual over
    periods with wins; bias is (Σ forecast − Σ actual) / Σ actual; the Brier score averages
    (p_win − outcome)² over the deals open at each e that are won (1) or lost (0) by now.
    """
    funnel = settings.funnel
    now = states_at(period.end).select(
        "opportunity_id",
        (pl.col("state") == "won").cast(pl.Float64).alias("_won"),
        pl.col("state").is_in(["won", "lost"]).alias("_resolved"),
    )
    rows, squared_errors = [], []
    for back in range(periods, 0, -1):
        past = period.shifted(-back)
        following = past.shifted(1)
        states = states_at(past.end)
        probabilities, _ = metrics.stage_probabilities(
            states,
            funnel=funnel,
            window_start=past.window_start(settings.window_months),
            settings=settings,
        )
        known = probabilities["p_win"].null_count() == 0
        weighted = metrics.weighted_open_deals(states, probabilities, funnel=funnel)
        forecast = metrics.forecast(
            weighted,
            funnel=funnel,
            next_period_start=following.start_date,
            next_period_end=following.end_date,
            probabilities_known=known,
        )["next_period"]
        actual = (
            metrics.headline(
                states_at(following.end),
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
