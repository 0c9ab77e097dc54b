"""Outcome rules of staging: a stage that says lost is an outcome, an empty status comes from
the stage, a lost deal's close may come from its history, an open deal has no close date,
and dated snapshots date each close. Times are UTC unless a test says otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from funnel_reports.transforms.funnel_model import FunnelModel, ParseOptions, RunSettings, Stage
from funnel_reports.transforms.staging.mapping import SNAPSHOT
from funnel_reports.transforms.staging.outcomes import (
    CLOSE_UNKNOWN,
    MOVED_CREATED,
    STAGE_FROM_HISTORY,
    closing_status,
    derive_status,
    loss_from_history,
    lost_stage_to_status,
    settle_close_dates,
    snapshot_close_dates,
    snapshot_closes,
    stage_from_history,
)

FUNNEL = RunSettings().funnel  # lead, qualified, proposal, negotiation, won, retention
UTC_TIME = pl.Datetime("us", "UTC")


def at(text: str | None) -> datetime | None:
    """A UTC instant: "2024-06-01" (midnight) or "2024-06-01 09:30"."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def frame(rows: list[dict[str, Any]], times: tuple[str, ...]) -> pl.LazyFrame:
    """Rows of strings, the `times` columns as UTC instants."""
    columns = list(rows[0])
    data = {c: [at(r[c]) if c in times else r[c] for r in rows] for c in columns}
    schema = {c: UTC_TIME if c in times else pl.String for c in columns}
    return pl.LazyFrame(data, schema=schema)


# --- a stage that says lost


def lost_stage(raw: dict[str, list[str | None]], **stages: str) -> pl.DataFrame:
    options = ParseOptions(stages=stages)
    rows = pl.LazyFrame(raw, schema=dict.fromkeys(raw, pl.String))
    return lost_stage_to_status(rows, funnel=FUNNEL, options=options).collect()


def test_a_stage_that_reads_as_lost_makes_the_status_lost_and_leaves_the_stage_open() -> None:
    result = lost_stage(
        {"stage": ["Closed Lost", " lost ", "proposal"], "status": [None, "", None]},
        **{"Closed Lost": "lost"},
    )
    assert result.rows() == [
        (None, "lost", True),
        (None, "lost", True),
        ("proposal", None, False),
    ]
    assert result.columns == ["stage", "status", STAGE_FROM_HISTORY]


def test_a_lost_stage_without_a_status_column_gives_one() -> None:
    result = lost_stage({"stage": ["lost", "lead"]})
    assert result.select("stage", "status").rows() == [(None, "lost"), ("lead", None)]


def test_rows_without_a_stage_column_take_no_stage_from_the_history() -> None:
    result = lost_stage({"opportunity_id": ["A"]})
    assert result.rows() == [("A", False)]


def test_an_unreadable_stage_is_no_loss() -> None:
    result = lost_stage({"stage": ["Closed Lost", None], "status": [None, None]})
    assert result.rows() == [("Closed Lost", None, False), (None, None, False)]


# --- the stage of a deal whose export said lost


def marked(*deals: tuple[str, str | None, bool]) -> pl.LazyFrame:
    """Opportunities: (id, stage, marked `_stage_from_history`)."""
    return pl.LazyFrame(
        {
            "opportunity_id": [d[0] for d in deals],
            "stage": [d[1] for d in deals],
            STAGE_FROM_HISTORY: [d[2] for d in deals],
        },
        schema={"opportunity_id": pl.String, "stage": pl.String, STAGE_FROM_HISTORY: pl.Boolean},
    )


def entries(*rows: tuple[str, str, str | None]) -> pl.LazyFrame:
    """History rows: (id, stage, entered_at)."""
    return frame(
        [{"opportunity_id": r[0], "stage": r[1], "entered_at": r[2]} for r in rows],
        ("entered_at",),
    )


