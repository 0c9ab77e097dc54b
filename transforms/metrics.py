"""The figures of DESIGN §5, each from `deal_states` or `stage_visits` (see transforms.entries).

Every function returns a small polars frame (one row per stage, step or figure set) that
`transforms.report_metrics` turns into `metrics.json`.
"""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from transforms.entries import days_between, reach_column
from transforms.funnel_model import FunnelModel, RunSettings


def in_interval(value: pl.Expr, start: datetime, end: datetime) -> pl.Expr:
    return (value >= start) & (value < end)


def ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, null when the denominator is 0."""
    return pl.when(denominator > 0).then(numerator / denominator)


def open_stage_frame(funnel: FunnelModel) -> pl.LazyFrame:
    return pl.LazyFrame({"stage": [s.id for s in funnel.open_stages]})


def funnel_snapshot(states: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Open deals at as_of: one row per open stage, with count and amount."""
    per_stage = (
        states.filter(pl.col("state") == "open")
        .group_by(pl.col("stage_at").alias("stage"))
        .agg(pl.len().alias("count"), pl.col("amount_at").sum().alias("amount"))
    )
    return (
        open_stage_frame(funnel)
        .join(per_stage, on="stage", how="left", maintain_order="left")
        .with_columns(pl.col("count").fill_null(0).cast(pl.Int64), pl.col("amount").fill_null(0.0))
    )


def conversion(
    states: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    period_start: datetime,
    as_of: datetime,
    window_start: datetime,
    immature_open_share: float,
) -> pl.DataFrame:
    """Flow and cohort conversion: one row per adjacent pair of stages (from, to)."""
    pairs = list(zip(funnel.ids[:-1], funnel.ids[1:], strict=True))
    aggregates: list[pl.Expr] = []
    for i, (a, b) in enumerate(pairs):
        reach_a, reach_b = pl.col(reach_column(a)), pl.col(reach_column(b))
        in_cohort = in_interval(reach_a, window_start, as_of)
        advanced = in_cohort & reach_b.is_not_null()
        lost = in_cohort & ~advanced & (pl.col("state") == "lost")
        aggregates += [
            in_interval(reach_a, period_start, as_of).sum().alias(f"entries_from_{i}"),
            in_interval(reach_b, period_start, as_of).sum().alias(f"entries_to_{i}"),
            in_cohort.sum().alias(f"cohort_size_{i}"),
            advanced.sum().alias(f"advanced_{i}"),
            lost.sum().alias(f"lost_{i}"),
        ]
    counts = states.select(aggregates).collect().row(0, named=True)
    rows = []
    for i, (a, b) in enumerate(pairs):
        n, adv, lost = counts[f"cohort_size_{i}"], counts[f"advanced_{i}"], counts[f"lost_{i}"]
        entries_from, entries_to = counts[f"entries_from_{i}"], counts[f"entries_to_{i}"]
        is_post_sale = funnel.index(a) >= funnel.won_index
        rows.append(
            {
                "from": a,
                "to": b,
                "entries_from": entries_from,
                "entries_to": entries_to,
                "flow_rate": entries_to / entries_from if entries_from else None,
                "cohort_size": n,
                "advanced": adv,
                "lost": lost,
                "open": n - adv - lost,
                "cohort_rate": adv / n if n else None,
                "resolved_rate": None if is_post_sale or not adv + lost else adv / (adv + lost),
                "is_immature": bool(n) and (n - adv - lost) / n > immature_open_share,
            }
        )
    return pl.DataFrame(
        rows,
        schema_overrides={
            "flow_rate": pl.Float64,
            "cohort_rate": pl.Float64,
            "resolved_rate": pl.Float64,
        },
    )


