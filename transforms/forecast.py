"""What the open pipeline may bring: a Monte Carlo range, and what a target asks of the funnel."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from transforms.entries import days_between, reach_column
from transforms.funnel_model import FunnelModel

DRAWS = 5_000
SEED = 20_240_601
CHUNK = 4_096


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
