"""Stage visits: each stay of a deal in a stage as known at a period's end (2024-07-01),
with its outcome and its length in days."""

from __future__ import annotations

import pytest

from tests.helpers import history, opp, opportunities, path, world


def visits_of(deals, steps):
    rows = world(deals, steps).derived.visits.sort("opportunity_id", "started_at").to_dicts()
    return [(r["opportunity_id"], r["stage"], r["outcome"], r["days"]) for r in rows]


def test_a_visit_ends_at_the_next_entry_forward_or_back_and_the_last_is_open():
    deals = opportunities(opp("A", "proposal", "2024-05-01"))
    steps = history(
        *path(
            "A",
            ("lead", "2024-05-01"),
            ("proposal", "2024-05-11"),
            ("qualified", "2024-05-21"),
            ("proposal", "2024-06-01"),
        )
    )
    assert visits_of(deals, steps) == [
        ("A", "lead", "forward", pytest.approx(10.0)),
        ("A", "proposal", "back", pytest.approx(10.0)),
        ("A", "qualified", "forward", pytest.approx(11.0)),
        ("A", "proposal", "open", pytest.approx(30.0)),  # its age at as_of
    ]


def test_a_deal_lost_in_a_stage_ends_its_visit_there_at_the_loss():
    deals = opportunities(opp("L", "proposal", "2024-05-01", status="lost", closed_at="2024-06-15"))
    steps = history(*path("L", ("lead", "2024-05-01"), ("proposal", "2024-06-05")))
    assert visits_of(deals, steps)[-1] == ("L", "proposal", "lost", pytest.approx(10.0))


def test_an_entry_after_as_of_is_not_a_visit_yet():
    deals = opportunities(opp("A", "proposal", "2024-05-01"))
    steps = history(*path("A", ("lead", "2024-05-01"), ("proposal", "2024-07-10")))
    assert visits_of(deals, steps) == [("A", "lead", "open", pytest.approx(61.0))]


def test_an_amount_update_in_the_same_stage_is_no_new_visit():
    deals = opportunities(opp("A", "lead", "2024-06-01"))
    steps = history(
        *path("A", ("lead", "2024-06-01")),
        {"opportunity_id": "A", "stage": "lead", "entered_at": "2024-06-10", "amount": 500},
    )
    assert visits_of(deals, steps) == [("A", "lead", "open", pytest.approx(30.0))]
