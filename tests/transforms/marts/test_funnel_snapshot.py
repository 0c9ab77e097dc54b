"""`funnel`: the open deals of each open stage at the period's end (2024-07-01)."""

from __future__ import annotations

from tests.helpers import figures, history, opp, opportunities, path


def test_each_open_stage_in_funnel_order_with_its_open_deals_and_zero_for_none():
    deals = opportunities(
        opp("A", "proposal", "2024-05-01", amount=100),
        opp("B", "proposal", "2024-05-02", amount=250),
        opp("C", "lead", "2024-05-03"),  # no amount: counted, adds nothing
        opp("D", "negotiation", "2024-05-04", status="lost", closed_at="2024-06-01", amount=999),
        opp("E", "won", "2024-05-05", status="won", closed_at="2024-06-02", amount=999),
    )
    rows = figures(deals, of=("funnel",))["funnel"]
    assert rows == [
        {"stage": "lead", "count": 1, "amount": 0.0},
        {"stage": "qualified", "count": 0, "amount": 0.0},
        {"stage": "proposal", "count": 2, "amount": 350.0},
        {"stage": "negotiation", "count": 0, "amount": 0.0},
    ]


def test_a_deal_counts_in_the_stage_it_was_in_at_as_of_not_its_stage_today():
    deals = opportunities(opp("A", "negotiation", "2024-05-01", amount=100))
    steps = history(
        *path(
            "A", ("lead", "2024-05-01"), ("proposal", "2024-06-10"), ("negotiation", "2024-07-20")
        )
    )
    rows = {r["stage"]: r["count"] for r in figures(deals, steps, of=("funnel",))["funnel"]}
    assert rows == {"lead": 0, "qualified": 0, "proposal": 1, "negotiation": 0}
