"""Deal states: every deal as it could be known at a date, masked at any date from what its
entries tell once."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.reaches import stage_reaches

DEAL = "_deal"  # a deal's row in the opportunities table, and in `deal_facts`' table
# what a deal state reads of an opportunity, and never changes with the instant
FACT_COLUMNS = (
    "opportunity_id",
    "created_at",
    "status",
    "closed_at",
    "amount",
    "expected_close_date",
)
# what a deal span holds of the entries before an instant
SPAN_COLUMNS = (
    "stage_at",
    "stage_entered_at_as_of",
    "reached_index",
    "history_amount",
    "history_expected_close_date",
)


def deal_facts(
    opportunities: pl.LazyFrame, times: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Deal facts: one row per opportunity, in their order, with what its states read that
    no instant changes.

    `times` is `reach_times`' table. `_deal` numbers the rows; `first_entry_at` is the deal's
    first entry and `won_first` first_reach(o, won) over all entries (won_at at t is
    won_first when it lies before t).
    """
    return (
        opportunities.select(FACT_COLUMNS)
        .with_row_index(DEAL)
        .join(
            times.select(
                "opportunity_id",
                pl.col("0").alias("first_entry_at"),
                pl.col(str(funnel.won_index)).alias("won_first"),
            ),
            on="opportunity_id",
            how="left",
            maintain_order="left",
        )
    )


def deal_spans(entries: pl.LazyFrame, facts: pl.LazyFrame) -> pl.LazyFrame:
    """Deal spans: what a deal's entries tell between two instants at which it changed.

    One row per deal and span, in `facts`' order then by time. A span holds what the entries
    before an instant t say, for every t in (after, until]: the first one (`after` null) runs
    until the deal's first entry and knows nothing; each later one starts at an instant whose
    entries changed `stage_at` (the stage of the latest stage change, entered at
    `stage_entered_at_as_of`), `reached_index` (the furthest stage entered: the deal has
    reached every stage up to it), `history_amount` or `history_expected_close_date` (the
    latest ones recorded), and runs until the next such instant (`until` null: for ever).
    Every deal has exactly one span holding any instant.

    `entries` is `stage_entries`' table, in its order (opportunity, entered_at, stage_index);
    `facts` is `deal_facts`' table.
    """
    changes = span_starts(entries).join(facts.select("opportunity_id", DEAL), on="opportunity_id")
    first = facts.select(
        DEAL,
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("after"),
        pl.col("first_entry_at").alias("until"),
    )
    return pl.concat(
        [first, changes.select(DEAL, "after", "until", *SPAN_COLUMNS)], how="diagonal"
    ).sort(DEAL, "after", nulls_last=False)


def span_starts(entries: pl.LazyFrame) -> pl.LazyFrame:
    """Each instant at which a deal's entries changed what is known of it (`deal_spans`'
    columns), with the next such instant (`until`), in the entries' order."""
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    deal = pl.col("opportunity_id")
    # entries are sorted by deal: a deal's rows start where the opportunity changes, and its
    # first row is always a stage change
    is_first = (deal != deal.shift(1)).fill_null(True)
    deal_start = pl.when(is_first).then(row).forward_fill()
    # the furthest stage so far: a running maximum that each deal's first row resets (deals
    # numbered in turn, each above every stage index of the deals before it)
    above = is_first.cum_sum().cast(pl.Int64) * (1 << 16)
    reached = (above + pl.col("stage_index")).cum_max() - above

    def latest(column: str) -> pl.Expr:
        """The deal's latest non-null value of `column` up to this row."""
        at = pl.when(pl.col(column).is_not_null()).then(row).forward_fill()
        return pl.when(at >= deal_start).then(pl.col(column).gather(at))

    def repeats(columns: tuple[str, ...]) -> pl.Expr:
        """This row holds the same values as the row before, of the same deal."""
        same = (pl.col(c).eq_missing(pl.col(c).shift(1)) for c in columns)
        return ((deal == deal.shift(1)) & pl.all_horizontal(same)).fill_null(False)

    is_last_at_instant = (deal != deal.shift(-1)) | (
        pl.col("entered_at") != pl.col("entered_at").shift(-1)
    )
    return (
        entries.select(
            "opportunity_id",
            pl.col("entered_at").alias("after"),
            pl.when("is_stage_change").then(pl.col("stage")).forward_fill().alias("stage_at"),
            pl.when("is_stage_change")
            .then(pl.col("entered_at"))
            .forward_fill()
            .alias("stage_entered_at_as_of"),
            reached.cast(pl.Int32).alias("reached_index"),
            latest("amount").alias("history_amount"),
            latest("expected_close_date").alias("history_expected_close_date"),
            is_last_at_instant.fill_null(True).alias("_last"),
        )
        .filter("_last")  # what is known after each instant: all its entries
        .filter(~repeats(SPAN_COLUMNS))
        .with_columns(
            pl.when(deal == deal.shift(-1)).then(pl.col("after").shift(-1)).alias("until")
        )
    )


