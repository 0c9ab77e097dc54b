"""Outcome rules of staging: what an export's stage, status and close dates say about a deal.

Lost is an outcome, not a stage; an empty status is derived from the stage; a lost deal's
close time may come from its history; an open deal has no close date.
"""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.funnel_model import FunnelModel, ParseOptions
from funnel_reports.transforms.staging.mapping import SNAPSHOT
from funnel_reports.transforms.staging.parse import blank_to_null, localized, parse_stage

STAGE_FROM_HISTORY = "_stage_from_history"


def lost_stage_to_status(
    raw: pl.LazyFrame, *, funnel: FunnelModel, options: ParseOptions
) -> pl.LazyFrame:
    """Raw opportunities whose stage means lost: status lost, stage left to the history.

    Lost is an outcome, not a stage: such a deal's stage is the last one its history shows
    (see `stage_from_history`), and `_stage_from_history` marks it.
    """
    names = raw.collect_schema().names()
    if "stage" not in names:
        return raw.with_columns(pl.lit(False).alias(STAGE_FROM_HISTORY))
    lost_values = (  # each distinct stage value read once
        raw.select(pl.col("stage").unique())
        .filter(parse_stage(pl.col("stage"), funnel=funnel, options=options) == LOST)
        .collect()
        .to_series()
    )
    is_lost = pl.col("stage").is_in(lost_values.implode()) if lost_values.len() else pl.lit(False)
    status = pl.col("status") if "status" in names else pl.lit(None, dtype=pl.String)
    return raw.with_columns(
        is_lost.fill_null(False).alias(STAGE_FROM_HISTORY),
        pl.when(is_lost)
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(is_lost & blank_to_null(status).is_null())
        .then(pl.lit(LOST))
        .otherwise(status)
        .alias("status"),
    )


def stage_from_history(
    opportunities: pl.LazyFrame, history: pl.LazyFrame, *, funnel: FunnelModel
) -> pl.LazyFrame:
    """Deals marked `_stage_from_history` (their export said lost) get the last open stage
    their history shows, or the first stage without one; the mark stays for the row rules (a
    deal the export calls open or won in a lost stage), which drop it."""
    open_stages = funnel.open_ids
    index = {stage: i for i, stage in enumerate(open_stages)}
    marked = pl.col(STAGE_FROM_HISTORY).fill_null(False)
    if not opportunities.select(marked.any()).collect().item():  # no stage said lost
        return opportunities
    last = (
        history.join(  # only the marked deals' history is read
            opportunities.filter(marked).select("opportunity_id"), on="opportunity_id", how="semi"
        )
        .filter(pl.col("stage").is_in(open_stages) & pl.col("entered_at").is_not_null())
        .with_columns(pl.col("stage").replace_strict(index, return_dtype=pl.Int32).alias("_i"))
        .group_by("opportunity_id")
        .agg(pl.col("stage").sort_by("entered_at", "_i").last().alias("_last_stage"))
    )
    return (
        opportunities.join(last, on="opportunity_id", how="left", maintain_order="left")
        .with_columns(
            pl.when(marked)
            .then(pl.coalesce("_last_stage", pl.lit(funnel.ids[0])))
            .otherwise(pl.col("stage"))
            .alias("stage")
        )
        .drop("_last_stage")
    )


def loss_from_history(opportunities: pl.LazyFrame, history: pl.LazyFrame) -> pl.LazyFrame:
    """Lost deals whose close time is missing or earlier than their last stage entry take it
    from the first "lost" row of their history after that entry (Salesforce's Closed Lost rows,
    a snapshot that first shows the loss)."""
    entered = pl.col("entered_at")
    last_entry = (
        history.filter((pl.col("stage") != LOST) & entered.is_not_null())
        .group_by("opportunity_id")
        .agg(entered.max().alias("_last_entry"))
    )
    losses = (
        history.filter((pl.col("stage") == LOST) & entered.is_not_null())
        .join(last_entry, on="opportunity_id", how="left")
        .filter(pl.col("_last_entry").is_null() | (entered >= pl.col("_last_entry")))
        .group_by("opportunity_id")
        .agg(entered.min().alias("_lost_at"), pl.col("_last_entry").first())
    )
    closed = pl.col("closed_at")
    trusted = closed.is_not_null() & (
        pl.col("_last_entry").is_null() | (closed >= pl.col("_last_entry"))
    )
    return (
        opportunities.join(losses, on="opportunity_id", how="left")
        .with_columns(
            pl.when((pl.col("status") == LOST) & ~trusted)
            .then(pl.coalesce("_lost_at", closed))
            .otherwise(closed)
            .alias("closed_at")
        )
        .drop("_lost_at", "_last_entry")
    )


