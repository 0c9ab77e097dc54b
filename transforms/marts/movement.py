"""Pipeline movement (docs/metrics.md `pipeline_movement`): how the open pipeline at the
period's start became the one at its end, and what happened to the deals expected to close in
the period.

Both from the deal states at the two instants (`DealStatesAt`), amounts and expected close
dates as known at each. Each deal open at the start or created in the period falls in exactly
one step:

- `won`, `lost`: open at the start, resolved in the period (at their start amount);
- `created`: created in the period and open at its end (at its end amount);
- `created_and_closed`: created and resolved inside the period (beside the bridge, not in it);
- `carried`: open at both instants, `increased` or `decreased` by its end amount minus its
  start amount (a missing amount counts 0), else unchanged;
- `reopened`: not open at the start, open at the end. A deal state is open, won or lost from
  the deal's status and close date as the export holds them now, so no export shows a deal
  reopening: the metrics document lists it as not recorded.

open(start) + created − won − lost = open(end) in counts, and open(start) + created + increased
− decreased − won − lost = open(end) in amounts, per stage (each deal under its stage at the
end) and in total.
"""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.expressions import as_list, one_row, stable_sum
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_frame
from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.periods import Period, Window

# the bridge's steps in the order a waterfall draws them, and the step of each deal
STEPS = ("created", "increased", "decreased", "won", "lost")
CARRIED, CREATED_AND_CLOSED = "carried", "created_and_closed"
SLIPPED_LISTED = 10


def states_at_start(states_at: DealStatesAt, *, window: Window) -> pl.LazyFrame:
    """Each deal's state, stage, amount and expected close date at the period's start
    (`_start`), to join on the states at its end."""
    return states_at.states(window.start).select(
        "opportunity_id",
        pl.col("state").alias("state_start"),
        pl.col("stage_at").alias("stage_start"),
        pl.col("amount_at").alias("amount_start"),
        pl.col("expected_close_date_at").alias("expected_start"),
    )


def period_flags(window: Window) -> dict[str, pl.Expr]:
    """Whether a deal (its states at the end beside `states_at_start`) was open at the
    period's start, is open at its end, and was created in it."""
    return {
        "open_at_start": (pl.col("state_start") == OPEN).fill_null(False),
        "open_at_end": pl.col("state") == OPEN,
        "created_in_period": pl.col("created_at") >= window.start,
    }


def moved_deals(states_at: DealStatesAt, *, window: Window) -> pl.LazyFrame:
    """Every deal open at the period's start or created in it, with its state, stage, amount
    and expected close date at the start (`_start`) and at the end, its `step` and its
    amount `change` (end − start, for deals open at both instants)."""
    start = states_at_start(states_at, window=window)
    end = states_at.states(window.as_of)
    flags = period_flags(window)
    open_start, open_end, created = (
        flags["open_at_start"],
        flags["open_at_end"],
        flags["created_in_period"],
    )
    step = (
        pl.when(open_start & open_end)
        .then(pl.lit(CARRIED))
        .when(open_start & (pl.col("state") == WON))
        .then(pl.lit("won"))
        .when(open_start & (pl.col("state") == LOST))
        .then(pl.lit("lost"))
        .when(created & open_end)
        .then(pl.lit("created"))
        .when(created)
        .then(pl.lit(CREATED_AND_CLOSED))
    )
    return (
        end.join(start, on="opportunity_id", how="left")
        .with_columns(step.alias("step"))
        .filter(pl.col("step").is_not_null())
        .with_columns(
            pl.when(pl.col("step") == CARRIED)
            .then(pl.col("amount_at").fill_null(0.0) - pl.col("amount_start").fill_null(0.0))
            .alias("change")
        )
    )


def bridge_figures(moved: pl.LazyFrame) -> list[pl.Expr]:
    """Count and amount of the open pipeline at both instants and of each step."""
    step, change = pl.col("step"), pl.col("change")
    open_start = step.is_in([CARRIED, "won", "lost"])
    open_end = step.is_in([CARRIED, "created"])
    amounts = {
        "open_start": pl.col("amount_start").filter(open_start),
        "created": pl.col("amount_at").filter(step == "created"),
        "increased": change.filter(change > 0),
        "decreased": -change.filter(change < 0),
        "won": pl.col("amount_start").filter(step == "won"),
        "lost": pl.col("amount_start").filter(step == "lost"),
        "open_end": pl.col("amount_at").filter(open_end),
    }
    counts = {
        "open_start": open_start.sum(),
        "created": (step == "created").sum(),
        "increased": (change > 0).sum(),
        "decreased": (change < 0).sum(),
        "won": (step == "won").sum(),
        "lost": (step == "lost").sum(),
        "open_end": open_end.sum(),
    }
    return [
        expr
        for name in amounts
        for expr in (
            counts[name].cast(pl.Int64).alias(f"{name}_count"),
            stable_sum(amounts[name]).alias(f"{name}_amount"),
        )
    ]


