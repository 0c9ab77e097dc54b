"""Row rules that need the funnel or another table: each gives (`_row`, reason) for the rows
that break it, one row per reason; the rows themselves are quarantined elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from funnel_reports.schemas import reasons
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.outcomes import CLOSE_UNKNOWN, STAGE_FROM_HISTORY
from funnel_reports.transforms.staging.rules import (
    history_after_loss_reasons,
    history_before_created_reasons,
    opportunity_rule_reasons,
    orphan_reasons,
)

FUNNEL = RunSettings().funnel  # lead, qualified, proposal, negotiation, won, retention
TIMES = ("created_at", "closed_at", "stage_entered_at", "entered_at")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def table(*rows: dict[str, Any]) -> pl.LazyFrame:
    """Rows numbered in `_row` from 1; the time columns as UTC instants."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    data: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in columns}
    schema = {
        c: pl.Datetime("us", "UTC")
        if c in TIMES
        else pl.Boolean
        if c in (CLOSE_UNKNOWN, STAGE_FROM_HISTORY)
        else pl.String
        for c in columns
    }
    for c in columns:
        if c in TIMES:
            data[c] = [None if v is None else at(v) for v in data[c]]
    frame = pl.LazyFrame(data, schema=schema).with_row_index("_row", offset=1)
    return frame.with_columns(pl.col("_row").cast(pl.Int64))


def deal(oid: str, stage: str, status: str, **fields: str | bool | None) -> dict[str, Any]:
    return {
        "opportunity_id": oid,
        "stage": stage,
        "status": status,
        "closed_at": None,
        "stage_entered_at": None,
        **fields,
    }


def history(*rows: tuple[str, str, str | None]) -> pl.LazyFrame:
    """(opportunity_id, stage, entered_at) rows."""
    if not rows:
        return pl.LazyFrame(
            schema={
                "opportunity_id": pl.String,
                "stage": pl.String,
                "entered_at": pl.Datetime("us", "UTC"),
            }
        )
    return table(*[{"opportunity_id": r[0], "stage": r[1], "entered_at": r[2]} for r in rows])


def found(reasons_frame: pl.LazyFrame) -> list[tuple[int, str]]:
    result = reasons_frame.collect()
    assert result.columns == ["_row", "reason"]
    return sorted(result.rows())


def opportunity_reasons(
    *deals: dict[str, Any], steps: pl.LazyFrame | None = None
) -> list[tuple[int, str]]:
    return found(
        opportunity_rule_reasons(
            table(*deals), history() if steps is None else steps, funnel=FUNNEL
        )
    )


WON_WITHOUT_CLOSE = "closed_at: missing for a won deal, and no entry into the won stage"


# --- opportunities


def test_an_open_deal_in_a_won_stage_or_after_it_is_a_contradiction() -> None:
    assert opportunity_reasons(
        deal("A", "won", "open"), deal("B", "retention", "open"), deal("C", "proposal", "open")
    ) == [
        (1, "status: 'open' but the stage 'won' is a won stage"),
        (2, "status: 'open' but the stage 'retention' is a won stage"),
    ]


def test_a_deal_the_export_said_lost_cannot_be_open_or_won() -> None:
    """Its stage said lost (marked; the stage is the one its history gives): a status of
    open or won contradicts it, lost does not, and an unmarked deal is not concerned."""
    said_lost = {STAGE_FROM_HISTORY: True}
    assert opportunity_reasons(
        deal("A", "proposal", "open", **said_lost),
        deal("B", "proposal", "won", closed_at="2024-06-01", **said_lost),
        deal("C", "proposal", "lost", closed_at="2024-06-01", **said_lost),
        deal("D", "proposal", "open", **{STAGE_FROM_HISTORY: False}),
    ) == [
        (1, "status: 'open' but the export's stage says the deal was lost"),
        (2, "status: 'won' but the export's stage says the deal was lost"),
    ]


def test_a_lost_deal_in_a_won_stage_may_be_a_reversed_win() -> None:
    assert opportunity_reasons(deal("A", "won", "lost", closed_at="2024-06-01")) == []


def test_a_won_deal_without_a_close_in_an_open_stage_has_no_date_of_winning() -> None:
    assert opportunity_reasons(deal("A", "negotiation", "won")) == [(1, WON_WITHOUT_CLOSE)]


def test_a_won_deal_without_a_close_in_the_won_stage_is_won_when_it_entered_it() -> None:
    assert opportunity_reasons(deal("A", "won", "won", stage_entered_at="2024-06-01")) == []


def test_a_won_deal_in_the_won_stage_without_a_stage_date_or_close_is_undated() -> None:
    assert opportunity_reasons(deal("A", "won", "won")) == [(1, WON_WITHOUT_CLOSE)]


def test_an_open_stage_s_date_does_not_date_a_win() -> None:
    assert opportunity_reasons(deal("A", "negotiation", "won", stage_entered_at="2024-06-01")) == [
        (1, WON_WITHOUT_CLOSE)
    ]


def test_a_won_deal_without_a_close_is_dated_by_a_won_entry_of_its_history() -> None:
    """An entry into won or a later stage dates the win; one without a date does not, nor
    another deal's."""
    steps = history(
        ("A", "retention", "2024-06-01"), ("B", "won", None), ("C", "negotiation", "2024-06-01")
    )
    assert opportunity_reasons(
        deal("A", "negotiation", "won"),
        deal("B", "negotiation", "won"),
        deal("C", "negotiation", "won"),
        deal("D", "negotiation", "won"),
        steps=steps,
    ) == [(2, WON_WITHOUT_CLOSE), (3, WON_WITHOUT_CLOSE), (4, WON_WITHOUT_CLOSE)]