def staged(opportunities: pl.LazyFrame, history: pl.LazyFrame) -> list[tuple[Any, ...]]:
    """(id, stage) of each deal; the mark stays for the row rules (`test_the_mark_stays`)."""
    result = stage_from_history(opportunities, history, funnel=FUNNEL).collect()
    return result.select("opportunity_id", "stage").rows()


def test_a_deal_said_lost_takes_the_last_open_stage_its_history_shows() -> None:
    history = entries(
        ("A", "lead", "2024-05-01"),
        ("A", "proposal", "2024-05-20"),
        ("A", "qualified", "2024-05-10"),
        ("A", "lost", "2024-06-01"),  # lost is no stage
        ("A", "negotiation", None),  # an entry without a date says nothing
    )
    assert staged(marked(("A", None, True)), history) == [("A", "proposal")]


def test_two_entries_at_one_instant_leave_the_deal_in_the_later_stage() -> None:
    history = entries(("A", "negotiation", "2024-05-10"), ("A", "qualified", "2024-05-10"))
    assert staged(marked(("A", None, True)), history) == [("A", "negotiation")]


def test_a_deal_said_lost_after_a_win_is_in_the_last_open_stage_before_it() -> None:
    history = entries(("A", "proposal", "2024-05-10"), ("A", "won", "2024-05-20"))
    assert staged(marked(("A", None, True)), history) == [("A", "proposal")]


def test_a_deal_said_lost_without_history_is_in_the_first_stage() -> None:
    assert staged(marked(("A", None, True)), entries(("B", "proposal", "2024-05-10"))) == [
        ("A", "lead")
    ]


def test_a_deal_not_marked_keeps_its_stage_whatever_its_history() -> None:
    history = entries(("A", "proposal", "2024-05-10"))
    deals = marked(("A", "negotiation", False), ("B", None, True))
    assert staged(deals, history) == [("A", "negotiation"), ("B", "lead")]


def test_without_any_deal_said_lost_every_stage_stays() -> None:
    deals = marked(("A", "negotiation", False))
    assert staged(deals, entries(("A", "lead", "2024-05-10"))) == [("A", "negotiation")]


def test_the_mark_stays_for_the_row_rules() -> None:
    """A deal said lost whose status is open or won is a contradiction the rules quarantine
    (`staging.rules`): they read the mark, and the checks drop it after them."""
    deals = marked(("A", None, True), ("B", "lead", False))
    result = stage_from_history(deals, entries(("A", "lead", "2024-05-10")), funnel=FUNNEL)
    assert sorted(result.collect().rows()) == [("A", "lead", True), ("B", "lead", False)]


# --- a lost deal's close from its history


def deals(*rows: tuple[str, str, str | None]) -> pl.LazyFrame:
    """Opportunities: (id, status, closed_at)."""
    return frame(
        [{"opportunity_id": r[0], "status": r[1], "closed_at": r[2]} for r in rows],
        ("closed_at",),
    )


def closes(opportunities: pl.LazyFrame, history: pl.LazyFrame) -> dict[str, datetime | None]:
    result = loss_from_history(opportunities, history).collect()
    assert result.columns == ["opportunity_id", "status", "closed_at"]
    return dict(result.select("opportunity_id", "closed_at").rows())


def test_a_lost_deal_without_a_close_takes_its_history_s_loss() -> None:
    history = entries(("A", "proposal", "2024-05-10"), ("A", "lost", "2024-06-02"))
    assert closes(deals(("A", "lost", None)), history) == {"A": at("2024-06-02")}


def test_a_lost_deal_closed_before_its_last_entry_takes_its_history_s_loss() -> None:
    history = entries(("A", "proposal", "2024-05-10"), ("A", "lost", "2024-06-02"))
    assert closes(deals(("A", "lost", "2024-05-01")), history) == {"A": at("2024-06-02")}


def test_a_lost_deal_closed_after_its_last_entry_keeps_its_close() -> None:
    history = entries(("A", "proposal", "2024-05-10"), ("A", "lost", "2024-06-02"))
    assert closes(deals(("A", "lost", "2024-05-10")), history) == {"A": at("2024-05-10")}


