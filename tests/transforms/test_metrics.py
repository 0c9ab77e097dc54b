"""Every figure on small literal inputs, with expectations computed by hand in the comments.

Period 2024-06 in UTC: P = [2024-06-01, 2024-07-01), as_of = 2024-07-01,
W = [2023-07-01, 2024-07-01).
"""

from __future__ import annotations

import pytest

from tests.helpers import (
    by_key,
    history,
    metrics_for,
    opportunities,
    path,
    step,
    touches,
    typed,
)
from transforms.funnel_model import RunSettings


def opp(oid: str, stage: str, created: str, **fields: object) -> dict[str, object]:
    return {"opportunity_id": oid, "stage": stage, "created_at": created, **fields}


# --- funnel snapshot and flow conversion -------------------------------------------------


def test_skipped_stage_counts_as_reached():
    # A: lead 06-02 -> proposal 06-10 (qualified skipped). Reached: lead, qualified, proposal.
    m = metrics_for(
        opportunities(opp("A", "proposal", "2024-06-02", amount=500)),
        history(*path("A", ("lead", "2024-06-02"), ("proposal", "2024-06-10"))),
    )
    assert step(m, "lead", "qualified")["entries_from"] == 1
    assert step(m, "lead", "qualified")["flow_rate"] == 1.0
    assert step(m, "qualified", "proposal")["flow_rate"] == 1.0
    assert step(m, "proposal", "negotiation")["flow_rate"] == 0.0
    assert step(m, "negotiation", "won")["flow_rate"] is None  # nobody entered negotiation
    funnel = by_key(m["funnel"])
    assert funnel["proposal"] == {"stage": "proposal", "count": 1, "amount": 500.0}
    assert funnel["qualified"]["count"] == 0


def test_regression_reentry_counts_once_for_conversion_but_each_visit_for_dwell():
    # B: lead 06-01, qualified 06-05, proposal 06-10, back to qualified 06-15, proposal 06-20.
    m = metrics_for(
        opportunities(opp("B", "proposal", "2024-06-01")),
        history(
            *path(
                "B",
                ("lead", "2024-06-01"),
                ("qualified", "2024-06-05"),
                ("proposal", "2024-06-10"),
                ("qualified", "2024-06-15"),
                ("proposal", "2024-06-20"),
            )
        ),
    )
    assert step(m, "qualified", "proposal")["entries_from"] == 1
    assert step(m, "qualified", "proposal")["entries_to"] == 1
    dwell = by_key(m["dwell"])
    # qualified visits: 06-05..06-10 and 06-15..06-20, 5 days each
    assert dwell["qualified"]["completed_visits"] == 2
    assert dwell["qualified"]["mean_days"] == pytest.approx(5.0)
    # proposal: 06-10..06-15 completed (5 days); 06-20.. open, 11 days old at 07-01
    assert dwell["proposal"]["completed_visits"] == 1
    assert dwell["proposal"]["median_days"] == pytest.approx(5.0)
    assert dwell["proposal"]["open_visits"] == 1
    assert dwell["proposal"]["open_median_age_days"] == pytest.approx(11.0)
    assert by_key(m["funnel"])["proposal"]["count"] == 1


def test_flow_rate_can_exceed_one():
    # C entered lead in May and qualified in June; D entered lead and qualified in June.
    m = metrics_for(
        opportunities(opp("C", "qualified", "2024-05-20"), opp("D", "qualified", "2024-06-03")),
        history(
            *path("C", ("lead", "2024-05-20"), ("qualified", "2024-06-02")),
            *path("D", ("lead", "2024-06-03"), ("qualified", "2024-06-04")),
        ),
    )
    row = step(m, "lead", "qualified")
    assert (row["entries_from"], row["entries_to"]) == (1, 2)
    assert row["flow_rate"] == 2.0


# --- cohort conversion: lost from each stage, open, immature ------------------------------


