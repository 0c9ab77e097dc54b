"""The CRM's own forecast categories (issue 26): the roll-up of the deals expected to close in
the next period by the category their owners gave them, beside the model's number, and each
category's record: of the deals it held at a past period end and expected to close in the
following period, the share won in it.

A deal's category at an instant is the latest its history records before it; for the roll-up
at the period's end, else the category the export gives the deal now (like its amount). The
record reads the history only: a category the export gives now was not known at a past
period end (a deal won since says "closed"), so without categories in the history the record
is not recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import (
    BEST_CASE,
    CLOSED,
    COMMIT,
    FORECAST_CATEGORIES,
    OPEN,
    PIPELINE,
    WON,
)
from funnel_reports.transforms.expressions import stable_sum
from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.movement import expected_at_start, expected_within, moved_deals
from funnel_reports.transforms.periods import Period, Window

NOT_SET = "not_set"
HELD_SCHEMA = {"category": pl.String, "amount": pl.Float64, "won": pl.Boolean}
# the categories a roll-up lists, in the CRM's order (closed deals are not expected to close)
ROLLUP_CATEGORIES = (*(c for c in FORECAST_CATEGORIES if c != CLOSED), NOT_SET)
# the roll-up's running totals: commit, then best case (commit + best case), then pipeline
CUMULATIVE = {
    COMMIT: (COMMIT,),
    BEST_CASE: (COMMIT, BEST_CASE),
    PIPELINE: (COMMIT, BEST_CASE, PIPELINE),
}


def categories_at(history: pl.DataFrame, as_of: datetime) -> pl.LazyFrame:
    """Each deal's latest forecast category its history records before `as_of`
    (`history`: opportunity_id, entered_at, forecast_category, the rows holding one)."""
    return (
        history.lazy()
        .filter(pl.col("entered_at") < as_of)
        .sort("opportunity_id", "entered_at", maintain_order=True)
        .group_by("opportunity_id", maintain_order=True)
        .agg(pl.col("forecast_category").last().alias("category"))
    )


def category_rollup(
    states_at: DealStatesAt,
    history: pl.DataFrame,
    current: pl.DataFrame,
    *,
    period: Period,
) -> dict[str, Any]:
    """The open deals at `period`'s end expected to close in the next period, by category
    (count and amount; `not_set` without one), the commit, best-case and pipeline totals
    (each the categories up to it), and the open deals already past their expected close
    date, which no period's roll-up holds."""
    known = categories_at(history, period.end).join(
        current.lazy().rename({"forecast_category": "_current"}),
        on="opportunity_id",
        how="full",
        coalesce=True,
    )
    open_then = states_at.states(period.end).filter(pl.col("state") == OPEN)
    rows = (
        open_then.filter(expected_within(period.shifted(1), "expected_close_date_at"))
        .join(known, on="opportunity_id", how="left")
        .select(
            pl.coalesce("category", "_current", pl.lit(NOT_SET)).alias("category"),
            pl.col("amount_at").fill_null(0.0).alias("amount"),
        )
        .group_by("category")
        .agg(pl.len().alias("count"), stable_sum(pl.col("amount")).alias("amount"))
        .collect()
    )
    by = {r["category"]: r for r in rows.iter_rows(named=True)}
    table = [
        {
            "category": c,
            "count": by.get(c, {}).get("count", 0),
            "amount": by.get(c, {}).get("amount", 0.0),
        }
        for c in ROLLUP_CATEGORIES
    ]
    totals = {
        f"{name}_amount": sum(r["amount"] for r in table if r["category"] in parts)
        for name, parts in CUMULATIVE.items()
    }
    # the open deals already past their expected close date: in no period's roll-up
    overdue = (
        open_then.filter(pl.col("expected_close_date_at") < period.end_date)
        .select(pl.len(), stable_sum(pl.col("amount_at").fill_null(0.0)))
        .collect()
        .row(0)
    )
    return {
        "rows": table,
        **totals,
        "overdue_count": overdue[0],
        "overdue_amount": overdue[1],
    }


def category_record(
    states_at: DealStatesAt, history: pl.DataFrame, windows: list[Window]
) -> list[dict[str, Any]]:
    """Per category, over the periods of `windows` (each following a backtest origin): the
    deals the pipeline movement expected in the period as of its start (`expected_at_start`)
    whose history then gave them the category, and how many of them (and of their amount
    then) were won in it."""
    held = [
        moved_deals(states_at, window=window)
        .filter(expected_at_start(window.period))
        .join(categories_at(history, window.start), on="opportunity_id")
        .select(
            "category",
            pl.col("amount_start").fill_null(0.0).alias("amount"),
            (pl.col("step") == WON).alias("won"),
        )
        .collect()
        for window in windows
    ]
    frame = pl.concat(held) if held else pl.DataFrame(schema=HELD_SCHEMA)
    stats = {
        row["category"]: row
        for row in frame.group_by("category")
        .agg(
            pl.len().alias("deals"),
            pl.col("won").sum().cast(pl.Int64).alias("won_deals"),
            stable_sum(pl.col("amount")).alias("amount"),
            stable_sum(pl.col("amount").filter(pl.col("won"))).alias("won_amount"),
        )
        .iter_rows(named=True)
    }
    empty = {"deals": 0, "won_deals": 0, "amount": 0.0, "won_amount": 0.0}
    return [
        {
            "category": category,
            **(cell := {k: stats.get(category, empty)[k] for k in empty}),
            "won_share": cell["won_deals"] / cell["deals"] if cell["deals"] else None,
            "won_amount_share": cell["won_amount"] / cell["amount"] if cell["amount"] else None,
        }
        for category in (COMMIT, BEST_CASE, PIPELINE)
    ]


def forecast_categories(
    states_at: DealStatesAt,
    history: pl.DataFrame,
    current: pl.DataFrame,
    *,
    period: Period,
    windows: list[Window],
) -> dict[str, Any] | None:
    """`forecast.categories`: the roll-up and the record; None when the export gives no deal
    a category (the record alone is None without categories in the history)."""
    if history.height == 0 and current["forecast_category"].null_count() == current.height:
        return None
    return {
        **category_rollup(states_at, history, current, period=period),
        "record": category_record(states_at, history, windows) if history.height else None,
    }