def derive_status(opportunities: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """Opportunities with `status` filled when empty: won when the stage is won or later, else
    open (also when the stage itself is unreadable: that row is quarantined for its stage)."""
    derived = (
        pl.when(pl.col("stage").is_in(funnel.won_ids)).then(pl.lit(WON)).otherwise(pl.lit(OPEN))
    )
    return opportunities.with_columns(pl.coalesce(pl.col("status"), derived).alias("status"))


MOVED_CREATED = "_created_moved_back"


def settle_close_dates(
    opportunities: pl.LazyFrame, *, keep_closed_before_created: bool, timezone: str = "UTC"
) -> pl.LazyFrame:
    """An open deal has no close date (CRMs often put the expected one there). A close date
    without a time (the local midnight it is read as) on the day the deal was created closes
    it at its creation, not before it (Dynamics 365's Actual Close Date beside its Created On
    with a time). With `keep_closed_before_created`, a deal closed before it was created gets
    created_at = closed_at, marked in `_created_moved_back`; otherwise validation quarantines
    it."""
    created, own = pl.col("created_at"), pl.col("closed_at")
    creation_day = created.dt.convert_time_zone(timezone).dt.date().cast(pl.Datetime("us"))
    same_day = (own < created) & (own == localized(creation_day, timezone))
    closed = pl.when(pl.col("status") != OPEN).then(pl.when(same_day).then(created).otherwise(own))
    early = closed.is_not_null() & (closed < pl.col("created_at"))
    moved = early & pl.lit(keep_closed_before_created)
    return opportunities.with_columns(
        closed.alias("closed_at"),
        pl.when(moved).then(closed).otherwise(pl.col("created_at")).alias("created_at"),
        moved.fill_null(False).alias(MOVED_CREATED),
    )


# what a snapshot history row brings beyond stage_history's own columns (mapping's
# `snapshot_history`), parsed with it
SNAPSHOT_COLUMNS: dict[str, pl.DataType] = {
    "status": pl.String(),
    "closed_at": pl.Datetime("us", "UTC"),
    "stage_entered_at": pl.Datetime("us", "UTC"),
    SNAPSHOT: pl.Datetime("us", "UTC"),
}
CLOSE_UNKNOWN = "_close_unknown"
_LATEST_CLOSED, _RUN_CLOSE = "_latest_closed", "_run_close"


def snapshot_closes(
    history: pl.LazyFrame, *, funnel: FunnelModel
) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    """Dated snapshots' history with each close dated, and per deal what its close is.

    A deal's observations (history rows with a `_snapshot`) fall into runs of open and of
    closed ones (won or lost: by status, else by a won stage or "lost"). The first row of a
    closed run is the close; its close date is the latest close date its run's rows give:
    - seen closed at its first observation: that date (else, in a won stage or "lost", its
      stage_entered_at), or the snapshot's if that date is after it; none at all: unknown;
    - seen open, then closed: that date when it lies after the earlier snapshot and not after
      the later one, else the later snapshot's.
    The close row is entered at that date (a first observation in an open stage with a
    stage_entered_at keeps it: it dates the stage, not the close); the other rows keep their
    snapshot's date. The second frame holds, per deal, `_latest_closed` (its latest
    observation is closed), `_run_close` (that close's date) and `_close_unknown` (a close
    nothing dates); None when the history has no snapshot rows.
    """
    names = history.collect_schema().names()
    if SNAPSHOT not in names:
        return history, None
    history = history.with_columns(  # a column the export lacks is null in every snapshot
        pl.lit(None, dtype=dtype).alias(c)
        for c, dtype in SNAPSHOT_COLUMNS.items()
        if c not in names
    )
    dated = dated_observations(history, funnel=funnel)
    snapshot = pl.col(SNAPSHOT)
    closes = (
        dated.filter(snapshot.is_not_null())
        .group_by("opportunity_id")
        .agg(
            pl.col("_closed").sort_by(SNAPSHOT).last().alias(_LATEST_CLOSED),
            pl.col(_RUN_CLOSE).sort_by(SNAPSHOT).last(),
            pl.col(CLOSE_UNKNOWN).any(),
        )
    )
    entered = (
        pl.when(pl.col("_close_at").is_not_null() & ~pl.col("_keeps_entry"))
        .then(pl.col("_close_at"))
        .otherwise(pl.col("entered_at"))
    )
    history = dated.with_columns(
        entered.alias("entered_at"),
        pl.when("_won_in_open_stage")
        .then(pl.lit(funnel.won_stage))
        .otherwise(pl.col("stage"))
        .alias("stage"),
    ).drop(*OBSERVATION_COLUMNS, _RUN_CLOSE, CLOSE_UNKNOWN, *SNAPSHOT_COLUMNS)
    return history, closes


# the working columns of `dated_observations`, dropped once the closes are dated
OBSERVATION_COLUMNS = (
    "_closed",
    "_earlier_closed",
    "_earlier_snapshot",
    "_run",
    "_close_at",
    "_keeps_entry",
    "_won_in_open_stage",
)


def closing_status(stage: pl.Expr, funnel: FunnelModel) -> pl.Expr:
    """lost for the stage "lost", won for a won stage, else null."""
    return (
        pl.when(stage == LOST)
        .then(pl.lit(LOST))
        .when(stage.is_in(funnel.won_ids))
        .then(pl.lit(WON))
    )


def dated_observations(history: pl.LazyFrame, *, funnel: FunnelModel) -> pl.LazyFrame:
    """The snapshot rows of `snapshot_closes` with their runs and closes: `_closed`, the
    previous observation's (`_earlier_closed`, `_earlier_snapshot`), `_run`, `_close_at` (the
    close's date, on a close row), `_RUN_CLOSE` (its run's), `CLOSE_UNKNOWN`,
    `_won_in_open_stage` (Pipedrive's won deal in the open stage it keeps) and `_keeps_entry`
    (a first observation in an open stage keeps its stage_entered_at)."""
    stage, snapshot = pl.col("stage"), pl.col(SNAPSHOT)
    closing_stage = stage.is_in(funnel.won_ids) | (stage == LOST)
    status = pl.coalesce("status", closing_status(stage, funnel))
    deal = ["opportunity_id", snapshot.is_not_null()]  # a history file's rows stay apart

    def earlier(expr: pl.Expr) -> pl.Expr:
        return expr.shift(1).over(deal, order_by=SNAPSHOT)

    closed = pl.col("_closed")
    own = pl.col("closed_at").drop_nulls().last().over([*deal, "_run"], order_by=SNAPSHOT)
    first_sight = pl.col("_earlier_snapshot").is_null()
    own_first = pl.coalesce(own, pl.when(closing_stage).then(pl.col("stage_entered_at")))
    between = (own > pl.col("_earlier_snapshot")) & (own <= snapshot)
    is_close = closed & ~pl.col("_earlier_closed").fill_null(False)
    close_at = pl.when(is_close).then(
        pl.when(first_sight)
        .then(pl.when(own_first > snapshot).then(snapshot).otherwise(own_first))
        .when(between)
        .then(own)
        .otherwise(snapshot)
    )
    # a deal won from the open stage it keeps (Pipedrive): its closed rows are in the won stage
    won_in_open_stage = closed & (status == WON) & ~stage.is_in(funnel.won_ids)
    keeps_entry = (
        first_sight & ~closing_stage & ~won_in_open_stage & pl.col("stage_entered_at").is_not_null()
    )
    return (
        history.with_columns(
            (status.is_in([WON, LOST]).fill_null(False) & snapshot.is_not_null()).alias("_closed"),
        )
        .with_columns(
            earlier(closed).alias("_earlier_closed"),
            earlier(snapshot).alias("_earlier_snapshot"),
        )
        .with_columns(
            (closed != pl.col("_earlier_closed"))
            .fill_null(True)
            .cum_sum()
            .over(deal, order_by=SNAPSHOT)
            .alias("_run")
        )
        .with_columns(
            close_at.alias("_close_at"),
            (is_close & first_sight & own_first.is_null()).alias(CLOSE_UNKNOWN),
        )
        .with_columns(
            pl.col("_close_at").first().over([*deal, "_run"], order_by=SNAPSHOT).alias(_RUN_CLOSE),
            won_in_open_stage.alias("_won_in_open_stage"),
            keeps_entry.alias("_keeps_entry"),
        )
    )


def snapshot_close_dates(opportunities: pl.LazyFrame, closes: pl.LazyFrame | None) -> pl.LazyFrame:
    """Opportunities whose latest snapshot shows them closed take the close date
    `snapshot_closes` gave (null when nothing dates it); `_close_unknown` marks the deals
    with a close nothing dates."""
    if closes is None:
        return opportunities.with_columns(pl.lit(False).alias(CLOSE_UNKNOWN))
    return (
        opportunities.join(closes, on="opportunity_id", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col(_LATEST_CLOSED).fill_null(False))
            .then(pl.col(_RUN_CLOSE))
            .otherwise(pl.col("closed_at"))
            .alias("closed_at"),
            pl.col(CLOSE_UNKNOWN).fill_null(False),
        )
        .drop(_LATEST_CLOSED, _RUN_CLOSE)
    )