LOST_FROM_EACH_STAGE = [
    # (id, last stage, history up to it); every deal lost on 2024-03-20
    ("L1", "lead", [("lead", "2024-03-01")]),
    ("L2", "qualified", [("lead", "2024-03-01"), ("qualified", "2024-03-05")]),
    (
        "L3",
        "proposal",
        [("lead", "2024-03-01"), ("qualified", "2024-03-05"), ("proposal", "2024-03-10")],
    ),
    (
        "L4",
        "negotiation",
        [
            ("lead", "2024-03-01"),
            ("qualified", "2024-03-05"),
            ("proposal", "2024-03-10"),
            ("negotiation", "2024-03-15"),
        ],
    ),
]


def lost_deals() -> tuple[list[dict[str, object]], list[tuple[str, str, str]]]:
    opps, rows = [], []
    for oid, stage, steps in LOST_FROM_EACH_STAGE:
        opps.append(opp(oid, stage, "2024-03-01", status="lost", closed_at="2024-03-20"))
        rows += path(oid, *steps)
    return opps, rows


def test_cohort_counts_deals_lost_from_each_stage():
    opps, rows = lost_deals()
    m = metrics_for(opportunities(*opps), history(*rows))
    # lead cohort: all 4; advanced (reached qualified): L2, L3, L4; lost: L1
    assert {
        k: step(m, "lead", "qualified")[k] for k in ("cohort_size", "advanced", "lost", "open")
    } == {"cohort_size": 4, "advanced": 3, "lost": 1, "open": 0}
    assert step(m, "qualified", "proposal")["cohort_rate"] == pytest.approx(2 / 3)
    assert step(m, "proposal", "negotiation")["resolved_rate"] == pytest.approx(1 / 2)
    negotiation = step(m, "negotiation", "won")
    assert (negotiation["cohort_size"], negotiation["advanced"], negotiation["lost"]) == (1, 0, 1)
    assert negotiation["cohort_rate"] == 0.0
    assert negotiation["is_immature"] is False
    assert step(m, "won", "retention")["cohort_size"] == 0
    assert step(m, "won", "retention")["cohort_rate"] is None
    # the period itself (June) saw no entries: flow rates are undefined
    assert all(row["flow_rate"] is None for row in m["conversion"])
    assert m["kpis"]["lost_count"] == 0  # lost in March, not in June


def test_cohort_with_many_open_deals_is_immature():
    # 3 deals reached negotiation; one won, two still open: open share 2/3 > 30 %
    rows = []
    for oid in ("N1", "N2", "N3"):
        rows += path(oid, ("lead", "2024-06-01"), ("negotiation", "2024-06-05"))
    rows += [("N1", "won", "2024-06-10")]
    m = metrics_for(
        opportunities(
            opp("N1", "won", "2024-06-01", closed_at="2024-06-10"),
            opp("N2", "negotiation", "2024-06-01"),
            opp("N3", "negotiation", "2024-06-01"),
        ),
        history(*rows),
    )
    row = step(m, "negotiation", "won")
    assert (row["cohort_size"], row["advanced"], row["lost"], row["open"]) == (3, 1, 0, 2)
    assert row["is_immature"] is True
    assert row["resolved_rate"] == 1.0
    assert step(m, "won", "retention")["resolved_rate"] is None
    assert step(m, "won", "retention")["lost"] == 0


# --- point in time: events after the period end, deals created after it --------------------


