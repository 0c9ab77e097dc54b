"""Totals (`totals`): every deal's outcome as of as_of, whatever the period."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.expressions import ratio, stable_sum


def totals(states: pl.LazyFrame) -> pl.DataFrame:
    """Every deal's outcome as of as_of, whatever the period: the export's own picture, a
    single row.

    `crm_weighted_open_amount` weights open deals by the CRM's probability (percent), for
    comparison with the stage-weighted forecast; null when no open deal has one.
    """
    is_won, is_lost, is_open = (pl.col("state") == s for s in (WON, LOST, OPEN))
    crm = pl.col("amount_at") * pl.col("crm_probability") / 100
    return states.select(
        is_won.sum().cast(pl.Int64).alias("won_count"),
        stable_sum(pl.col("amount_at").filter(is_won)).alias("won_amount"),
        is_lost.sum().cast(pl.Int64).alias("lost_count"),
        ratio(is_won.sum(), is_won.sum() + is_lost.sum()).alias("win_rate"),
        is_open.sum().cast(pl.Int64).alias("open_count"),
        stable_sum(pl.col("amount_at").filter(is_open)).alias("open_amount"),
        pl.when(crm.filter(is_open).is_not_null().any())
        .then(stable_sum(crm.filter(is_open)))
        .alias("crm_weighted_open_amount"),
    ).collect()
