"""Target decomposition (docs/metrics.md `targets`): what a period target asks of the funnel."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import WON
from funnel_reports.transforms.expressions import as_list, days_between, one_row
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
    kpis: pl.LazyFrame,
    pipeline: pl.LazyFrame,
    window: Window,
) -> pl.LazyFrame:
    """What a period target asks: won deals needed (target / average won amount over W),
    entries needed at each stage (won needed / p_win), the latest date to enter each stage
    (period end minus the median days from that stage to won, over deals won in W), the gap
    between what is left to win and the weighted pipeline, and coverage: a single row, from
    the period's `kpis` and stage-weighted `pipeline` (`forecast.pipeline.forecast`)."""
    average = kpis.select(pl.col("window").struct.field("avg_won_amount")).collect().item()
    won_needed = target / average if average else None
    stages = stage_needs(
        reaches,
        states,
        probabilities,
        funnel=funnel,
        won_needed=won_needed,
        window=window,
    )
    remaining, weighted = pl.col("remaining"), pl.col("weighted_pipeline")
    figures = one_row(
        kpis.select(pl.lit(target, pl.Float64).alias("target"), "won_amount"),
        pipeline.select("weighted_pipeline"),
    ).with_columns(
        pl.max_horizontal(pl.col("target") - pl.col("won_amount"), 0.0).alias("remaining")
    )
    return one_row(
        figures.select(
            "target",
            "won_amount",
            "remaining",
            pl.lit(won_needed, pl.Float64).alias("won_needed"),
        ),
        as_list(stages, "stages"),
        figures.select(
            (remaining - weighted).alias("gap"),
            pl.when(remaining > 0).then(weighted / remaining).alias("coverage"),
        ),
    )


def stage_needs(
    reaches: pl.LazyFrame,
    states: pl.LazyFrame,
    probabilities: pl.DataFrame,
    *,
    funnel: FunnelModel,
    won_needed: float | None,
    window: Window,
) -> pl.LazyFrame:
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
    )
