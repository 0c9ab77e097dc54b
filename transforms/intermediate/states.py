"""Deal states: every deal as it could be known at a date, and those states at many dates."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from schemas.vocabulary import LOST, OPEN, WON
from transforms.funnel_model import FunnelModel
from transforms.intermediate.reaches import first_reach, stage_reaches


def deal_states(
    opportunities: pl.LazyFrame,
    entries: pl.LazyFrame,
    *,
    as_of: datetime,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """Every deal as it could be known at `as_of`: one row per opportunity created before it.

    `entries` is `stage_entries`' table, in its order (opportunity, entered_at, stage_index).

    `state` is won (reached the won stage before as_of, unless a later loss reversed it), lost
    (status lost and closed before as_of) or open; `won_at` is first_reach(o, won);
    `stage_at` is the stage of the last entry before as_of; `amount_at` is the latest amount
    the history records before as_of, else the opportunity's amount.
    """
    known = entries.filter(pl.col("entered_at") < as_of)
    # entries come in stage_entries' order and a group keeps its rows' order: the last row
    # of a group is the latest entry, with no sort per group
    reached = known.group_by("opportunity_id").agg(
        first_reach(funnel.won_index).alias("won_at"),
        pl.col("stage").filter("is_stage_change").last().alias("stage_at"),
        pl.col("entered_at").filter("is_stage_change").last().alias("stage_entered_at_as_of"),
        pl.col("amount").drop_nulls().last().alias("history_amount"),
        pl.col("expected_close_date").drop_nulls().last().alias("history_expected_close_date"),
    )
    won_at = pl.col("won_at")
    is_lost = (pl.col("status") == LOST) & (pl.col("closed_at") < as_of)
    # a loss after the win reverses it (a deal moved from Closed Won to Closed Lost)
    is_reversed = is_lost & (pl.col("closed_at") >= won_at)
    state = (
        pl.when(won_at.is_not_null() & ~is_reversed.fill_null(False))
        .then(pl.lit(WON))
        .when(is_lost)
        .then(pl.lit(LOST))
        .otherwise(pl.lit(OPEN))
    )
    return (
        opportunities.filter(pl.col("created_at") < as_of)
        .join(reached, on="opportunity_id", how="left")
        .with_columns(
            state.alias("state"),
            pl.col("stage_at").fill_null(funnel.ids[0]),
            pl.coalesce("stage_entered_at_as_of", "created_at").alias("stage_entered_at_as_of"),
            pl.coalesce("history_amount", "amount").alias("amount_at"),
            pl.coalesce("history_expected_close_date", "expected_close_date").alias(
                "expected_close_date_at"
            ),
            pl.when(pl.col("closed_at") < as_of).then(pl.col("closed_at")).alias("closed_at_as_of"),
        )
        .with_columns(
            pl.when(pl.col("state") == WON)
            .then(pl.col("won_at"))
            .when(pl.col("state") == LOST)
            .then(pl.col("closed_at"))
            .alias("resolved_at")
        )
    )


# what the marts read from a deal state (the rest of the opportunity's columns stay behind)
STATE_COLUMNS = (
    "opportunity_id",
    "state",
    "stage_at",
    "created_at",
    "won_at",
    "closed_at",
    "resolved_at",
    "amount_at",
    "expected_close_date_at",
)


class DealStatesAt:
    """Deal states and stage reaches as of any instant, each computed once: comparisons,
    months, the trend and the backtest ask for the same period ends again and again."""

    def __init__(
        self,
        opportunities: pl.LazyFrame,
        entries: pl.LazyFrame,
        *,
        funnel: FunnelModel,
        known: dict[datetime, tuple[pl.DataFrame, pl.DataFrame]] | None = None,
    ):
        """`known`: deal states and stage reaches already derived, by as-of instant."""
        self._opportunities, self._entries, self._funnel = opportunities, entries, funnel
        known = known or {}
        self._states = {t: states.select(STATE_COLUMNS) for t, (states, _) in known.items()}
        self._reaches = {t: reaches for t, (_, reaches) in known.items()}
        self._all_reaches: pl.DataFrame | None = None

    def states(self, as_of: datetime) -> pl.LazyFrame:
        if as_of not in self._states:
            self._states[as_of] = (
                deal_states(self._opportunities, self._entries, as_of=as_of, funnel=self._funnel)
                .select(STATE_COLUMNS)
                .collect()
            )
        return self._states[as_of].lazy()

    def reaches(self, as_of: datetime) -> pl.LazyFrame:
        """first_reach(o, k) known at as_of is the first reach over all entries, when it lies
        before as_of: every deal's reaches are derived once, then masked per instant."""
        if as_of not in self._reaches:
            if self._all_reaches is None:
                self._all_reaches = stage_reaches(
                    self._entries, self._opportunities, as_of=None, funnel=self._funnel
                ).collect()
            self._reaches[as_of] = (
                self._all_reaches.lazy()
                .filter(pl.col("reached_at") < as_of)
                .join(self.states(as_of).select("opportunity_id"), on="opportunity_id", how="semi")
                .collect()
            )
        return self._reaches[as_of].lazy()