def stage_probabilities(
    states: pl.LazyFrame, *, funnel: FunnelModel, window_start: datetime, settings: RunSettings
) -> tuple[pl.DataFrame, float | None]:
    """Smoothed win probability from each open stage: one row per open stage.

    Among deals that reached the stage and were resolved in W: p_win = (won + m·p̄) /
    (won + lost + m), with p̄ the win ratio over every deal resolved in W and m the smoothing
    strength. Null (and flagged) when nothing was resolved in W. Returns the rows and p̄.
    """
    resolved = states.filter(
        pl.col("state").is_in(["won", "lost"]) & (pl.col("resolved_at") >= window_start)
    )
    is_won = pl.col("state") == "won"
    overall = resolved.select(is_won.sum().alias("won"), (~is_won).sum().alias("lost")).collect()
    won_all, lost_all = overall.row(0)
    p_bar = won_all / (won_all + lost_all) if won_all + lost_all else None
    per_stage = (
        resolved.select(
            *[
                (pl.col(reach_column(s.id)).is_not_null() & is_won).sum().alias(f"won_{s.id}")
                for s in funnel.open_stages
            ],
            *[
                (pl.col(reach_column(s.id)).is_not_null() & ~is_won).sum().alias(f"lost_{s.id}")
                for s in funnel.open_stages
            ],
        )
        .collect()
        .row(0, named=True)
    )
    m = settings.smoothing_strength
    rows = []
    for s in funnel.open_stages:
        won, lost = per_stage[f"won_{s.id}"], per_stage[f"lost_{s.id}"]
        rows.append(
            {
                "stage": s.id,
                "won": won,
                "lost": lost,
                "p_win": None if p_bar is None else (won + m * p_bar) / (won + lost + m),
                "insufficient_history": p_bar is None
                or won + lost < settings.min_resolved_for_p_win,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"p_win": pl.Float64}), p_bar


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
    window_start: datetime,
    history_available: bool,
) -> pl.LazyFrame:
    """Time in each open stage: one row per open stage.

    Completed visits whose end lies in W (count, mean, quartiles, median, p90 days); visits
    open at as_of (count, median age); the Kaplan–Meier median over both. All null without
    stage history.
    """
    stages = open_stage_frame(funnel)
    relevant = visits.filter(
        pl.col("stage").is_in([s.id for s in funnel.open_stages])
        & (pl.col("is_open") | (pl.col("ended_at") >= window_start))
    )
    completed = pl.col("days").filter(~pl.col("is_open"))
    figures = relevant.group_by("stage").agg(
        (~pl.col("is_open")).sum().cast(pl.Int64).alias("completed_visits"),
        completed.mean().alias("mean_days"),
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


def stalled_deals(states: pl.LazyFrame, *, funnel: FunnelModel, as_of: datetime) -> pl.LazyFrame:
    """Open deals whose current visit is older than their stage's stall threshold."""
    thresholds = pl.LazyFrame(
        {
            "stage_at": [s.id for s in funnel.stages if s.stall_days is not None],
            "stall_days": [s.stall_days for s in funnel.stages if s.stall_days is not None],
        }
    )
    return (
        states.filter(pl.col("state") == "open")
        .join(thresholds, on="stage_at", how="inner")
        .with_columns(
            days_between(pl.col("stage_entered_at_as_of"), pl.lit(as_of)).alias("days_in_stage")
        )
        .filter(pl.col("days_in_stage") > pl.col("stall_days"))
        .with_columns(pl.col("stall_reason").is_null().alias("is_missing_reason"))
    )


def stalls_summary(stalled: pl.LazyFrame) -> dict[str, object]:
    """stalled_count, stalled_amount, missing_reason_count, compliance_rate and reasons[]."""
    totals = (
        stalled.select(
            pl.len().alias("stalled_count"),
            pl.col("amount_at").sum().alias("stalled_amount"),
            pl.col("is_missing_reason").sum().cast(pl.Int64).alias("missing_reason_count"),
        )
        .collect()
        .row(0, named=True)
    )
    n, missing = totals["stalled_count"], totals["missing_reason_count"]
    reasons = (
        stalled.filter(~pl.col("is_missing_reason"))
        .group_by(pl.col("stall_reason").alias("reason"))
        .agg(pl.len().alias("count"), pl.col("amount_at").sum().alias("amount"))
        .sort(["count", pl.col("amount").round(6), "reason"], descending=[True, True, False])
        .collect()
        .to_dicts()
    )
    by_owner = (
        stalled.group_by(pl.col("owner").fill_null("—").alias("owner"))
        .agg(pl.len().alias("stalled"), pl.col("is_missing_reason").sum().alias("missing_reason"))
        .with_columns((1 - pl.col("missing_reason") / pl.col("stalled")).alias("compliance_rate"))
        .sort(["missing_reason", "stalled", "owner"], descending=[True, True, False])
        .collect()
        .to_dicts()
    )
    return {
        **totals,
        "compliance_rate": 1 - missing / n if n else None,
        "reasons": reasons,
        "by_owner": by_owner,
    }


def headline_figures(*, period_start: datetime, as_of: datetime) -> list[pl.Expr]:
    """The headline aggregates of one interval [period_start, as_of), over deal states."""
    won = (pl.col("state") == "won") & in_interval(pl.col("won_at"), period_start, as_of)
    lost = (pl.col("state") == "lost") & in_interval(pl.col("closed_at"), period_start, as_of)
    won_amount = pl.col("amount_at").filter(won)
    return [
        (pl.col("state") == "open").sum().cast(pl.Int64).alias("open_count"),
        pl.col("amount_at").filter(pl.col("state") == "open").sum().alias("open_amount"),
        won.sum().cast(pl.Int64).alias("won_count"),
        won_amount.sum().alias("won_amount"),
        lost.sum().cast(pl.Int64).alias("lost_count"),
        ratio(won.sum(), won.sum() + lost.sum()).alias("win_rate"),
        won_amount.mean().alias("avg_won_amount"),
        days_between(pl.col("created_at"), pl.col("won_at"))
        .filter(won)
        .median()
        .alias("median_cycle_days"),
    ]


def headline(states: pl.LazyFrame, *, period_start: datetime, as_of: datetime) -> pl.LazyFrame:
    """Headline figures of one interval [period_start, as_of): a single row."""
    return states.select(headline_figures(period_start=period_start, as_of=as_of))


SEGMENT_DIMENSIONS = ("owner", "source", "industry", "customer_size", "region")


def segments(
    states: pl.LazyFrame, *, period_start: datetime, as_of: datetime
) -> dict[str, list[dict[str, object]]]:
    """Headline figures per value of each segment dimension (blank values as "—"), largest
    open pipeline first."""
    figures = headline_figures(period_start=period_start, as_of=as_of)
    return {
        dimension: states.group_by(pl.col(dimension).fill_null("—").alias("value"))
        .agg(figures)
        .sort(
            [pl.col("won_amount").round(6), pl.col("open_amount").round(6), "value"],
            descending=[True, True, False],
            nulls_last=True,
        )
        .collect()
        .to_dicts()
        for dimension in SEGMENT_DIMENSIONS
    }


def kpis(
    states: pl.LazyFrame, *, period_start: datetime, as_of: datetime, window_start: datetime
) -> dict[str, object]:
    """Headline figures for the period, and pipeline velocity from the figures over W."""
    figures = headline(states, period_start=period_start, as_of=as_of).collect().row(0, named=True)
    window = headline(states, period_start=window_start, as_of=as_of).collect().row(0, named=True)
    parts = (window["win_rate"], window["avg_won_amount"], window["median_cycle_days"])
    velocity = None
    if all(p is not None for p in parts) and window["median_cycle_days"] > 0:
        velocity = figures["open_count"] * parts[0] * parts[1] / parts[2]
    return {
        **figures,
        "pipeline_velocity": velocity,
        "window": {
            k: window[k]
            for k in ("won_count", "lost_count", "win_rate", "avg_won_amount", "median_cycle_days")
        },
    }


def weighted_open_deals(
    states: pl.LazyFrame, probabilities: pl.DataFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Open deals at as_of with the win probability of their stage and amount × p_win."""
    p_win = probabilities.lazy().select(pl.col("stage").alias("stage_at"), "p_win")
    return (
        states.filter(pl.col("state") == "open")
        .join(p_win, on="stage_at", how="left")
        .with_columns((pl.col("amount_at") * pl.col("p_win")).alias("weighted_amount"))
    )


def forecast(
    weighted: pl.LazyFrame,
    *,
    funnel: FunnelModel,
    next_period_start: date,
    next_period_end: date,
    probabilities_known: bool,
) -> dict[str, object]:
    """Stage-weighted pipeline at as_of, and the part expected to close in the next period."""
    in_next = (pl.col("expected_close_date_at") >= next_period_start) & (
        pl.col("expected_close_date_at") < next_period_end
    )
    totals = (
        weighted.select(
            pl.col("weighted_amount").sum().alias("weighted_pipeline"),
            pl.col("weighted_amount").filter(in_next).sum().alias("next_period"),
            pl.col("amount_at").is_null().sum().cast(pl.Int64).alias("unpriced_count"),
        )
        .collect()
        .row(0, named=True)
    )
    by_stage = (
        open_stage_frame(funnel)
        .join(
            weighted.group_by(pl.col("stage_at").alias("stage")).agg(
                pl.len().alias("open_count"),
                pl.col("amount_at").sum().alias("open_amount"),
                pl.col("weighted_amount").sum().alias("weighted_amount"),
            ),
            on="stage",
            how="left",
            maintain_order="left",
        )
        .with_columns(
            pl.col("open_count").fill_null(0),
            pl.col("open_amount").fill_null(0.0),
            pl.col("weighted_amount").fill_null(0.0),
        )
    )
    if not probabilities_known:
        totals["weighted_pipeline"] = totals["next_period"] = None
        by_stage = by_stage.with_columns(pl.lit(None, dtype=pl.Float64).alias("weighted_amount"))
    return {**totals, "by_stage": by_stage.collect().to_dicts()}


def totals(states: pl.LazyFrame) -> dict[str, object]:
    """Every deal's outcome as of as_of, whatever the period: the export's own picture.

    `crm_weighted_open_amount` weights open deals by the CRM's probability (percent), for
    comparison with the stage-weighted forecast; null when no open deal has one.
    """
    is_won, is_lost, is_open = (pl.col("state") == s for s in ("won", "lost", "open"))
    crm = pl.col("amount_at") * pl.col("crm_probability") / 100
    row = (
        states.select(
            is_won.sum().cast(pl.Int64).alias("won_count"),
            pl.col("amount_at").filter(is_won).sum().alias("won_amount"),
            is_lost.sum().cast(pl.Int64).alias("lost_count"),
            ratio(is_won.sum(), is_won.sum() + is_lost.sum()).alias("win_rate"),
            is_open.sum().cast(pl.Int64).alias("open_count"),
            pl.col("amount_at").filter(is_open).sum().alias("open_amount"),
            pl.when(crm.filter(is_open).is_not_null().any())
            .then(crm.filter(is_open).sum())
            .alias("crm_weighted_open_amount"),
        )
        .collect()
        .row(0, named=True)
    )
    return row