def test_events_after_period_end_are_ignored():
    # E won on 07-05, after the end of June: at as_of it is open in negotiation.
    # F was created on 07-02: it does not exist as of 07-01.
    m = metrics_for(
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
    m = metrics_for(
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
    )
    assert m["kpis"]["open_amount"] == 100.0
    assert by_key(m["funnel"])["lead"]["amount"] == 100.0


def test_without_stage_history_entries_come_from_the_opportunity_fields():
    # H: created 06-01, entered proposal 06-10 (stage_entered_at); won deal I closed 06-20.
    m = metrics_for(
        opportunities(
            opp("H", "proposal", "2024-06-01", stage_entered_at="2024-06-10"),
            opp("I", "won", "2024-05-01", closed_at="2024-06-20", amount=50),
        )
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
    m = metrics_for(opportunities(opp("J", "lead", "2024-08-01")))  # created after as_of
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


# --- dwell: Kaplan–Meier ---------------------------------------------------------------------


def test_dwell_figures_and_kaplan_meier_median():
    # qualified visits: completed 2, 4, 6 days; open visits aged 3 and 10 days at 07-01.
    # KM: t=2 at risk 5 -> S=0.8; t=3 censored; t=4 at risk 3 -> S=0.533; t=6 at risk 2 -> 0.267
    # so the KM median is 6. Completed: mean 4, median 4, p90 = 4 + 0.8 * (6 - 4) = 5.6,
    # p25 = 2 + 0.5 * (4 - 2) = 3, p75 = 4 + 0.5 * (6 - 4) = 5 (linear interpolation).
    rows = []
    for oid, end in (("Q1", "2024-06-07"), ("Q2", "2024-06-09"), ("Q3", "2024-06-11")):
        rows += path(oid, ("lead", "2024-06-01"), ("qualified", "2024-06-05"), ("proposal", end))
    rows += path("Q4", ("lead", "2024-06-20"), ("qualified", "2024-06-28"))
    rows += path("Q5", ("lead", "2024-06-20"), ("qualified", "2024-06-21"))
    opps = [opp(o, "proposal", "2024-06-01") for o in ("Q1", "Q2", "Q3")]
    opps += [opp(o, "qualified", "2024-06-20") for o in ("Q4", "Q5")]
    q = by_key(metrics_for(opportunities(*opps), history(*rows))["dwell"])["qualified"]
    assert q["completed_visits"] == 3
    assert q["mean_days"] == pytest.approx(4.0)
    assert q["median_days"] == pytest.approx(4.0)
    assert q["p90_days"] == pytest.approx(5.6)
    assert (q["p25_days"], q["p75_days"]) == (pytest.approx(3.0), pytest.approx(5.0))
    assert q["open_visits"] == 2
    assert q["open_median_age_days"] == pytest.approx(6.5)
    assert q["km_median_days"] == pytest.approx(6.0)


def test_visit_of_a_lost_deal_ends_at_closed_at():
    # K entered negotiation 06-01 and was lost 06-04: a completed 3-day visit.
    m = metrics_for(
        opportunities(opp("K", "negotiation", "2024-05-20", status="lost", closed_at="2024-06-04")),
        history(*path("K", ("lead", "2024-05-20"), ("negotiation", "2024-06-01"))),
    )
    negotiation = by_key(m["dwell"])["negotiation"]
    assert negotiation["completed_visits"] == 1
    assert negotiation["mean_days"] == pytest.approx(3.0)
    assert negotiation["open_visits"] == 0
    assert m["kpis"]["lost_count"] == 1


def test_completed_visits_outside_the_window_are_left_out():
    # A lead visit that ended in May 2023 is before W = [2023-07-01, 2024-07-01)
    m = metrics_for(
        opportunities(opp("Z", "qualified", "2023-05-01")),
        history(*path("Z", ("lead", "2023-05-01"), ("qualified", "2023-05-03"))),
    )
    dwell = by_key(m["dwell"])
    assert dwell["lead"]["completed_visits"] == 0
    assert dwell["qualified"]["open_visits"] == 1  # open visits count whatever their start


# --- stalls ----------------------------------------------------------------------------------


def test_stalls_threshold_is_strict_and_blank_reason_is_missing():
    m = metrics_for(
        opportunities(
            # exactly 7 days at as_of: not stalled
            opp(
                "S1",
                "negotiation",
                "2024-06-01",
                stage_entered_at="2024-06-24T00:00:00Z",
                amount=50,
            ),
            # 7 days and 1 hour: stalled, with a reason
            opp(
                "S2",
                "negotiation",
                "2024-06-01",
                stage_entered_at="2024-06-23T23:00:00Z",
                amount=100,
                stall_reason="Budget approval",
            ),
            # 30 days, whitespace-only reason: stalled and missing
            opp(
                "S3",
                "proposal",
                "2024-06-01",
                stage_entered_at="2024-06-01",
                amount=200,
                stall_reason="   ",
                owner="Li",
            ),
            # won deals never stall
            opp("S4", "won", "2024-01-01", closed_at="2024-02-01"),
        )
    )
    stalls = m["stalls"]
    assert stalls["stalled_count"] == 2
    assert stalls["stalled_amount"] == 300.0
    assert stalls["missing_reason_count"] == 1
    assert stalls["compliance_rate"] == 0.5
    assert stalls["reasons"] == [{"reason": "Budget approval", "count": 1, "amount": 100.0}]
    assert by_key(stalls["by_owner"], "owner")["Li"]["missing_reason"] == 1
    assert [d["opportunity_id"] for d in stalls["deals"]] == ["S3", "S2"]


# --- headline figures and velocity -----------------------------------------------------------


def test_headline_figures_and_velocity():
    m = metrics_for(
        opportunities(
            opp("W1", "won", "2024-05-01", closed_at="2024-06-10", amount=1000),  # cycle 40
            opp("W2", "won", "2024-06-01", closed_at="2024-06-21", amount=3000),  # cycle 20
            opp("W3", "won", "2024-06-05", closed_at="2024-06-15"),  # cycle 10, no amount
            opp("L1", "lead", "2024-06-01", status="lost", closed_at="2024-06-20"),
            opp("L2", "lead", "2024-04-01", status="lost", closed_at="2024-05-20"),  # in W only
            opp("O1", "proposal", "2024-06-01", amount=700),
        )
    )
    k = m["kpis"]
    assert (k["won_count"], k["won_amount"], k["lost_count"]) == (3, 4000.0, 1)
    assert k["win_rate"] == 0.75
    assert k["avg_won_amount"] == 2000.0  # the deal without an amount is skipped
    assert k["median_cycle_days"] == pytest.approx(20.0)
    assert (k["open_count"], k["open_amount"]) == (1, 700.0)
    # over W: 3 won, 2 lost -> 0.6; avg won 2000; median cycle 20 -> 1 * 0.6 * 2000 / 20
    assert k["window"]["win_rate"] == 0.6
    assert k["pipeline_velocity"] == pytest.approx(60.0)


def test_comparison_with_previous_period_and_year_ago():
    m = metrics_for(
        opportunities(
            opp("A1", "won", "2024-05-01", closed_at="2024-05-10", amount=100),
            opp("A2", "won", "2024-06-01", closed_at="2024-06-02", amount=300),
            opp("A3", "won", "2023-06-01", closed_at="2023-06-02", amount=50),
        )
    )
    previous = m["comparison"]["previous"]
    assert previous["period"]["label"] == "2024-05"
    assert previous["kpis"]["won_amount"] == 100.0
    assert previous["change"]["won_amount"] == 200.0
    year_ago = m["comparison"]["year_ago"]
    assert year_ago["period"]["label"] == "2023-06"
    assert year_ago["change"]["won_amount"] == 250.0


# --- win probability and forecast ------------------------------------------------------------


def forecast_world(target: float | None = None) -> dict[str, object]:
    """3 won (reached negotiation), 2 lost from lead, 1 lost from proposal, 3 open deals.

    p̄ = 3/6 = 0.5. lead: 3 won, 3 lost -> (3 + 2.5) / 11 = 0.5.
    qualified and proposal: 3 won, 1 lost -> 5.5 / 9. negotiation: 3 won, 0 lost -> 5.5 / 8.
    """
    opps, rows = [], []
    for oid, amount in (("W1", 1000), ("W2", 2000), ("W3", 3000)):
        opps.append(opp(oid, "won", "2024-02-01", closed_at="2024-03-01", amount=amount))
        rows += path(
            oid,
            ("lead", "2024-02-01"),
            ("qualified", "2024-02-05"),
            ("proposal", "2024-02-10"),
            ("negotiation", "2024-02-15"),
            ("won", "2024-03-01"),
        )
    for oid in ("X1", "X2"):
        opps.append(opp(oid, "lead", "2024-02-01", status="lost", closed_at="2024-02-20"))
        rows += path(oid, ("lead", "2024-02-01"))
    opps.append(opp("X3", "proposal", "2024-02-01", status="lost", closed_at="2024-02-20"))
    rows += path(
        "X3", ("lead", "2024-02-01"), ("qualified", "2024-02-03"), ("proposal", "2024-02-05")
    )
    opps += [
        opp("O1", "lead", "2024-06-01", amount=1000, expected_close_date="2024-09-01"),
        opp("O2", "negotiation", "2024-06-01", amount=2000, expected_close_date="2024-07-15"),
        opp("O3", "negotiation", "2024-06-01"),
    ]
    rows += path("O1", ("lead", "2024-06-01"))
    rows += path("O2", ("lead", "2024-06-01"), ("negotiation", "2024-06-03"))
    rows += path("O3", ("lead", "2024-06-01"), ("negotiation", "2024-06-03"))
    return metrics_for(opportunities(*opps), history(*rows), target=target)


def test_win_probability_is_smoothed_toward_the_overall_rate():
    m = forecast_world()
    p = by_key(m["forecast"]["stage_probabilities"])
    assert m["forecast"]["p_bar"] == 0.5
    assert (p["lead"]["won"], p["lead"]["lost"]) == (3, 3)
    assert p["lead"]["p_win"] == pytest.approx(0.5)
    assert p["qualified"]["p_win"] == pytest.approx(5.5 / 9)
    assert p["proposal"]["p_win"] == pytest.approx(5.5 / 9)
    assert (p["negotiation"]["won"], p["negotiation"]["lost"]) == (3, 0)
    assert p["negotiation"]["p_win"] == pytest.approx(5.5 / 8)
    assert all(row["insufficient_history"] for row in p.values())  # fewer than 20 resolved


def test_weighted_pipeline_and_next_period():
    f = forecast_world()["forecast"]
    # O1: 1000 * 0.5 = 500; O2: 2000 * 0.6875 = 1375; O3 has no amount (adds 0, unpriced)
    assert f["weighted_pipeline"] == pytest.approx(1875.0)
    assert f["unpriced_count"] == 1
    assert f["next_period_label"] == "2024-07"
    assert f["next_period"] == pytest.approx(1375.0)  # only O2 is expected to close in July
    negotiation = by_key(f["by_stage"])["negotiation"]
    assert (negotiation["open_count"], negotiation["open_amount"]) == (2, 2000.0)


def test_twenty_resolved_deals_are_enough_history():
    opps, rows = [], []
    for i in range(20):
        oid = f"R{i}"
        won = i < 12
        opps.append(
            opp(
                oid,
                "won" if won else "lead",
                "2024-01-01",
                status="won" if won else "lost",
                closed_at="2024-02-01",
            )
        )
        rows += path(oid, ("lead", "2024-01-01"), *([("won", "2024-02-01")] if won else []))
    p = by_key(metrics_for(opportunities(*opps), history(*rows))["forecast"]["stage_probabilities"])
    assert (p["lead"]["won"], p["lead"]["lost"]) == (12, 8)
    assert p["lead"]["insufficient_history"] is False
    # p̄ = 0.6: (12 + 3) / (20 + 5) = 0.6
    assert p["lead"]["p_win"] == pytest.approx(0.6)
    assert p["qualified"]["insufficient_history"] is True  # won deals skipped it: 12 < 20


def test_won_deal_that_keeps_its_open_stage_is_won_at_closed_at():
    # Pipedrive keeps the stage a deal was won from: negotiation, status won, won on 06-10
    m = metrics_for(
        opportunities(
            opp("P", "negotiation", "2024-05-01", status="won", closed_at="2024-06-10", amount=10)
        )
    )
    assert (m["kpis"]["won_count"], m["kpis"]["won_amount"]) == (1, 10.0)
    assert step(m, "negotiation", "won")["entries_to"] == 1
    assert m["kpis"]["median_cycle_days"] == pytest.approx(40.0)


def test_a_row_repeating_the_current_stage_is_no_new_visit():
    # R entered proposal on 06-01; a second proposal row on 06-20 only changed the amount.
    m = metrics_for(
        opportunities(opp("R", "proposal", "2024-05-25", amount=1)),
        history(
            {"opportunity_id": "R", "stage": "lead", "entered_at": "2024-05-25"},
            {
                "opportunity_id": "R",
                "stage": "proposal",
                "entered_at": "2024-06-01",
                "amount": "100",
            },
            {
                "opportunity_id": "R",
                "stage": "proposal",
                "entered_at": "2024-06-20",
                "amount": "300",
            },
        ),
    )
    proposal = by_key(m["dwell"])["proposal"]
    assert (proposal["completed_visits"], proposal["open_visits"]) == (0, 1)
    assert proposal["open_median_age_days"] == pytest.approx(30.0)  # since 06-01, not 06-20
    assert m["stalls"]["deals"][0]["days_in_stage"] == pytest.approx(30.0)
    assert m["kpis"]["open_amount"] == 300.0  # the latest amount still counts


# --- follow-ups and segments -----------------------------------------------------------------


def test_followup_activity():
    # Open: F1 (touched 06-25, next action due 06-28: overdue), F2 (last touch 06-10: silent
    # for 21 days), F3 (created 06-20, never touched: silent 11 days, not yet 14).
    # Won W1 had 3 touches, lost L1 had 1 (both resolved in W).
    m = metrics_for(
        opportunities(
            opp("F1", "lead", "2024-06-01", amount=10, owner="Ann", source="Web"),
            opp("F2", "lead", "2024-06-01", amount=20, owner="Ann"),
            opp("F3", "lead", "2024-06-20", amount=40, owner="Bob", source="Web"),
            opp("W1", "won", "2024-05-01", closed_at="2024-06-05", amount=100, owner="Bob"),
            opp("L1", "lead", "2024-05-01", status="lost", closed_at="2024-06-06"),
        ),
        followups=touches(
            {
                "opportunity_id": "F1",
                "occurred_at": "2024-06-25",
                "channel": "phone",
                "next_action_due": "2024-06-28",
            },
            {"opportunity_id": "F2", "occurred_at": "2024-06-10", "channel": "email"},
            {"opportunity_id": "F2", "occurred_at": "2024-06-02", "channel": "email"},
            {"opportunity_id": "W1", "occurred_at": "2024-05-10", "channel": "visit"},
            {"opportunity_id": "W1", "occurred_at": "2024-05-20", "channel": "visit"},
            {"opportunity_id": "W1", "occurred_at": "2024-06-01", "channel": "meeting"},
            {"opportunity_id": "L1", "occurred_at": "2024-05-15", "channel": "phone"},
            {"opportunity_id": "F1", "occurred_at": "2024-07-02", "channel": "phone"},  # later
        ),
    )
    f = m["followups"]
    assert f["touches_in_period"] == 4  # F1 06-25, F2 06-10 and 06-02, W1 06-01
    assert f["touches_per_open_deal"] == 1.0  # 3 touches on 3 open deals
    assert f["channel_mix"] == [
        {"channel": "email", "touches": 2, "share": 0.5},
        {"channel": "meeting", "touches": 1, "share": 0.25},
        {"channel": "phone", "touches": 1, "share": 0.25},
    ]
    assert (f["silent_open_deals"], f["silent_open_amount"]) == (1, 20.0)
    assert f["overdue_next_actions"] == 1
    assert f["won_vs_lost"] == [
        {"state": "won", "deals": 1, "touches_per_deal": 3.0},
        {"state": "lost", "deals": 1, "touches_per_deal": 1.0},
    ]
    owners = by_key(m["segments"]["owner"], "value")
    assert (owners["Ann"]["open_count"], owners["Ann"]["open_amount"]) == (2, 30.0)
    assert (owners["Bob"]["won_count"], owners["Bob"]["won_amount"]) == (1, 100.0)
    assert owners["—"]["lost_count"] == 1  # L1 has no owner
    sources = by_key(m["segments"]["source"], "value")
    assert sources["Web"]["open_count"] == 2


def test_next_actions_due_on_the_periods_last_local_day_are_overdue_at_its_end():
    # Shanghai: June ends at 2024-07-01 00:00 local (06-30 16:00 UTC). A's next action was due
    # 06-30 (passed: overdue), B's is due 07-01 (not yet).
    shanghai = RunSettings(timezone="Asia/Shanghai")
    opps = typed(
        "opportunities",
        [opp("A", "lead", "2024-06-01"), opp("B", "lead", "2024-06-01")],
        shanghai,
    ).drop("_row")
    followups = typed(
        "followups",
        [
            {
                "opportunity_id": o,
                "occurred_at": "2024-06-25",
                "channel": "phone",
                "next_action_due": due,
            }
            for o, due in (("A", "2024-06-30"), ("B", "2024-07-01"))
        ],
        shanghai,
    ).drop("_row")
    m = metrics_for(opps, settings=shanghai, followups=followups)
    assert m["followups"]["overdue_next_actions"] == 1


def test_monte_carlo_range_of_the_open_pipeline():
    # O1 1000 at p 0.5, O2 2000 at p 0.6875, O3 no amount: totals 0 (15.6 %), 1000 (15.6 %),
    # 2000 (34.4 %), 3000 (34.4 %): P10 0, P50 2000, P90 3000; reaching 2000 is 68.75 % likely
    mc = forecast_world(target=2000)["forecast"]["monte_carlo"]
    assert (mc["p10"], mc["p50"], mc["p90"]) == (0.0, 2000.0, 3000.0)
    assert mc["p_hit_target"] == pytest.approx(0.6875, abs=0.02)
    assert forecast_world(target=2000)["forecast"]["monte_carlo"] == mc  # fixed seed
    assert forecast_world()["forecast"]["monte_carlo"]["p_hit_target"] is None


def test_target_decomposition():
    # target 10000, average won amount over W (1000, 2000, 3000) = 2000 -> 5 wins needed;
    # lead p_win 0.5 -> 10 entries; negotiation 0.6875 -> 7.27. Won deals went lead 02-01 ->
    # won 03-01 (29 days, 2024 is a leap year) and negotiation 02-15 -> won (15 days): enter
    # lead by 07-01 - 29 days = 06-02, negotiation by 06-16. Nothing won in June, so 10000
    # remains against a weighted pipeline of 1875: gap 8125, coverage 0.1875.
    t = forecast_world(target=10000)["targets"]
    assert (t["target"], t["won_needed"], t["remaining"]) == (10000, 5.0, 10000.0)
    stages = by_key(t["stages"])
    assert stages["lead"]["entries_needed"] == pytest.approx(10.0)
    assert stages["negotiation"]["entries_needed"] == pytest.approx(5 / 0.6875)
    assert (stages["lead"]["median_days_to_won"], stages["lead"]["latest_entry_date"]) == (
        29.0,
        "2024-06-02",
    )
    assert stages["negotiation"]["latest_entry_date"] == "2024-06-16"
    assert t["gap"] == pytest.approx(8125.0)
    assert t["coverage"] == pytest.approx(0.1875)
    assert forecast_world()["targets"] is None
