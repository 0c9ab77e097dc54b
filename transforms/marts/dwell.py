"""Time in stage (docs/metrics.md `dwell`): completed and open visits per stage, Kaplan–Meier."""

from __future__ import annotations

import polars as pl

from funnel_reports.transforms.expressions import stable_mean
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.periods import Window


def kaplan_meier_median(visits: pl.LazyFrame) -> pl.LazyFrame:
    """Kaplan–Meier median of `days` per stage; `is_open` visits are censored.

    Survival drops at each distinct completed length t by (1 - events(t) / at_risk(t)), where
    at_risk counts visits of length >= t; the median is the first t where survival <= 0.5.
    """
    by_length = (
        visits.group_by("stage", "days")
        .agg((~pl.col("is_open")).sum().alias("events"), pl.len().alias("n"))
        .sort("stage", "days")
    )
    at_risk = (
        pl.col("n").sum().over("stage")
        - pl.col("n").cum_sum().over("stage", order_by="days")
        + pl.col("n")
    )
    survival = (1 - pl.col("events") / at_risk).cum_prod().over("stage", order_by="days")
    return (
        by_length.with_columns(survival.alias("survival"))
        .group_by("stage")
        .agg(pl.col("days").filter(pl.col("survival") <= 0.5).min().alias("km_median_days"))
    )


def dwell(
    visits: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    window: Window,
    history_available: bool,
) -> pl.LazyFrame:
    """Time in each open stage: one row per open stage.

    Completed visits whose end lies in W (count, mean, quartiles, median, p90 days); visits
    open at as_of (count, median age); the Kaplan–Meier median over both. All null without
    stage history.
    """
    stages = stage_frame(funnel).select("stage")
    relevant = visits.filter(
        pl.col("stage").is_in(funnel.open_ids)
        & (pl.col("is_open") | (pl.col("ended_at") >= window.window_start))
    )
    completed = pl.col("days").filter(~pl.col("is_open"))
    figures = relevant.group_by("stage").agg(
        (~pl.col("is_open")).sum().cast(pl.Int64).alias("completed_visits"),
        stable_mean(completed).alias("mean_days"),
        completed.median().alias("median_days"),
        completed.quantile(0.25, interpolation="linear").alias("p25_days"),
        completed.quantile(0.75, interpolation="linear").alias("p75_days"),
        completed.quantile(0.9, interpolation="linear").alias("p90_days"),
        pl.col("is_open").sum().cast(pl.Int64).alias("open_visits"),
        pl.col("days").filter(pl.col("is_open")).median().alias("open_median_age_days"),
    )
    table = (
        stages.join(figures, on="stage", how="left", maintain_order="left")
        .join(kaplan_meier_median(relevant), on="stage", how="left", maintain_order="left")
        .with_columns(pl.col("completed_visits", "open_visits").fill_null(0))
    )
    if not history_available:
        return table.select(
            "stage",
            *[
                pl.lit(None).cast(dtype).alias(name)
                for name, dtype in table.collect_schema().items()
                if name != "stage"
            ],
        )
    return table
