"""The Monte Carlo range of the next period (docs/metrics.md `forecast.monte_carlo`): the open deals
and the deals not yet created, drawn together."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

DRAWS = 5_000
SEED = 20_240_601
CHUNK = 4_096
NEW_DEAL_SAMPLES_PER_CHUNK = 2_000_000
STEPS_AT_ONCE = 1 << 20  # random 64-bit steps drawn at a time (8 MB)


def generator_at(position: int, *, seed: int) -> np.random.Generator:
    """The generator of `seed` after `position` single-precision uniforms were drawn from it
    (each takes half of one 64-bit step: the second half of a step waits in the generator)."""
    rng = np.random.Generator(np.random.PCG64(seed).advance(position // 2))
    if position % 2:
        rng.random(1, dtype=np.float32)
    return rng


@dataclass(frozen=True)
class OpenAndNew:
    """What one Monte Carlo range draws: open deals with their amounts and each model's
    chances, and a Poisson number of new deals."""

    amounts: np.ndarray
    probabilities: Sequence[np.ndarray]  # each model's; with a NaN, that model has no range
    new_deal_count: float
    new_deal_amounts: np.ndarray


def deal_draws(
    runs: Sequence[tuple[np.ndarray, Sequence[np.ndarray]]], *, draws: int, seed: int
) -> Iterator[list[list[np.ndarray] | None]]:
    """What each CHUNK of deals brings to every draw, chunk by chunk, for every run of
    `runs` (amounts, each model's chances) and model: deal i is won in draw j when the
    (i·draws + j)-th single-precision uniform of `seed` lies below its chance (as float32);
    None for a run whose deals all came in earlier chunks.

    Such a uniform is the top 24 bits b of 32 random bits (the low half of a 64-bit step,
    then the high half) over 2^24, so it lies below p exactly when b < ceil(p·2^24): the bits
    are drawn raw, once for every run and model (each run's i-th deal meets the same bits),
    and a chunk's wins go to the matrix product as 0.0 and 1.0 without a copy."""
    below = [
        [
            np.clip(np.ceil(p.astype(np.float32).astype(np.float64) * 2.0**24), 0, 2**24).astype(
                np.uint32
            )
            for p in chances
        ]
        for _, chances in runs
    ]
    most = max((amounts.size for amounts, _ in runs), default=0)
    # drawn in turn: every chunk but the last holds CHUNK deals (an even number of uniforms),
    # so each starts on a whole 64-bit step
    steps = np.random.PCG64(seed)
    # a chunk's 64-bit steps and wins, in buffers used over and over: fresh memory is slow
    words = np.empty((min(CHUNK, most) * draws + 1) // 2, dtype="<u8")
    kept = np.empty((min(CHUNK, most), draws))
    for start in range(0, most, CHUNK):
        halves = min(CHUNK, most - start) * draws
        for first in range(0, (halves + 1) // 2, STEPS_AT_ONCE):
            last = min(first + STEPS_AT_ONCE, (halves + 1) // 2)
            words[first:last] = steps.random_raw(last - first)
        bits = words.view("<u4")[:halves]
        np.right_shift(bits, 8, out=bits)
        bits = bits.reshape(-1, draws)
        chunk: list[list[np.ndarray] | None] = []
        for (amounts, _), thresholds in zip(runs, below, strict=True):
            rows = min(CHUNK, amounts.size - start)
            if rows <= 0:  # a run with fewer deals is done
                chunk.append(None)
                continue
            wins = kept[:rows]
            brought = []
            for b in thresholds:
                np.less(bits[:rows], b[start : start + rows, None], out=wins, casting="unsafe")
                brought.append(amounts[start : start + rows] @ wins)
            chunk.append(brought)
        yield chunk


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
    return monte_carlo_of_models(
        amounts,
        [probabilities],
        new_deal_count=new_deal_count,
        new_deal_amounts=new_deal_amounts,
        target=target,
        spread=spread,
        draws=draws,
        seed=seed,
    )[0]


def monte_carlo_of_models(
    amounts: np.ndarray,
    probabilities: Sequence[np.ndarray],
    *,
    new_deal_count: float,
    new_deal_amounts: np.ndarray,
    target: float | None,
    spread: float = 1.0,
    draws: int = DRAWS,
    seed: int = SEED,
) -> list[dict[str, float | None]]:
    """`monte_carlo` of the same deals under each model's `probabilities`, in their order:
    with the same seed every model draws the same random numbers, so they are drawn once and
    each model's figures are the ones `monte_carlo` gives it alone."""
    run = OpenAndNew(amounts, probabilities, new_deal_count, new_deal_amounts)
    return monte_carlo_of_runs([run], target=target, spread=spread, draws=draws, seed=seed)[0]


def monte_carlo_of_runs(
    runs: Sequence[OpenAndNew],
    *,
    target: float | None,
    spread: float = 1.0,
    draws: int = DRAWS,
    seed: int = SEED,
) -> list[list[dict[str, float | None]]]:
    """`monte_carlo_of_models` of each of `runs` (the backtest's origins), in their order:
    every run starts from the same seed, so a chunk's random bits are drawn once for all."""
    known = [[i for i, p in enumerate(run.probabilities) if not np.isnan(p).any()] for run in runs]
    totals = [[np.zeros(draws) for _ in models] for models in known]
    drawn = [
        (run.amounts if models else run.amounts[:0], [run.probabilities[i] for i in models])
        for run, models in zip(runs, known, strict=True)
    ]
    for chunk in deal_draws(drawn, draws=draws, seed=seed):
        for run_totals, brought in zip(totals, chunk, strict=True):
            if brought is None:
                continue
            for total, part in zip(run_totals, brought, strict=True):
                total += part
    return [
        range_figures(run, models, run_totals, target=target, spread=spread, draws=draws, seed=seed)
        for run, models, run_totals in zip(runs, known, totals, strict=True)
    ]


def range_figures(
    run: OpenAndNew,
    known: list[int],
    totals: list[np.ndarray],
    *,
    target: float | None,
    spread: float,
    draws: int,
    seed: int,
) -> list[dict[str, float | None]]:
    """Each model's figures of `run`, once the open deals' `totals` of the `known` models
    are drawn: the new deals are drawn on, and the totals' quantiles taken."""
    new_deal_count, new_deal_amounts = run.new_deal_count, run.new_deal_amounts
    # the generator where the deals' draws leave it: the new deals draw on from there
    rng = generator_at(run.amounts.size * draws if known else 0, seed=seed)
    if known and new_deal_count > 0 and new_deal_amounts.size:
        counts = rng.poisson(new_deal_count, draws)
        first = 0
        while first < draws:  # draws in slices of at most ~2 M sampled amounts each
            per_draw = max(int(NEW_DEAL_SAMPLES_PER_CHUNK // max(new_deal_count, 1.0)), 1)
            last = min(first + per_draw, draws)
            n = counts[first:last]
            picked = new_deal_amounts[rng.integers(0, new_deal_amounts.size, int(n.sum()))]
            owner = np.repeat(np.arange(last - first), n)
            brought = np.bincount(owner, weights=picked, minlength=last - first)
            for total in totals:
                total[first:last] += brought
            first = last
    figures: list[dict[str, float | None]] = [
        {"p10": None, "p50": None, "p90": None, "p_hit_target": None, "draws": 0, "spread": spread}
        for _ in run.probabilities
    ]
    for i, total in zip(known, totals, strict=True):
        if spread != 1.0:
            middle = np.median(total)
            total = np.maximum(middle + spread * (total - middle), 0.0)  # nothing wins < 0
        p10, p50, p90 = np.quantile(total, [0.1, 0.5, 0.9])
        figures[i] = {
            "p10": float(p10),
            "p50": float(p50),
            "p90": float(p90),
            "p_hit_target": None if target is None else float(np.mean(total >= target)),
            "draws": draws,
            "spread": spread,
        }
    return figures