def test_the_loss_is_the_first_lost_row_after_the_last_other_entry() -> None:
    """Lost on 05-01, back in proposal on 05-10, lost on 05-20 and again noted on 05-25."""
    history = entries(
        ("A", "lost", "2024-05-01"),
        ("A", "proposal", "2024-05-10"),
        ("A", "lost", "2024-05-25"),
        ("A", "lost", "2024-05-20"),
    )
    assert closes(deals(("A", "lost", None)), history) == {"A": at("2024-05-20")}


def test_a_history_of_losses_alone_gives_the_first_loss() -> None:
    history = entries(("A", "lost", "2024-05-25"), ("A", "lost", "2024-05-20"))
    assert closes(deals(("A", "lost", None)), history) == {"A": at("2024-05-20")}


def test_a_lost_deal_with_no_loss_after_its_last_entry_keeps_its_own_close() -> None:
    history = entries(("A", "lost", "2024-05-01"), ("A", "proposal", "2024-05-10"))
    assert closes(deals(("A", "lost", "2024-05-05")), history) == {"A": at("2024-05-05")}


def test_a_deal_that_is_not_lost_keeps_its_close_beside_a_lost_row() -> None:
    history = entries(("W", "proposal", "2024-05-10"), ("W", "lost", "2024-06-02"))
    result = closes(deals(("W", "won", "2024-05-01"), ("O", "open", None)), history)
    assert result == {"W": at("2024-05-01"), "O": None}


# --- a status from the stage


def test_an_empty_status_is_won_in_a_won_stage_or_later_and_open_before() -> None:
    rows = pl.LazyFrame(
        {"stage": ["won", "retention", "negotiation", None], "status": [None] * 4},
        schema={"stage": pl.String, "status": pl.String},
    )
    result = derive_status(rows, funnel=FUNNEL).collect()
    assert result["status"].to_list() == ["won", "won", "open", "open"]


def test_a_given_status_is_kept() -> None:
    rows = pl.LazyFrame({"stage": ["won", "lead"], "status": ["lost", "won"]})
    assert derive_status(rows, funnel=FUNNEL).collect()["status"].to_list() == ["lost", "won"]


def test_a_status_follows_the_funnel_s_own_won_stage() -> None:
    funnel = FunnelModel((Stage("a", "A", "A"), Stage("signed", "S", "S")), "signed")
    rows = pl.LazyFrame({"stage": ["signed", "a"], "status": [None, None]})
    result = derive_status(rows.cast({"status": pl.String}), funnel=funnel).collect()
    assert result["status"].to_list() == ["won", "open"]


# --- close dates settled


def settled(
    rows: Sequence[tuple[str, str, str | None]], *, keep: bool, timezone: str = "UTC"
) -> list[tuple[Any, ...]]:
    """(status, created_at, closed_at) rows -> (created_at, closed_at, moved back)."""
    opportunities = frame(
        [{"status": r[0], "created_at": r[1], "closed_at": r[2]} for r in rows],
        ("created_at", "closed_at"),
    )
    result = settle_close_dates(
        opportunities, keep_closed_before_created=keep, timezone=timezone
    ).collect()
    return result.select("created_at", "closed_at", MOVED_CREATED).rows()


def test_an_open_deal_has_no_close_date() -> None:
    """CRMs often put the expected close date there."""
    assert settled([("open", "2024-05-01", "2024-07-15")], keep=False) == [
        (at("2024-05-01"), None, False)
    ]


def test_a_deal_closed_after_its_creation_keeps_both_dates() -> None:
    assert settled([("won", "2024-05-01", "2024-06-15")], keep=True) == [
        (at("2024-05-01"), at("2024-06-15"), False)
    ]


