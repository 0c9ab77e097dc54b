"""Pipeline movement on a literal export: each step of the bridge, its identity, and the deals
expected to close in the period, computed by hand."""

from __future__ import annotations

import pytest

from tests.helpers import bridged, figures, history, metrics_for, opp, opportunities


def entry(oid: str, stage: str, at: str, amount: float | None = None, ecd: str | None = None):
    return {
        "opportunity_id": oid,
        "stage": stage,
        "entered_at": at,
        "amount": amount,
        "expected_close_date": ecd,
    }


# June 2024. Open on 1 June: A (100, expected 20 Jun, won 10 Jun), B (50, lost 15 Jun),
# E (200, expected 25 Jun; raised to 260 and pushed to 1 Aug on 12 Jun), F (80, expected
# 10 Jun; cut to 50, still open), G (40, expected September, unchanged), J (90, expected
# 15 Aug, won 28 Jun: pulled in). Created in June: C (30, open), D (lost in June), I (70,
# won in June). H was won in April.
DEALS = opportunities(
    opp(
        "A",
        "won",
        "2024-05-01",
        closed_at="2024-06-10",
        amount=120,
        expected_close_date="2024-06-20",
    ),
    opp("B", "qualified", "2024-05-02", status="lost", closed_at="2024-06-15", amount=50),
    opp("C", "lead", "2024-06-05", amount=30),
    opp("D", "lead", "2024-06-06", status="lost", closed_at="2024-06-20", amount=10),
    opp("E", "qualified", "2024-05-03", amount=260, expected_close_date="2024-08-01"),
    opp("F", "proposal", "2024-05-04", amount=50, expected_close_date="2024-06-10"),
    opp("G", "lead", "2024-05-05", amount=40, expected_close_date="2024-09-01"),
    opp("H", "won", "2024-04-01", closed_at="2024-04-20", amount=10),
    opp("I", "won", "2024-06-07", closed_at="2024-06-25", amount=70),
    opp(
        "J",
        "won",
        "2024-05-06",
        closed_at="2024-06-28",
        amount=90,
        expected_close_date="2024-08-15",
    ),
)
HISTORY = history(
    entry("A", "lead", "2024-05-01", 100, "2024-06-20"),
    entry("A", "won", "2024-06-10", 120),
    entry("B", "lead", "2024-05-02", 50, "2024-07-15"),
    entry("B", "qualified", "2024-05-10"),
    entry("C", "lead", "2024-06-05", 30),
    entry("D", "lead", "2024-06-06", 10),
    entry("E", "lead", "2024-05-03", 200, "2024-06-25"),
    entry("E", "qualified", "2024-06-12", 260, "2024-08-01"),
    entry("F", "lead", "2024-05-04", 80, "2024-06-10"),
    entry("F", "proposal", "2024-06-13", 50, "2024-06-10"),
    entry("G", "lead", "2024-05-05", 40, "2024-09-01"),
    entry("H", "lead", "2024-04-01", 10),
    entry("H", "won", "2024-04-20"),
    entry("I", "lead", "2024-06-07", 70),
    entry("I", "won", "2024-06-25"),
    entry("J", "lead", "2024-05-06", 90, "2024-08-15"),
    entry("J", "won", "2024-06-28"),
)
STEPS = ("open_start", "created", "increased", "decreased", "won", "lost", "open_end")


def movement(**kwargs) -> dict:
    return figures(DEALS, HISTORY, of=("pipeline_movement",), **kwargs)["pipeline_movement"]


def test_each_step_of_the_bridge():
    m = movement()
    assert {s: (m[f"{s}_count"], m[f"{s}_amount"]) for s in STEPS} == {
        "open_start": (6, 100 + 50 + 200 + 80 + 40 + 90),  # A B E F G J at their June 1 amounts
        "created": (1, 30),  # C; D and I were created and closed inside June
        "increased": (1, 60),  # E: 200 → 260
        "decreased": (1, 30),  # F: 80 → 50; G unchanged
        "won": (2, 100 + 90),  # A and J at their start amounts
        "lost": (1, 50),  # B
        "open_end": (4, 30 + 260 + 50 + 40),  # C E F G at their end amounts
    }
    assert m["created_and_closed"] == {
        "count": 2,
        "won_count": 1,
        "won_amount": 70.0,
        "lost_count": 1,
    }


def test_the_bridge_reconciles_in_counts_and_amounts():
    m = movement()
    count, amount = bridged(m)
    assert count == m["open_end_count"]
    assert amount == pytest.approx(m["open_end_amount"])


