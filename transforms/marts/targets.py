"""Target decomposition (DESIGN §5 `targets`): what a period target asks of the funnel."""

from __future__ import annotations

from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import WON
from funnel_reports.transforms.expressions import days_between
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Window


def target_decomposition(
    reaches: pl.LazyFrame,
    states: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
    target: float,
    won_amount: float,
    avg_won_amount: float | None,
    weighted_pipeline: float | None,
    window: Window,
) -> dict[str, Any]:
    """What a period target asks: won deals needed (target / average won amount over W),
    entries needed at each stage (won needed / p_win), the latest date to enter each stage
    (period end minus the median days from that stage to won, over deals won in W), the gap
    between what is left to win and the weighted pipeline, and coverage."""
    won_needed = target / avg_won_amount if avg_won_amount else None
    stages = stage_needs(
        reaches,
        states,
        probabilities,
        funnel=funnel,
        won_needed=won_needed,
        window=window,
    )
    remaining = max(target - won_amount, 0.0)
    return {
        "target": target,
        "won_amount": won_amount,
        "remaining": remaining,
        "won_needed": won_needed,
        "stages": stages.to_dicts(),
        "gap": None if weighted_pipeline is None else remaining - weighted_pipeline,
        "coverage": (
            weighted_pipeline / remaining
            if weighted_pipeline is not None and remaining > 0
            else None
        ),
    }


def stage_needs(
    reaches: pl.LazyFrame,
    states: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
    won_needed: float | None,
    window: Window,
) -> pl.DataFrame:
    """Per stage (a row each): its p_win, the entries needed (won needed / p_win), the median
    days from it to won over the deals won in W, and the latest date to enter it."""
    won_in_w = states.filter((pl.col("state") == WON) & (pl.col("won_at") >= window.window_start))
    to_won = (
        reaches.join(won_in_w.select("opportunity_id", "won_at"), on="opportunity_id")
        .group_by("stage")
        .agg(days_between(pl.col("reached_at"), pl.col("won_at")).median().alias("days"))
    )
    p_win, days = pl.col("p_win"), pl.col("days")
    return (
        stage_frame(funnel)
        .select("stage")
        .join(
            probabilities.lazy().select("stage", "p_win"),
            on="stage",
            how="left",
            maintain_order="left",
        )
        .join(to_won, on="stage", how="left", maintain_order="left")
        .select(
            "stage",
            "p_win",
            (
                pl.when(p_win != 0).then(won_needed / p_win)
                if won_needed is not None
                else pl.lit(None, dtype=pl.Float64)
            ).alias("entries_needed"),
            pl.col("days").alias("median_days_to_won"),
            # the whole days of the median, as date arithmetic with a timedelta counts them
            (pl.lit(window.period.end_date) - pl.duration(days=days.floor().cast(pl.Int64)))
            .dt.to_string("%Y-%m-%d")
            .alias("latest_entry_date"),
        )
        .collect()
    )
