"""Stage entries: a deal's history rows, else the entries its own fields give; and whether
each entry changes the stage."""

from __future__ import annotations

from datetime import UTC, datetime

from funnel_reports.transforms.intermediate.entries import stage_entries
from tests.helpers import SETTINGS, history, opp, opportunities, path

FUNNEL = SETTINGS.funnel


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def entries_of(deals, steps, partial_history=False):
    rows = (
        stage_entries(deals.lazy(), steps.lazy(), funnel=FUNNEL, partial_history=partial_history)
        .collect()
        .to_dicts()
    )
    return [
        (
            r["opportunity_id"],
            r["stage"],
            r["entered_at"],
            r["is_from_history"],
            r["is_stage_change"],
        )
        for r in rows
    ]


def test_a_deal_without_history_enters_its_first_and_current_stages_from_its_fields():
    deals = opportunities(opp("A", "proposal", "2024-05-01", stage_entered_at="2024-05-20"))
    assert entries_of(deals, history()) == [
        ("A", "lead", at("2024-05-01"), False, True),
        ("A", "proposal", at("2024-05-20"), False, True),
    ]


def test_a_won_deal_in_an_open_stage_enters_won_at_its_close():
    """CRMs keep the stage a deal was won from; without a stage date the current stage is
    entered at creation."""
    deals = opportunities(
        opp("W", "negotiation", "2024-05-01", status="won", closed_at="2024-06-10")
    )
    assert entries_of(deals, history()) == [
        ("W", "lead", at("2024-05-01"), False, True),
        ("W", "negotiation", at("2024-05-01"), False, True),
        ("W", "won", at("2024-06-10"), False, True),
    ]


def test_a_won_deal_in_the_won_stage_without_a_stage_date_enters_it_at_its_close():
    deals = opportunities(opp("W", "won", "2024-05-01", status="won", closed_at="2024-06-10"))
    assert entries_of(deals, history()) == [
        ("W", "lead", at("2024-05-01"), False, True),
        ("W", "won", at("2024-06-10"), False, True),
    ]


def test_history_rows_are_the_entries_the_loss_left_out_a_repeat_no_stage_change():
    deals = opportunities(opp("A", "proposal", "2024-05-01", status="lost", closed_at="2024-06-20"))
    steps = history(
        *path("A", ("lead", "2024-05-01"), ("proposal", "2024-05-10"), ("lost", "2024-06-20")),
        {"opportunity_id": "A", "stage": "proposal", "entered_at": "2024-06-01", "amount": 9},
    )
    assert entries_of(deals, steps) == [
        ("A", "lead", at("2024-05-01"), True, True),
        ("A", "proposal", at("2024-05-10"), True, True),
        ("A", "proposal", at("2024-06-01"), True, False),  # an amount update
    ]


def test_a_deal_whose_history_holds_only_its_loss_takes_its_fields_entries():
    deals = opportunities(opp("A", "lead", "2024-05-01", status="lost", closed_at="2024-06-20"))
    steps = history(*path("A", ("lost", "2024-06-20")))
    assert entries_of(deals, steps) == [("A", "lead", at("2024-05-01"), False, True)]


def test_a_partial_history_adds_the_fields_entries_of_the_stages_it_does_not_hold():
    deals = opportunities(opp("A", "proposal", "2024-05-01", stage_entered_at="2024-05-20"))
    steps = history(*path("A", ("proposal", "2024-05-18")))
    assert entries_of(deals, steps, partial_history=True) == [
        ("A", "lead", at("2024-05-01"), False, True),
        ("A", "proposal", at("2024-05-18"), True, True),  # its date, not the field's
    ]