def deal_states_at(
    facts: pl.LazyFrame, spans: pl.LazyFrame, *, as_of: datetime, funnel: FunnelModel
) -> pl.LazyFrame:
    """Deal states at `as_of`: one row per opportunity created before it, in `facts`' order.

    `state` is won (reached the won stage before as_of, unless a later loss reversed it), lost
    (status lost and closed before as_of) or open; `won_at` is first_reach(o, won);
    `stage_at` is the stage of the last stage change before as_of; `amount_at` is the latest
    amount the history records before as_of, else the opportunity's amount.
    """
    holds = (pl.col("after").is_null() | (pl.col("after") < as_of)) & (
        pl.col("until").is_null() | (pl.col("until") >= as_of)
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
    # one span of every deal holds as_of, in the same order as the facts
    return (
        pl.concat([facts, spans.filter(holds).select(SPAN_COLUMNS)], how="horizontal")
        .filter(pl.col("created_at") < as_of)
        .with_columns(
            pl.when(pl.col("won_first") < as_of).then(pl.col("won_first")).alias("won_at")
        )
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


def deal_states(
    opportunities: pl.LazyFrame,
    facts: pl.LazyFrame,
    spans: pl.LazyFrame,
    *,
    as_of: datetime,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """Every deal as it could be known at `as_of`: one row per opportunity created before it,
    with all its columns, in their order.

    `facts` and `spans` are `deal_facts`' and `deal_spans`' tables of `opportunities`; the
    state is `deal_states_at`'s, with `reached_index`, `history_amount` and
    `history_expected_close_date` (the latest ones the history records before as_of) and
    `closed_at_as_of`.
    """
    derived = (
        "won_at",
        "stage_at",
        "stage_entered_at_as_of",
        "reached_index",
        "history_amount",
        "history_expected_close_date",
        "state",
        "amount_at",
        "expected_close_date_at",
        "closed_at_as_of",
        "resolved_at",
    )
    # the facts are the opportunities' rows in turn: the same rows are created before as_of
    return pl.concat(
        [
            opportunities.filter(pl.col("created_at") < as_of),
            deal_states_at(facts, spans, as_of=as_of, funnel=funnel).select(derived),
        ],
        how="horizontal",
    )


# what the marts read from a deal state at any instant (the rest of the opportunity's columns
# stay behind)
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
    "reached_index",
)


class DealStatesAt:
    """Deal states and stage reaches as of any instant, masked from one derivation of every
    deal's facts, spans and reaches; the states of the last few instants asked are kept (the
    comparisons, the trend and the backtest ask for the same period ends in turn)."""

    KEPT = 3  # a period's end, the previous one's (movement, comparison), a year ago's

    def __init__(
        self,
        facts: pl.DataFrame,
        spans: pl.DataFrame,
        reaches: pl.DataFrame,
        *,
        funnel: FunnelModel,
    ):
        """`facts`, `spans` and `reaches` are `deal_facts`', `deal_spans`' and `every_reach`'
        tables."""
        self._facts, self._spans, self._reaches = facts, spans, reaches
        self._funnel = funnel
        self._recent: OrderedDict[datetime, pl.DataFrame] = OrderedDict()

    def states(self, as_of: datetime) -> pl.LazyFrame:
        """`deal_states_at` as_of, its STATE_COLUMNS."""
        if as_of not in self._recent:
            self._recent[as_of] = (
                deal_states_at(
                    self._facts.lazy(), self._spans.lazy(), as_of=as_of, funnel=self._funnel
                )
                .select(STATE_COLUMNS)
                .collect()
            )
            while len(self._recent) > self.KEPT:
                self._recent.popitem(last=False)
        self._recent.move_to_end(as_of)
        return self._recent[as_of].lazy()

    def close_date_pushes(self, as_of: datetime, deals: pl.LazyFrame) -> pl.LazyFrame:
        """Per deal of `deals` (its `opportunity_id`s), how many times its history moved its
        expected close date later before `as_of` (`times_pushed`; absent: never)."""
        asked = (
            self._facts.lazy()
            .select(DEAL, "opportunity_id")
            .join(deals.select("opportunity_id"), on="opportunity_id", how="semi")
        )
        spans = (
            self._spans.lazy()
            .join(asked.select(DEAL), on=DEAL, how="semi")
            .filter(pl.col("after") < as_of)
            .sort(DEAL, "after")
        )
        date = pl.col("history_expected_close_date")
        pushed = (date > date.shift(1)).fill_null(False)  # within each deal's spans
        return (
            spans.group_by(DEAL)
            .agg(pushed.sum().cast(pl.Int64).alias("times_pushed"))
            .filter(pl.col("times_pushed") > 0)
            .join(asked, on=DEAL)
            .select("opportunity_id", "times_pushed")
        )

    def reaches(self, as_of: datetime) -> pl.LazyFrame:
        """`stage_reaches` as_of: first_reach(o, k) known at as_of is the first reach over all
        entries, when it lies before as_of."""
        return stage_reaches(self._reaches.lazy(), as_of=as_of)
