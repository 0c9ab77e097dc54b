"""Bottlenecks: steps whose period figure got worse than their baseline, and by how much."""

from __future__ import annotations

import math
from datetime import datetime

import polars as pl

from transforms.funnel_model import FunnelModel

Z_95 = 1.959964


def two_proportion_z(a1: int, n1: int, a2: int, n2: int) -> float | None:
    """z of the difference a1/n1 − a2/n2 under the pooled proportion (None if undefined)."""
    if not n1 or not n2:
        return None
    pooled = (a1 + a2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return (a1 / n1 - a2 / n2) / spread if spread else None


def median_interval(values: list[float]) -> tuple[float, float] | None:
    """A 95 % interval for the median from order statistics (normal approximation)."""
    n = len(values)
    if n < 2:
        return None
    ordered = sorted(values)
    half = Z_95 * math.sqrt(n) / 2
    low = max(math.floor(n / 2 - half), 0)
    high = min(math.ceil(n / 2 + half), n - 1)
    return ordered[low], ordered[high]


def bottlenecks(
    visits: pl.LazyFrame,
    open_amounts: dict[str, float],
    p_win: dict[str, float | None],
    *,
    funnel: FunnelModel,
    period_start: datetime,
    window_start: datetime,
) -> list[dict[str, object]]:
    """Per open stage: conversion of the deals that left it in the period (forward against
    lost) and the median length of visits completed in the period, each against the rest of
    W. A worse step is called out when the conversion drop is significant (two-proportion
    z-test at 5 %) or the dwell intervals do not overlap; revenue at risk is the open amount
    in the stage times the drop in its win probability, the conversion drop times the next
    stage's p_win (p_win(k) ≈ conversion(k) × p_win(k + 1)). Sorted by revenue at risk."""
    ended = (
        visits.filter(~pl.col("is_open") & (pl.col("ended_at") >= window_start))
        .with_columns((pl.col("ended_at") >= period_start).alias("in_period"))
        .collect()
    )
    stages = [s.id for s in funnel.open_stages]
    rows = []
    for i, stage in enumerate(stages):
        mine = ended.filter(pl.col("stage") == stage)
        counts = {}
        for part, frame in (
            ("period", mine.filter("in_period")),
            ("baseline", mine.filter(~pl.col("in_period"))),
        ):
            advanced = frame.filter(pl.col("outcome") == "forward").height
            lost = frame.filter(pl.col("outcome") == "lost").height
            counts[part] = (advanced, advanced + lost, frame["days"].to_list())
        (a1, n1, d1), (a2, n2, d2) = counts["period"], counts["baseline"]
        rate, base = (a1 / n1 if n1 else None), (a2 / n2 if n2 else None)
        z = two_proportion_z(a1, n1, a2, n2)
        conversion_worse = z is not None and z < -Z_95
        dwell = pl.Series(d1, dtype=pl.Float64).median() if d1 else None
        dwell_base = pl.Series(d2, dtype=pl.Float64).median() if d2 else None
        ci, ci_base = median_interval(d1), median_interval(d2)
        dwell_worse = bool(ci and ci_base and ci[0] > ci_base[1])
        next_p = 1.0 if i + 1 == len(stages) else p_win.get(stages[i + 1])
        drop = (base - rate) if rate is not None and base is not None else None
        at_risk = (
            open_amounts.get(stage, 0.0) * max(drop, 0.0) * next_p
            if drop is not None and next_p is not None
            else None
        )
        rows.append(
            {
                "stage": stage,
                "next_stage": funnel.ids[i + 1],
                "left_in_period": n1,
                "conversion": rate,
                "baseline_left": n2,
                "baseline_conversion": base,
                "z": z,
                "median_days": dwell,
                "baseline_median_days": dwell_base,
                "is_conversion_worse": conversion_worse,
                "is_dwell_worse": dwell_worse,
                "is_called_out": conversion_worse or dwell_worse,
                "revenue_at_risk": at_risk,
            }
        )
    return sorted(
        rows,
        key=lambda r: (
            not r["is_called_out"],
            -(r["revenue_at_risk"] or 0.0),
            stages.index(r["stage"]),
        ),
    )
