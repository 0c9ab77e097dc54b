"""`totals`: every deal's outcome as of the period's end (2024-07-01), whatever the period."""

from __future__ import annotations

import pytest

from tests.helpers import figures, opp, opportunities


def test_totals_count_every_outcome_up_to_as_of_whatever_the_period():
    deals = opportunities(
        opp("W1", "won", "2023-01-10", status="won", closed_at="2023-03-05", amount=100),
        opp("W2", "won", "2024-06-01", status="won", closed_at="2024-06-20", amount=40),
        opp("L1", "proposal", "2024-02-01", status="lost", closed_at="2024-05-01", amount=50),
        opp("O1", "proposal", "2024-04-01", amount=200, crm_probability=25),
        opp("O2", "lead", "2024-05-01", amount=300),
        # won after as_of: open at as_of, its amount in the open pipeline
        opp("W3", "won", "2024-06-10", status="won", closed_at="2024-07-15", amount=70),
        # created after as_of: not yet a deal
        opp("N1", "lead", "2024-08-01", amount=1000),
    )
    totals = figures(deals, of=("totals",))["totals"]
    assert totals["won_count"] == 2  # W1 (a year before the period) and W2
    assert totals["won_amount"] == 140
    assert totals["lost_count"] == 1
    assert totals["win_rate"] == pytest.approx(2 / 3)
    assert totals["open_count"] == 3  # O1, O2, W3
    assert totals["open_amount"] == 570
    # only O1 carries the CRM's probability: 200 x 25 %
    assert totals["crm_weighted_open_amount"] == 50


def test_no_crm_probability_on_any_open_deal_is_no_crm_weighted_amount():
    deals = opportunities(
        opp("O1", "lead", "2024-05-01", amount=300),
        opp("W1", "won", "2024-01-10", status="won", closed_at="2024-03-05", amount=100),
        opp("W2", "won", "2024-01-10", status="won", closed_at="2024-03-05", crm_probability=90),
    )
    totals = figures(deals, of=("totals",))["totals"]
    assert totals["crm_weighted_open_amount"] is None
    assert totals["open_amount"] == 300


def test_no_resolved_deal_has_no_win_rate_and_sums_are_zero():
    totals = figures(opportunities(opp("O1", "lead", "2024-05-01")), of=("totals",))["totals"]
    assert totals["win_rate"] is None
    assert (totals["won_count"], totals["won_amount"], totals["lost_count"]) == (0, 0, 0)
    assert (totals["open_count"], totals["open_amount"]) == (1, 0)