def test_a_won_deal_with_a_close_needs_nothing_more() -> None:
    assert opportunity_reasons(deal("A", "negotiation", "won", closed_at="2024-06-01")) == []


def test_a_snapshot_close_nothing_dates_is_a_reason() -> None:
    assert opportunity_reasons(
        deal("A", "proposal", "lost", **{CLOSE_UNKNOWN: True}),
        deal("B", "proposal", "lost", closed_at="2024-06-01", **{CLOSE_UNKNOWN: False}),
    ) == [(1, reasons.CLOSED_DATE_UNKNOWN)]


def test_each_rule_a_row_breaks_is_a_reason_of_its_own() -> None:
    assert opportunity_reasons(deal("A", "won", "open", **{CLOSE_UNKNOWN: True})) == [
        (1, reasons.CLOSED_DATE_UNKNOWN),
        (1, "status: 'open' but the stage 'won' is a won stage"),
    ]


# --- children of unknown or quarantined deals


def children(*ids: str | None) -> pl.LazyFrame:
    return table(*[{"opportunity_id": i} for i in ids])


def ids(*values: str) -> pl.LazyFrame:
    return pl.LazyFrame({"opportunity_id": list(values)}, schema={"opportunity_id": pl.String})


def test_a_child_of_an_unknown_deal_says_so() -> None:
    assert found(orphan_reasons(children("A", "X"), ids("A"), ids())) == [
        (2, "opportunity_id: 'X' is not in opportunities")
    ]


def test_a_child_of_a_quarantined_deal_says_so() -> None:
    assert found(orphan_reasons(children("Q", "A"), ids("A"), ids("Q", "Q"))) == [
        (1, "opportunity_id: 'Q' is quarantined in opportunities")
    ]


def test_a_child_without_a_deal_id_is_no_orphan() -> None:
    """Its missing id is a reason of its own (validation's)."""
    assert found(orphan_reasons(children(None), ids("A"), ids())) == []


# --- history entries against their deal


def lost_deals(*rows: tuple[str, str, str, str | None]) -> pl.LazyFrame:
    """(opportunity_id, stage, status, closed_at) rows."""
    return table(
        *[{"opportunity_id": r[0], "stage": r[1], "status": r[2], "closed_at": r[3]} for r in rows]
    )


def test_an_entry_into_another_stage_after_the_loss_is_a_contradiction() -> None:
    steps = history(("A", "negotiation", "2024-06-02"))
    valid = lost_deals(("A", "proposal", "lost", "2024-06-01"))
    assert found(history_after_loss_reasons(steps, valid)) == [
        (1, "entered_at: after the deal was lost (closed_at)")
    ]


def test_the_stage_it_was_lost_from_or_the_loss_seen_later_are_no_contradiction() -> None:
    steps = history(("A", "proposal", "2024-06-05"), ("A", "lost", "2024-06-09"))
    valid = lost_deals(("A", "proposal", "lost", "2024-06-01"))
    assert found(history_after_loss_reasons(steps, valid)) == []


def test_an_entry_at_the_loss_or_before_it_is_no_contradiction() -> None:
    steps = history(("A", "negotiation", "2024-06-01"), ("A", "qualified", "2024-05-01"))
    valid = lost_deals(("A", "proposal", "lost", "2024-06-01"))
    assert found(history_after_loss_reasons(steps, valid)) == []


def test_entries_after_the_close_of_a_deal_not_lost_are_no_contradiction() -> None:
    steps = history(("W", "retention", "2024-07-01"), ("O", "proposal", "2024-07-01"))
    valid = lost_deals(("W", "won", "won", "2024-06-01"), ("O", "lead", "open", None))
    assert found(history_after_loss_reasons(steps, valid)) == []


def created(*rows: tuple[str, str]) -> pl.LazyFrame:
    return table(*[{"opportunity_id": r[0], "created_at": r[1]} for r in rows])


def test_an_entry_the_day_before_the_deal_was_created_is_a_contradiction() -> None:
    steps = history(("A", "lead", "2024-06-09 23:59"))
    assert found(
        history_before_created_reasons(steps, created(("A", "2024-06-10 09:30")), timezone="UTC")
    ) == [(1, "entered_at: before its deal was created (created_at)")]


def test_an_entry_earlier_on_the_creation_day_is_no_contradiction() -> None:
    """A bare date (midnight) or an earlier time of the same day."""
    steps = history(("A", "lead", "2024-06-10"), ("A", "qualified", "2024-06-10 08:00"))
    assert (
        found(
            history_before_created_reasons(
                steps, created(("A", "2024-06-10 09:30")), timezone="UTC"
            )
        )
        == []
    )


def test_the_creation_day_is_the_local_one() -> None:
    """Created at 01:30 UTC on 06-10, 09:30 in Shanghai: 06-09 16:00 UTC is the local
    midnight of 06-10 (no contradiction there), 15:59 is the day before (one in Shanghai,
    and in UTC too, where the day starts at 06-10 00:00)."""
    steps = history(("A", "lead", "2024-06-09 16:00"), ("A", "qualified", "2024-06-09 15:59"))
    deals = created(("A", "2024-06-10 01:30"))
    reason = "entered_at: before its deal was created (created_at)"
    assert found(history_before_created_reasons(steps, deals, timezone="Asia/Shanghai")) == [
        (2, reason)
    ]
    assert found(history_before_created_reasons(steps, deals, timezone="UTC")) == [
        (1, reason),
        (2, reason),
    ]


def test_an_entry_after_the_creation_is_no_contradiction() -> None:
    steps = history(("A", "lead", "2024-06-11"))
    assert (
        found(history_before_created_reasons(steps, created(("A", "2024-06-10")), timezone="UTC"))
        == []
    )