def test_the_open_pipeline_at_both_ends_is_the_headlines():
    """The bridge starts at the previous period's open pipeline and ends at this one's."""
    m = metrics_for(DEALS, HISTORY)
    bridge, kpis = m["pipeline_movement"], m["kpis"]
    previous = m["comparison"]["previous"]["kpis"]
    assert (bridge["open_end_count"], bridge["open_end_amount"]) == (
        kpis["open_count"],
        kpis["open_amount"],
    )
    assert (bridge["open_start_count"], bridge["open_start_amount"]) == (
        previous["open_count"],
        previous["open_amount"],
    )


def test_every_stage_reconciles_and_the_stages_add_up_to_the_total():
    """Each deal counts under its stage at the end: A and J under won, E under qualified."""
    m = movement()
    rows = {row["stage"]: row for row in m["by_stage"]}
    assert (rows["won"]["open_start_count"], rows["won"]["won_count"]) == (2, 2)
    assert (rows["qualified"]["increased_amount"], rows["qualified"]["lost_count"]) == (60, 1)
    for row in m["by_stage"]:
        assert bridged(row)[0] == row["open_end_count"]
    for step in STEPS:
        assert sum(row[f"{step}_count"] for row in m["by_stage"]) == m[f"{step}_count"]
        assert sum(row[f"{step}_amount"] for row in m["by_stage"]) == pytest.approx(
            m[f"{step}_amount"]
        )


def test_the_deals_expected_to_close_in_the_period():
    e = movement()["expected"]
    counts = {k.removesuffix("_count"): v for k, v in e.items() if k.endswith("_count")}
    assert counts == {
        "expected": 3,  # A (20 Jun), E (25 Jun), F (10 Jun), as known on 1 June
        "won": 1,  # A
        "lost": 0,
        "pushed_out": 1,  # E, now 1 August
        "overdue": 1,  # F, still open, its date passed
        "pulled_in": 1,  # J, expected in August, won in June
        "new_won": 1,  # I, created and won in June
    }
    assert (e["expected_amount"], e["pushed_out_amount"], e["overdue_amount"]) == (380, 200, 80)
    assert (e["pulled_in_amount"], e["new_won_amount"]) == (90, 70)
    assert e["slipped"] == [
        {
            "opportunity_id": "E",
            "customer_name": None,
            "owner": None,
            "stage": "qualified",
            "amount": 200.0,
            "expected_before": "2024-06-25",
            "expected_after": "2024-08-01",
            "days_pushed": 37,
            "times_pushed": 1,
        }
    ]


def test_every_win_of_the_period_was_expected_pulled_in_or_new():
    m = metrics_for(DEALS, HISTORY)
    e = m["pipeline_movement"]["expected"]
    assert e["won_count"] + e["pulled_in_count"] + e["new_won_count"] == m["kpis"]["won_count"]


def test_without_amount_history_the_amount_steps_are_not_recorded():
    m = metrics_for(DEALS, HISTORY, not_recorded=("stage_history.amount",))
    bridge = m["pipeline_movement"]
    assert bridge["increased_amount"] is None and bridge["decreased_count"] is None
    assert all(row["increased_amount"] is None for row in bridge["by_stage"])
    listed = {f["figure"] for f in m["not_measurable"]}
    assert "pipeline_movement.increased_amount" in listed
    assert bridge["won_count"] == 2  # what the states show still stands


def test_without_close_date_history_nothing_is_said_of_slippage():
    m = metrics_for(DEALS, HISTORY, not_recorded=("stage_history.expected_close_date",))
    assert m["pipeline_movement"]["expected"] is None
    assert {
        "figure": "pipeline_movement.expected",
        "reason": "not_recorded",
        "needs": "stage_history.expected_close_date",
    } in m["not_measurable"]


def test_a_reopening_is_never_recorded():
    m = metrics_for(DEALS, HISTORY)
    assert m["pipeline_movement"]["reopened_count"] is None
    assert "pipeline_movement.reopened_count" in {f["figure"] for f in m["not_measurable"]}


def test_a_month_without_deals_moves_nothing():
    m = figures(
        opportunities(opp("H", "won", "2024-04-01", closed_at="2024-04-20", amount=10)),
        of=("pipeline_movement",),
    )["pipeline_movement"]
    assert [m[f"{s}_count"] for s in STEPS] == [0] * len(STEPS)
    assert m["open_end_amount"] == 0.0 and m["expected"]["slipped"] == []
