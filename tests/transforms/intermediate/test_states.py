"""Deal states: the facts no instant changes, the spans between the instants at which a deal's
entries changed what is known of it, and each deal's state masked at any instant from them.
Times are UTC midnights unless a test says otherwise."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from funnel_reports.transforms.intermediate.entries import stage_entries
from funnel_reports.transforms.intermediate.reaches import every_reach, reach_times
from funnel_reports.transforms.intermediate.states import (
    DEAL,
    FACT_COLUMNS,
    STATE_COLUMNS,
    DealStatesAt,
    deal_facts,
    deal_spans,
    deal_states,
    deal_states_at,
)
from tests.helpers import SETTINGS, history, opp, opportunities, path

FUNNEL = SETTINGS.funnel  # lead 0, qualified 1, proposal 2, negotiation 3, won 4, retention 5


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def tables(
    deals: pl.DataFrame, steps: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The deals' facts, spans and reaches over all entries, as a run derives them."""
    entries = stage_entries(deals.lazy(), steps.lazy(), funnel=FUNNEL).collect()
    times = reach_times(entries.lazy(), funnel=FUNNEL).collect()
    facts = deal_facts(deals.lazy(), times.lazy(), funnel=FUNNEL).collect()
    spans = deal_spans(entries.lazy(), facts.lazy()).collect()
    reaches = every_reach(times.lazy(), facts.lazy(), funnel=FUNNEL).collect()
    return facts, spans, reaches


def spans_of(deals: pl.DataFrame, steps: pl.DataFrame) -> list[tuple[Any, ...]]:
    """(deal, after, until, stage_at, stage_entered_at_as_of, reached_index, history_amount)."""
    _, spans, _ = tables(deals, steps)
    return spans.select(
        DEAL,
        "after",
        "until",
        "stage_at",
        "stage_entered_at_as_of",
        "reached_index",
        "history_amount",
    ).rows()


def states_of(deals: pl.DataFrame, steps: pl.DataFrame, day: str) -> dict[str, dict[str, Any]]:
    facts, spans, _ = tables(deals, steps)
    states = deal_states_at(facts.lazy(), spans.lazy(), as_of=at(day), funnel=FUNNEL).collect()
    return {row["opportunity_id"]: row for row in states.to_dicts()}


def update(oid: str, stage: str, day: str, **fields: object) -> dict[str, Any]:
    """A history row that may carry an amount or an expected close date."""
    return {"opportunity_id": oid, "stage": stage, "entered_at": day, **fields}


# --- facts


def test_the_facts_number_the_deals_in_their_order_with_first_entry_and_first_win() -> None:
    """B skipped won for retention: reaching retention on 06-10 reaches won then."""
    deals = opportunities(
        opp("B", "retention", "2024-05-01", closed_at="2024-06-10", amount=50),
        opp("A", "proposal", "2024-05-03"),
    )
    steps = history(
        *path("B", ("lead", "2024-05-02"), ("retention", "2024-06-10")),
        *path("A", ("lead", "2024-05-03"), ("proposal", "2024-05-09")),
    )
    facts, _, _ = tables(deals, steps)
    assert facts.columns == [DEAL, *FACT_COLUMNS, "first_entry_at", "won_first"]
    assert facts.select(DEAL, "opportunity_id", "first_entry_at", "won_first").rows() == [
        (0, "B", at("2024-05-02"), at("2024-06-10")),
        (1, "A", at("2024-05-03"), None),
    ]


def test_a_deal_without_reach_times_has_no_first_entry_or_win() -> None:
    deals = opportunities(opp("A", "lead", "2024-05-01"), opp("B", "lead", "2024-05-01"))
    times = pl.LazyFrame(
        {"opportunity_id": ["B"], **{str(k): [at("2024-05-02")] for k in range(6)}},
    )
    facts = deal_facts(deals.lazy(), times, funnel=FUNNEL).collect()
    assert facts.select("opportunity_id", "first_entry_at", "won_first").rows() == [
        ("A", None, None),
        ("B", at("2024-05-02"), at("2024-05-02")),
    ]


# --- spans


def test_a_deal_s_spans_run_from_each_change_to_the_next() -> None:
    """lead 05-01; proposal 05-10 at 100; 200 recorded in proposal on 05-20 (no stage change:
    the stage stays entered on 05-10); back to qualified on 05-25, the furthest stage still
    proposal (2)."""
    deals = opportunities(opp("A", "qualified", "2024-05-01"))
    steps = history(
        update("A", "lead", "2024-05-01"),
        update("A", "proposal", "2024-05-10", amount=100),
        update("A", "proposal", "2024-05-20", amount=200),
        update("A", "qualified", "2024-05-25"),
    )
    assert spans_of(deals, steps) == [
        (0, None, at("2024-05-01"), None, None, None, None),
        (0, at("2024-05-01"), at("2024-05-10"), "lead", at("2024-05-01"), 0, None),
        (0, at("2024-05-10"), at("2024-05-20"), "proposal", at("2024-05-10"), 2, 100.0),
        (0, at("2024-05-20"), at("2024-05-25"), "proposal", at("2024-05-10"), 2, 200.0),
        (0, at("2024-05-25"), None, "qualified", at("2024-05-25"), 2, 200.0),
    ]


