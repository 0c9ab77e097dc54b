"""Win probability from each stage (docs/metrics.md `forecast.stage_probabilities`)."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, RESOLVED, WON
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Window


def resolved_in_window(states: pl.LazyFrame, *, window: Window) -> pl.LazyFrame:
    """Deals won or lost with their resolution time in W (the states are as of W's end)."""
    return states.filter(
        pl.col("state").is_in(RESOLVED) & (pl.col("resolved_at") >= window.window_start)
    )


def overall_win_rate(states: pl.LazyFrame, *, window: Window) -> float | None:
    """p̄: the share won among every deal resolved in W; None when nothing was resolved."""
    won, resolved = (
        resolved_in_window(states, window=window)
        .select((pl.col("state") == WON).sum(), pl.len())
        .collect()
        .row(0)
    )
    return won / resolved if resolved else None


def stage_probabilities(
    states: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    window: Window,
    smoothing_strength: float,
    min_resolved: int,
) -> pl.DataFrame:
    """Smoothed win probability from each open stage: one row per open stage.

    Among deals that reached the stage and were resolved in W: p_win = (won + m·p̄) /
    (won + lost + m), with p̄ = `overall_win_rate` and m the smoothing strength. Null when
    nothing was resolved in W; `insufficient_history` under `min_resolved` resolved deals.

    A deal state's `reached_index` is the furthest stage it had reached, and a deal has
    reached every stage up to it: the deals resolved in W are counted by how far they got,
    then summed from each stage on, with no stage reaches to join.
    """
    by_depth = (
        resolved_in_window(states, window=window)
        .group_by("reached_index")
        .agg(
            (pl.col("state") == WON).sum().alias("won"),
            (pl.col("state") == LOST).sum().alias("lost"),
        )
        .collect()
    )
    counts = (
        stage_frame(funnel)
        .join(by_depth.lazy(), how="cross")
        .filter(pl.col("reached_index") >= pl.col("stage_index"))
        .group_by("stage")
        .agg(pl.col("won").sum(), pl.col("lost").sum())
    )
    won, lost = by_depth.select(
        pl.col("won").sum().cast(pl.Int64), pl.col("lost").sum().cast(pl.Int64)
    ).row(0)
    return smoothed_probabilities(
        counts,
        won / (won + lost) if won + lost else None,  # overall_win_rate, from the same counts
        funnel=funnel,
        smoothing_strength=smoothing_strength,
        min_resolved=min_resolved,
    )


def smoothed_probabilities(
    counts: pl.LazyFrame,
    p_bar: float | None,
    *,
    funnel: FunnelModel,
    smoothing_strength: float,
    min_resolved: int,
) -> pl.DataFrame:
    """The stage probabilities of the won and lost deals that reached each stage (`counts`:
    stage, won, lost): one row per open stage, in funnel order."""
    won, lost, m = pl.col("won"), pl.col("lost"), smoothing_strength
    p_win = (
        pl.lit(None, dtype=pl.Float64) if p_bar is None else (won + m * p_bar) / (won + lost + m)
    )
    return (
        stage_frame(funnel)
        .select("stage")
        .join(counts, on="stage", how="left", maintain_order="left")
        .with_columns(won.fill_null(0).cast(pl.Int64), lost.fill_null(0).cast(pl.Int64))
        .with_columns(
            p_win.alias("p_win"),
            (pl.lit(p_bar is None) | (won + lost < min_resolved)).alias("insufficient_history"),
        )
        .collect()
    )