def test_a_bare_close_date_on_the_creation_day_closes_at_the_creation() -> None:
    """Created 2024-06-10 09:30 in Shanghai (01:30 UTC); closed "2024-06-10", read as the local
    midnight (06-09 16:00 UTC): closed at the creation, not before it."""
    rows = [("won", "2024-06-10 01:30", "2024-06-09 16:00")]
    assert settled(rows, keep=False, timezone="Asia/Shanghai") == [
        (at("2024-06-10 01:30"), at("2024-06-10 01:30"), False)
    ]


def test_a_bare_close_date_on_the_creation_day_is_read_in_the_run_s_zone() -> None:
    """The same instants in UTC: 06-09 16:00 is no midnight there, so the close stays before
    the creation (and quarantined by validation)."""
    rows = [("won", "2024-06-10 01:30", "2024-06-09 16:00")]
    assert settled(rows, keep=False) == [(at("2024-06-10 01:30"), at("2024-06-09 16:00"), False)]


def test_a_deal_closed_days_before_its_creation_is_left_to_validation() -> None:
    assert settled([("lost", "2024-06-10", "2024-06-01")], keep=False) == [
        (at("2024-06-10"), at("2024-06-01"), False)
    ]


def test_a_deal_closed_before_its_creation_can_be_created_at_its_close() -> None:
    assert settled([("lost", "2024-06-10", "2024-06-01")], keep=True) == [
        (at("2024-06-01"), at("2024-06-01"), True)
    ]


def test_a_close_earlier_on_the_creation_day_with_a_time_is_before_it() -> None:
    """10:00 is not the day's midnight: a close at a time before the creation is early."""
    assert settled([("won", "2024-06-10 12:00", "2024-06-10 10:00")], keep=True) == [
        (at("2024-06-10 10:00"), at("2024-06-10 10:00"), True)
    ]


def test_a_closed_deal_without_a_close_date_is_not_moved() -> None:
    assert settled([("won", "2024-06-10", None)], keep=True) == [(at("2024-06-10"), None, False)]


# --- closes of dated snapshots


def test_a_closing_status_is_lost_for_lost_won_for_a_won_stage_and_none_otherwise() -> None:
    stages = pl.DataFrame({"stage": ["lost", "won", "retention", "proposal", None]})
    result = stages.select(closing_status(pl.col("stage"), FUNNEL)).to_series().to_list()
    assert result == ["lost", "won", "won", None, None]


def observed(*rows: dict[str, Any]) -> pl.LazyFrame:
    """Snapshot history rows as parsed: opportunity_id, stage, entered_at (the snapshot's
    date unless given: `snapshot_history` enters a first observation at its stage date),
    status, closed_at, stage_entered_at and _snapshot."""
    filled = [
        {
            "opportunity_id": r["id"],
            "stage": r["stage"],
            "entered_at": r.get("entered_at", r.get("snapshot")),
            "status": r.get("status"),
            "closed_at": r.get("closed_at"),
            "stage_entered_at": r.get("stage_entered_at"),
            SNAPSHOT: r.get("snapshot"),
        }
        for r in rows
    ]
    return frame(filled, ("entered_at", "closed_at", "stage_entered_at", SNAPSHOT))