def test_entries_at_one_instant_make_one_span_in_the_later_stage() -> None:
    deals = opportunities(opp("A", "qualified", "2024-05-01"))
    steps = history(*path("A", ("qualified", "2024-05-01"), ("lead", "2024-05-01")))
    assert spans_of(deals, steps) == [
        (0, None, at("2024-05-01"), None, None, None, None),
        (0, at("2024-05-01"), None, "qualified", at("2024-05-01"), 1, None),
    ]


def test_a_row_that_changes_nothing_known_starts_no_span() -> None:
    """proposal again on 05-20 without an amount: the latest amount is still 100."""
    deals = opportunities(opp("A", "proposal", "2024-05-01"))
    steps = history(
        update("A", "proposal", "2024-05-10", amount=100),
        update("A", "proposal", "2024-05-20"),
    )
    assert spans_of(deals, steps) == [
        (0, None, at("2024-05-10"), None, None, None, None),
        (0, at("2024-05-10"), None, "proposal", at("2024-05-10"), 2, 100.0),
    ]


def test_what_one_deal_s_entries_tell_never_reaches_the_next_deal() -> None:
    """A got to negotiation at 300; B, after it, only to lead and no amount."""
    deals = opportunities(opp("A", "negotiation", "2024-05-01"), opp("B", "lead", "2024-05-02"))
    steps = history(
        update("A", "negotiation", "2024-05-01", amount=300),
        update("B", "lead", "2024-05-02"),
    )
    assert spans_of(deals, steps) == [
        (0, None, at("2024-05-01"), None, None, None, None),
        (0, at("2024-05-01"), None, "negotiation", at("2024-05-01"), 3, 300.0),
        (1, None, at("2024-05-02"), None, None, None, None),
        (1, at("2024-05-02"), None, "lead", at("2024-05-02"), 0, None),
    ]


# --- states at an instant


def test_a_deal_is_won_once_it_reached_the_won_stage_before_the_instant() -> None:
    deals = opportunities(opp("W", "won", "2024-05-01", closed_at="2024-06-10", amount=80))
    steps = history(*path("W", ("lead", "2024-05-01"), ("won", "2024-06-10")))
    before, on, after = (
        states_of(deals, steps, d)["W"] for d in ("2024-06-01", "2024-06-10", "2024-06-11")
    )
    assert (before["state"], before["won_at"], before["resolved_at"]) == ("open", None, None)
    assert on["state"] == "open"  # entered at the instant itself: not before it
    assert (after["state"], after["won_at"], after["resolved_at"]) == (
        "won",
        at("2024-06-10"),
        at("2024-06-10"),
    )
    assert (after["stage_at"], after["reached_index"]) == ("won", 4)


def test_a_deal_is_lost_once_closed_before_the_instant() -> None:
    deals = opportunities(opp("L", "proposal", "2024-05-01", status="lost", closed_at="2024-06-05"))
    steps = history(*path("L", ("lead", "2024-05-01"), ("proposal", "2024-05-20")))
    before, after = (states_of(deals, steps, d)["L"] for d in ("2024-06-05", "2024-06-06"))
    assert (before["state"], before["closed_at_as_of"], before["resolved_at"]) == (
        "open",
        None,
        None,
    )
    assert (after["state"], after["closed_at_as_of"], after["resolved_at"]) == (
        "lost",
        at("2024-06-05"),
        at("2024-06-05"),
    )
    assert after["stage_at"] == "proposal"


def test_a_loss_after_a_win_reverses_it_from_the_loss_on() -> None:
    """Won on 05-10, moved to lost on 05-20 (Closed Won to Closed Lost)."""
    deals = opportunities(opp("R", "won", "2024-05-01", status="lost", closed_at="2024-05-20"))
    steps = history(*path("R", ("lead", "2024-05-01"), ("won", "2024-05-10")))
    between, after = (states_of(deals, steps, d)["R"] for d in ("2024-05-15", "2024-06-01"))
    assert (between["state"], between["resolved_at"]) == ("won", at("2024-05-10"))
    assert (after["state"], after["resolved_at"]) == ("lost", at("2024-05-20"))
    assert after["won_at"] == at("2024-05-10")  # it was reached, and stays so


def test_a_deal_created_at_or_after_the_instant_has_no_state() -> None:
    deals = opportunities(opp("A", "lead", "2024-05-01"), opp("B", "lead", "2024-06-01"))
    assert list(states_of(deals, history(), "2024-06-01")) == ["A"]