def pipeline_movement(
    states_at: DealStatesAt,
    opportunities: pl.LazyFrame,
    *,
    window: Window,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """The bridge from the open pipeline at the period's start to the one at its end: each
    step's count and amount in total, per stage (`by_stage`), the deals created and closed
    inside the period, and the deals expected to close in it (`expected`): a single row."""
    moved = moved_deals(states_at, window=window)
    figures = bridge_figures(moved)
    by_stage = (
        stage_frame(funnel, open_only=False)
        .select("stage")
        .join(
            moved.group_by(pl.col("stage_at").alias("stage")).agg(figures),
            on="stage",
            how="inner",
            maintain_order="left",
        )
    )
    closed_inside = moved.filter(pl.col("step") == CREATED_AND_CLOSED).select(
        pl.len().cast(pl.Int64).alias("count"),
        (pl.col("state") == WON).sum().cast(pl.Int64).alias("won_count"),
        stable_sum(pl.col("amount_at").filter(pl.col("state") == WON)).alias("won_amount"),
        (pl.col("state") == LOST).sum().cast(pl.Int64).alias("lost_count"),
    )
    return one_row(
        moved.select(figures),
        moved.select(pl.lit(None, pl.Int64).alias("reopened_count")),
        closed_inside.select(pl.struct(pl.all()).alias(CREATED_AND_CLOSED)),
        as_list(by_stage, "by_stage"),
        expected_in_period(moved, states_at, opportunities, window=window),
    )


def expected_within(period: Period, column: str = "expected_start") -> pl.Expr:
    """The expected close date in `column` lies in `period`."""
    return pl.col(column).is_between(period.start_date, period.end_date, closed="left")


def expected_at_start(period: Period) -> pl.Expr:
    """Of `moved_deals`' rows: open at the period's start (carried, won or lost in it), with
    an expected close date, as known then, in the period."""
    return pl.col("step").is_in([CARRIED, "won", "lost"]) & expected_within(period)


def expected_in_period(
    moved: pl.LazyFrame,
    states_at: DealStatesAt,
    opportunities: pl.LazyFrame,
    *,
    window: Window,
) -> pl.LazyFrame:
    """The deals open at the start whose expected close date, as known then, fell in the
    period: how many were won, lost, pushed out (open at the end with a later date) or are
    still open and overdue; beside them the deals won in the period that were not expected
    in it (`pulled_in`: open at the start with another date or none; `new_won`: created in
    the period); and the largest pushed-out deals (`slipped`), with the days their date moved
    in the period and how many times it was ever moved later. A single row, `expected`."""
    period = window.period
    in_period = expected_within(period)
    expected = moved.filter(expected_at_start(period))
    pushed = (pl.col("step") == CARRIED) & (pl.col("expected_close_date_at") >= period.end_date)
    won_elsewhere = (pl.col("step") == "won") & ~in_period.fill_null(False)
    new_won = (pl.col("step") == CREATED_AND_CLOSED) & (pl.col("state") == WON)

    def part(name: str, rows: pl.Expr, amount: str) -> list[pl.Expr]:
        return [
            rows.sum().cast(pl.Int64).alias(f"{name}_count"),
            stable_sum(pl.col(amount).filter(rows)).alias(f"{name}_amount"),
        ]

    figures = expected.select(
        pl.len().cast(pl.Int64).alias("expected_count"),
        stable_sum(pl.col("amount_start")).alias("expected_amount"),
        *part("won", pl.col("step") == "won", "amount_start"),
        *part("lost", pl.col("step") == "lost", "amount_start"),
        *part("pushed_out", pushed, "amount_start"),
        *part("overdue", (pl.col("step") == CARRIED) & ~pushed, "amount_start"),
    )
    beside = moved.select(
        *part("pulled_in", won_elsewhere, "amount_start"),
        *part("new_won", new_won, "amount_at"),
    )
    slipped = slipped_deals(expected.filter(pushed), states_at, opportunities, window=window)
    return one_row(figures, beside, as_list(slipped, "slipped")).select(
        pl.struct(pl.all()).alias("expected")
    )


def slipped_deals(
    pushed: pl.LazyFrame,
    states_at: DealStatesAt,
    opportunities: pl.LazyFrame,
    *,
    window: Window,
) -> pl.LazyFrame:
    """The `SLIPPED_LISTED` largest pushed-out deals (by their amount at the start): the days
    their expected close date moved in the period, and how many times it was ever moved
    later."""
    largest = (
        pushed.join(
            opportunities.select("opportunity_id", "customer_name", "owner"),
            on="opportunity_id",
            how="left",
        )
        .sort(
            [pl.col("amount_start").fill_null(0.0).round(6), "opportunity_id"],
            descending=[True, False],
        )
        .head(SLIPPED_LISTED)
    )
    return (
        largest.join(
            states_at.close_date_pushes(window.as_of, largest),
            on="opportunity_id",
            how="left",
            maintain_order="left",
        )
        .select(
            "opportunity_id",
            "customer_name",
            "owner",
            pl.col("stage_at").alias("stage"),
            pl.col("amount_start").alias("amount"),
            pl.col("expected_start").alias("expected_before"),
            pl.col("expected_close_date_at").alias("expected_after"),
            (pl.col("expected_close_date_at") - pl.col("expected_start"))
            .dt.total_days()
            .alias("days_pushed"),
            # a date that moved later between the two instants moved at least once, even
            # where the history holds no earlier date to compare with
            pl.col("times_pushed").fill_null(1),
        )
        .with_columns(pl.col("expected_before", "expected_after").dt.to_string("%Y-%m-%d"))
    )