def dated(history: pl.LazyFrame) -> tuple[list[tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """The history rows (id, stage, entered_at), and per deal (latest closed, its close,
    close unknown)."""
    rows, per_deal = snapshot_closes(history, funnel=FUNNEL)
    assert per_deal is not None
    result = rows.collect()
    assert result.columns == ["opportunity_id", "stage", "entered_at"]
    deal_closes = per_deal.collect().sort("opportunity_id")
    return result.rows(), {r[0]: r[1:] for r in deal_closes.rows()}


def test_a_history_without_snapshots_has_no_closes_to_date() -> None:
    history = entries(("A", "lead", "2024-05-01"))
    rows, per_deal = snapshot_closes(history, funnel=FUNNEL)
    assert per_deal is None
    assert rows.collect().equals(history.collect())


def test_a_close_between_two_snapshots_is_dated_by_its_close_date() -> None:
    history = observed(
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-05-31"},
        {"id": "A", "stage": "won", "closed_at": "2024-06-15", "snapshot": "2024-06-30"},
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "proposal", at("2024-05-31")), ("A", "won", at("2024-06-15"))]
    assert per_deal == {"A": (True, at("2024-06-15"), False)}


@pytest.mark.parametrize("closed_at", ["2024-05-20", "2024-05-31", "2024-07-05"])
def test_a_close_date_outside_the_two_snapshots_gives_way_to_the_later_one(closed_at: str) -> None:
    """Before (or on) the earlier snapshot, which saw the deal open, or after the later one."""
    history = observed(
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-05-31"},
        {
            "id": "A",
            "stage": "proposal",
            "status": "lost",
            "closed_at": closed_at,
            "snapshot": "2024-06-30",
        },
    )
    rows, per_deal = dated(history)
    assert rows[1] == ("A", "proposal", at("2024-06-30"))
    assert per_deal == {"A": (True, at("2024-06-30"), False)}


def test_a_deal_closed_before_its_first_snapshot_closes_at_its_own_date() -> None:
    history = observed(
        {"id": "A", "stage": "won", "closed_at": "2024-04-10", "snapshot": "2024-05-31"},
        {"id": "A", "stage": "won", "closed_at": "2024-04-10", "snapshot": "2024-06-30"},
    )
    rows, per_deal = dated(history)
    # the close is the first closed row; the second, still closed, keeps its snapshot's date
    assert rows == [("A", "won", at("2024-04-10")), ("A", "won", at("2024-06-30"))]
    assert per_deal == {"A": (True, at("2024-04-10"), False)}


def test_a_first_seen_close_dated_after_its_snapshot_closes_at_the_snapshot() -> None:
    history = observed(
        {"id": "A", "stage": "won", "closed_at": "2024-06-05", "snapshot": "2024-05-31"},
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "won", at("2024-05-31"))]
    assert per_deal == {"A": (True, at("2024-05-31"), False)}


def test_a_first_seen_win_without_a_close_date_closes_when_it_entered_the_won_stage() -> None:
    history = observed(
        {
            "id": "A",
            "stage": "won",
            "stage_entered_at": "2024-04-01",
            "entered_at": "2024-04-01",
            "snapshot": "2024-05-31",
        },
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "won", at("2024-04-01"))]
    assert per_deal == {"A": (True, at("2024-04-01"), False)}


def test_a_first_seen_close_nothing_dates_is_unknown() -> None:
    history = observed(
        {"id": "A", "stage": "lost", "snapshot": "2024-05-31"},
        {"id": "B", "stage": "proposal", "status": "lost", "snapshot": "2024-05-31"},
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "lost", at("2024-05-31")), ("B", "proposal", at("2024-05-31"))]
    assert per_deal == {"A": (True, None, True), "B": (True, None, True)}


def test_a_first_seen_loss_in_an_open_stage_keeps_that_stage_s_date() -> None:
    """Its stage_entered_at dates the stage, not the close: the row stays entered then, and
    the close is its close date."""
    history = observed(
        {
            "id": "A",
            "stage": "proposal",
            "status": "lost",
            "closed_at": "2024-05-20",
            "stage_entered_at": "2024-04-01",
            "entered_at": "2024-04-01",
            "snapshot": "2024-05-31",
        },
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "proposal", at("2024-04-01"))]
    assert per_deal == {"A": (True, at("2024-05-20"), False)}


def test_a_first_seen_loss_in_an_open_stage_is_not_dated_by_that_stage_s_date() -> None:
    """An open stage's stage_entered_at is no close date: with no other, the close is
    unknown."""
    history = observed(
        {
            "id": "A",
            "stage": "proposal",
            "status": "lost",
            "stage_entered_at": "2024-04-01",
            "snapshot": "2024-05-31",
        },
    )
    _, per_deal = dated(history)
    assert per_deal == {"A": (True, None, True)}


