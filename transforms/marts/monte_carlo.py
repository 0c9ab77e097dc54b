"""The Monte Carlo range of the next period (DESIGN §5 `forecast.monte_carlo`): the open deals
and the deals not yet created, drawn together."""

from __future__ import annotations

import numpy as np

DRAWS = 5_000
SEED = 20_240_601
CHUNK = 4_096
NEW_DEAL_SAMPLES_PER_CHUNK = 2_000_000


def monte_carlo(
    amounts: np.ndarray,
    probabilities: np.ndarray,
    *,
    new_deal_count: float,
    new_deal_amounts: np.ndarray,
    target: float | None,
    spread: float = 1.0,
    draws: int = DRAWS,
    seed: int = SEED,
) -> dict[str, float | None]:
    """P10/P50/P90 of the amount won in the next period, and the share of draws reaching
    `target`. Each open deal is won independently with its probability and brings its
    amount; on top, a Poisson number of new deals (mean `new_deal_count`) is created and won,
    each bringing an amount drawn from `new_deal_amounts`. The same seed gives the same
    figures. `spread` widens every draw's distance from the median by that factor (the
    backtest's calibration). With no probabilities (`probabilities` containing NaN), every
    figure is None."""
    if np.isnan(probabilities).any():
        return {
            "p10": None,
            "p50": None,
            "p90": None,
            "p_hit_target": None,
            "draws": 0,
            "spread": spread,
        }
    rng = np.random.default_rng(seed)
    totals = np.zeros(draws)
    chances = probabilities.astype(np.float32)
    for start in range(0, amounts.size, CHUNK):
        p = chances[start : start + CHUNK]
        wins = rng.random((p.size, draws), dtype=np.float32) < p[:, None]
        totals += amounts[start : start + CHUNK] @ wins
    if new_deal_count > 0 and new_deal_amounts.size:
        counts = rng.poisson(new_deal_count, draws)
        first = 0
        while first < draws:  # draws in slices of at most ~2 M sampled amounts each
            per_draw = max(int(NEW_DEAL_SAMPLES_PER_CHUNK // max(new_deal_count, 1.0)), 1)
            last = min(first + per_draw, draws)
            n = counts[first:last]
            picked = new_deal_amounts[rng.integers(0, new_deal_amounts.size, int(n.sum()))]
            owner = np.repeat(np.arange(last - first), n)
            totals[first:last] += np.bincount(owner, weights=picked, minlength=last - first)
            first = last
    if spread != 1.0:
        middle = np.median(totals)
        totals = middle + spread * (totals - middle)
    p10, p50, p90 = np.quantile(totals, [0.1, 0.5, 0.9])
    return {
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "p_hit_target": None if target is None else float(np.mean(totals >= target)),
        "draws": draws,
        "spread": spread,
    }
