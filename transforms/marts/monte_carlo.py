"""The Monte Carlo range of the open pipeline (DESIGN §5 `forecast.monte_carlo`)."""

from __future__ import annotations

import numpy as np
import polars as pl

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