def test_before_its_first_entry_a_deal_is_in_the_first_stage_since_its_creation() -> None:
    """Created 05-01, its history starts on 05-20 in proposal."""
    deals = opportunities(opp("A", "proposal", "2024-05-01", amount=40))
    steps = history(*path("A", ("proposal", "2024-05-20")))
    state = states_of(deals, steps, "2024-05-10")["A"]
    assert (state["state"], state["stage_at"], state["stage_entered_at_as_of"]) == (
        "open",
        "lead",
        at("2024-05-01"),
    )
    assert state["amount_at"] == 40.0


def test_the_amount_and_expected_close_are_the_latest_the_history_records_before_the_instant() -> (
    None
):
    deals = opportunities(
        opp("A", "proposal", "2024-05-01", amount=999, expected_close_date="2024-12-31")
    )
    steps = history(
        update("A", "lead", "2024-05-01", amount=100, expected_close_date="2024-07-31"),
        update("A", "proposal", "2024-05-20", amount=150),
        update("A", "proposal", "2024-06-20", amount=175, expected_close_date="2024-09-30"),
    )
    early, middle, late = (
        states_of(deals, steps, d)["A"] for d in ("2024-05-10", "2024-06-01", "2024-07-01")
    )
    assert (early["amount_at"], early["expected_close_date_at"]) == (100.0, date(2024, 7, 31))
    assert (middle["amount_at"], middle["expected_close_date_at"]) == (150.0, date(2024, 7, 31))
    assert (late["amount_at"], late["expected_close_date_at"]) == (175.0, date(2024, 9, 30))


def test_without_amounts_in_the_history_the_deal_s_own_are_read() -> None:
    deals = opportunities(
        opp("A", "proposal", "2024-05-01", amount=999, expected_close_date="2024-12-31")
    )
    state = states_of(deals, history(*path("A", ("lead", "2024-05-01"))), "2024-06-01")["A"]
    assert (state["amount_at"], state["expected_close_date_at"]) == (999.0, date(2024, 12, 31))


def test_deal_states_keep_every_column_of_their_opportunities_in_order() -> None:
    deals = opportunities(
        opp("A", "proposal", "2024-05-01", owner="Li"),
        opp("B", "lead", "2024-07-01"),
        opp("C", "lead", "2024-05-02", owner="Wang"),
    )
    facts, spans, _ = tables(deals, history())
    states = deal_states(
        deals.lazy(), facts.lazy(), spans.lazy(), as_of=at("2024-06-01"), funnel=FUNNEL
    ).collect()
    assert states.columns[: len(deals.columns)] == deals.columns
    assert states.select("opportunity_id", "owner", "state", "stage_at").rows() == [
        ("A", "Li", "open", "proposal"),
        ("C", "Wang", "open", "lead"),
    ]


# --- states at any instant, from one derivation


def test_the_states_at_any_instant_are_those_masked_at_it_in_any_order_asked() -> None:
    """Asked at three instants (more than are kept), then the first again."""
    deals = opportunities(
        opp("W", "won", "2024-05-01", closed_at="2024-06-10"),
        opp("L", "proposal", "2024-05-01", status="lost", closed_at="2024-05-20"),
    )
    steps = history(
        *path("W", ("lead", "2024-05-01"), ("won", "2024-06-10")),
        *path("L", ("lead", "2024-05-01"), ("proposal", "2024-05-05")),
    )
    facts, spans, reaches = tables(deals, steps)
    states_at = DealStatesAt(facts, spans, reaches, funnel=FUNNEL)
    days = ("2024-05-10", "2024-06-01", "2024-07-01", "2024-05-10")
    asked = [states_at.states(at(d)).collect() for d in days]
    for day, states in zip(days, asked, strict=True):
        alone = deal_states_at(facts.lazy(), spans.lazy(), as_of=at(day), funnel=FUNNEL)
        assert states.equals(alone.select(STATE_COLUMNS).collect()), day
    assert [s["state"].to_list() for s in asked] == [
        ["open", "open"],
        ["open", "lost"],
        ["won", "lost"],
        ["open", "open"],
    ]


def test_the_reaches_at_an_instant_are_the_stages_reached_before_it() -> None:
    deals = opportunities(opp("A", "proposal", "2024-05-01"), opp("B", "lead", "2024-06-15"))
    steps = history(
        *path("A", ("lead", "2024-05-01"), ("proposal", "2024-06-10")),
        *path("B", ("lead", "2024-06-15")),
    )
    facts, spans, reaches = tables(deals, steps)
    states_at = DealStatesAt(facts, spans, reaches, funnel=FUNNEL)
    known = states_at.reaches(at("2024-06-12")).collect().sort("opportunity_id", "stage_index")
    assert known.select("opportunity_id", "stage", "reached_at").rows() == [
        ("A", "lead", at("2024-05-01")),
        ("A", "qualified", at("2024-06-10")),  # skipped: reached with proposal
        ("A", "proposal", at("2024-06-10")),
    ]