def test_a_deal_won_in_the_open_stage_it_keeps_is_in_the_won_stage_once_closed() -> None:
    history = observed(
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-05-31"},
        {
            "id": "A",
            "stage": "proposal",
            "status": "won",
            "closed_at": "2024-06-12",
            "snapshot": "2024-06-30",
        },
    )
    rows, _ = dated(history)
    assert rows == [("A", "proposal", at("2024-05-31")), ("A", "won", at("2024-06-12"))]


def test_a_deal_reopened_and_closed_again_closes_in_its_latest_run() -> None:
    history = observed(
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-04-30"},
        {"id": "A", "stage": "lost", "closed_at": "2024-05-20", "snapshot": "2024-05-31"},
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-06-30"},
        {"id": "A", "stage": "won", "closed_at": "2024-07-10", "snapshot": "2024-07-31"},
    )
    rows, per_deal = dated(history)
    assert [r[2] for r in rows] == [
        at("2024-04-30"),
        at("2024-05-20"),
        at("2024-06-30"),
        at("2024-07-10"),
    ]
    assert per_deal == {"A": (True, at("2024-07-10"), False)}


def test_a_deal_open_at_its_latest_snapshot_is_not_closed() -> None:
    history = observed(
        {"id": "A", "stage": "lost", "closed_at": "2024-05-20", "snapshot": "2024-05-31"},
        {"id": "A", "stage": "proposal", "status": "open", "snapshot": "2024-06-30"},
    )
    _, per_deal = dated(history)
    assert per_deal == {"A": (False, None, False)}


def test_rows_of_a_history_file_beside_the_snapshots_keep_their_dates() -> None:
    history = observed(
        {"id": "A", "stage": "won", "closed_at": "2024-04-10", "snapshot": "2024-05-31"},
        {"id": "A", "stage": "proposal", "entered_at": "2024-03-01"},  # a history file's row
    )
    rows, per_deal = dated(history)
    assert rows == [("A", "won", at("2024-04-10")), ("A", "proposal", at("2024-03-01"))]
    assert per_deal == {"A": (True, at("2024-04-10"), False)}


def test_a_snapshot_history_without_status_or_close_columns_reads_the_stage() -> None:
    history = frame(
        [
            {
                "opportunity_id": "A",
                "stage": "lead",
                "entered_at": "2024-05-31",
                SNAPSHOT: "2024-05-31",
            },
            {
                "opportunity_id": "A",
                "stage": "won",
                "entered_at": "2024-06-30",
                SNAPSHOT: "2024-06-30",
            },
        ],
        ("entered_at", SNAPSHOT),
    )
    rows, per_deal = dated(history)
    assert rows[1] == ("A", "won", at("2024-06-30"))  # no close date: the later snapshot's
    assert per_deal == {"A": (True, at("2024-06-30"), False)}


def test_opportunities_closed_at_their_latest_snapshot_take_the_dated_close() -> None:
    opportunities = deals(
        ("A", "won", "2024-07-02"), ("B", "open", None), ("C", "lost", None), ("D", "open", None)
    )
    per_deal = pl.LazyFrame(
        {
            "opportunity_id": ["A", "B", "C"],
            "_latest_closed": [True, False, True],
            "_run_close": [at("2024-06-15"), None, None],
            CLOSE_UNKNOWN: [False, False, True],
        },
        schema_overrides={"_run_close": UTC_TIME},
    )
    result = snapshot_close_dates(opportunities, per_deal).collect()
    assert result.columns == ["opportunity_id", "status", "closed_at", CLOSE_UNKNOWN]
    assert result.select("opportunity_id", "closed_at", CLOSE_UNKNOWN).rows() == [
        ("A", at("2024-06-15"), False),
        ("B", None, False),
        ("C", None, True),
        ("D", None, False),  # in no snapshot's closes: as it was
    ]


def test_opportunities_without_snapshots_have_no_unknown_close() -> None:
    result = snapshot_close_dates(deals(("A", "won", "2024-06-01")), None).collect()
    assert result.rows() == [("A", "won", at("2024-06-01"), False)]
