"""The point-in-time rule: later events ignored, amounts as of the period end, deals without
history, an empty period. Expectations computed by hand in the comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

from tests.helpers import (
    by_key,
    figures,
    history,
    opp,
    opportunities,
    path,
    step,
)


def test_events_after_period_end_are_ignored():
    # E won on 07-05, after the end of June: at as_of it is open in negotiation.
    # F was created on 07-02: it does not exist as of 07-01.
    m = figures(
        opportunities(
            opp("E", "won", "2024-06-01", status="won", closed_at="2024-07-05", amount=100),
            opp("F", "lead", "2024-07-02", amount=999),
        ),
        history(
            *path(
                "E", ("lead", "2024-06-01"), ("negotiation", "2024-06-10"), ("won", "2024-07-05")
            ),
            ("F", "lead", "2024-07-02"),
        ),
        of=("conversion", "funnel", "kpis", "point_in_time"),
    )
    assert by_key(m["funnel"])["negotiation"]["count"] == 1
    assert m["kpis"]["won_count"] == 0
    assert m["kpis"]["open_count"] == 1
    assert m["kpis"]["open_amount"] == 100.0
    assert step(m, "lead", "qualified")["entries_from"] == 1
    notes = {n["note"]: n["count"] for n in m["point_in_time"]}
    assert notes["closed_after_period"] == 1
    assert notes["created_after_period"] == 1


def test_amount_is_taken_as_of_the_period_end():
    # The history records 100 at lead (June) and 300 at proposal (July, after the end).
    m = figures(
        opportunities(opp("G", "proposal", "2024-06-01", amount=300)),
        history(
            {"opportunity_id": "G", "stage": "lead", "entered_at": "2024-06-01", "amount": "100"},
            {
                "opportunity_id": "G",
                "stage": "proposal",
                "entered_at": "2024-07-03",
                "amount": "300",
            },
        ),
        of=("funnel", "kpis"),
    )
    assert m["kpis"]["open_amount"] == 100.0
    assert by_key(m["funnel"])["lead"]["amount"] == 100.0


def test_without_stage_history_entries_come_from_the_opportunity_fields():
    # H: created 06-01, entered proposal 06-10 (stage_entered_at); won deal I closed 06-20.
    m = figures(
        opportunities(
            opp("H", "proposal", "2024-06-01", stage_entered_at="2024-06-10"),
            opp("I", "won", "2024-05-01", closed_at="2024-06-20", amount=50),
        ),
        of=("conversion", "dwell", "funnel", "history_available", "kpis", "point_in_time"),
    )
    assert by_key(m["funnel"])["proposal"]["count"] == 1
    # H reached proposal on 06-10; I reached it (and every stage up to won) on 06-20
    assert step(m, "qualified", "proposal")["entries_to"] == 2
    assert step(m, "negotiation", "won")["entries_to"] == 1
    assert step(m, "lead", "qualified")["entries_from"] == 1  # I was created in May
    assert m["kpis"]["won_count"] == 1
    assert all(row["median_days"] is None and row["completed_visits"] is None for row in m["dwell"])
    assert m["history_available"] is False
    assert m["point_in_time"][0]["note"] == "no_stage_history"


def test_empty_period_gives_zero_counts_and_null_rates():
    m = figures(
        opportunities(opp("J", "lead", "2024-08-01")),
        of=("conversion", "forecast", "funnel", "kpis", "stalls"),
    )  # created after as_of
    assert m["kpis"]["open_count"] == 0
    assert m["kpis"]["won_count"] == 0
    assert m["kpis"]["win_rate"] is None
    assert m["kpis"]["avg_won_amount"] is None
    assert m["kpis"]["pipeline_velocity"] is None
    assert all(row["count"] == 0 for row in m["funnel"])
    assert all(row["flow_rate"] is None and row["cohort_rate"] is None for row in m["conversion"])
    assert m["stalls"]["compliance_rate"] is None
    assert m["forecast"]["weighted_pipeline"] is None
    assert all(
        p["p_win"] is None and p["insufficient_history"]
        for p in m["forecast"]["stage_probabilities"]
    )
