"""Stage conversion on literal funnels: skipped stages, regressions, losses from each stage,
immature cohorts. Expectations computed by hand in the comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

import pytest

from tests.helpers import (
    by_key,
    figures,
    history,
    opp,
    opportunities,
    path,
    step,
)


def test_skipped_stage_counts_as_reached():
    # A: lead 06-02 -> proposal 06-10 (qualified skipped). Reached: lead, qualified, proposal.
    m = figures(
        opportunities(opp("A", "proposal", "2024-06-02", amount=500)),
        history(*path("A", ("lead", "2024-06-02"), ("proposal", "2024-06-10"))),
        of=("conversion", "funnel"),
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
    m = figures(
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
        of=("conversion", "dwell", "funnel"),
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
    m = figures(
        opportunities(opp("C", "qualified", "2024-05-20"), opp("D", "qualified", "2024-06-03")),
        history(
            *path("C", ("lead", "2024-05-20"), ("qualified", "2024-06-02")),
            *path("D", ("lead", "2024-06-03"), ("qualified", "2024-06-04")),
        ),
        of=("conversion",),
    )
    row = step(m, "lead", "qualified")
    assert (row["entries_from"], row["entries_to"]) == (1, 2)
    assert row["flow_rate"] == 2.0


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
    m = figures(opportunities(*opps), history(*rows), of=("conversion", "kpis"))
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
    m = figures(
        opportunities(
            opp("N1", "won", "2024-06-01", closed_at="2024-06-10"),
            opp("N2", "negotiation", "2024-06-01"),
            opp("N3", "negotiation", "2024-06-01"),
        ),
        history(*rows),
        of=("conversion",),
    )
    row = step(m, "negotiation", "won")
    assert (row["cohort_size"], row["advanced"], row["lost"], row["open"]) == (3, 1, 0, 2)
    assert row["is_immature"] is True
    assert row["resolved_rate"] == 1.0
    assert step(m, "won", "retention")["resolved_rate"] is None
    assert step(m, "won", "retention")["lost"] == 0


REVERSED = (
    opportunities(opp("R", "won", "2024-06-01", status="lost", closed_at="2024-07-05")),
    history(
        *path(
            "R",
            ("lead", "2024-06-01"),
            ("negotiation", "2024-06-05"),
            ("won", "2024-06-10"),
            ("lost", "2024-07-05"),  # the CRM moved Closed Won to Closed Lost
        )
    ),
)


def test_a_reversed_win_is_won_until_its_loss():
    # as of 07-01, R is a win of June: one won, none lost
    m = figures(*REVERSED, of=("kpis", "conversion"), period="2024-06")
    assert (m["kpis"]["won_count"], m["kpis"]["lost_count"]) == (1, 0)
    assert step(m, "won", "retention")["lost"] == 0
    assert step(m, "won", "retention")["open"] == 1  # won, not yet retained


def test_a_reversed_win_is_lost_from_its_loss_on_and_lost_after_won():
    # as of 08-01, R is a loss of July; the won -> retention row counts it as lost
    m = figures(*REVERSED, of=("kpis", "conversion"), period="2024-07")
    assert (m["kpis"]["won_count"], m["kpis"]["lost_count"]) == (0, 1)
    row = step(m, "won", "retention")
    assert (row["cohort_size"], row["advanced"], row["lost"], row["open"]) == (1, 0, 1, 0)
    assert row["resolved_rate"] is None  # retention is not a resolution


def test_a_deal_whose_history_holds_only_its_loss_enters_from_its_own_fields():
    # L's only history row is its loss: its entries come from its fields (lead at 06-01), so
    # it reached lead and counts as lost there; W went lead -> won.
    m = figures(
        opportunities(
            opp("L", "lead", "2024-06-01", status="lost", closed_at="2024-06-15"),
            opp("W", "won", "2024-06-02", closed_at="2024-06-12"),
        ),
        history(
            ("L", "lost", "2024-06-15"), *path("W", ("lead", "2024-06-02"), ("won", "2024-06-12"))
        ),
        of=("conversion", "forecast", "kpis"),
    )
    lead = step(m, "lead", "qualified")
    assert (lead["cohort_size"], lead["advanced"], lead["lost"]) == (2, 1, 1)
    # every resolved deal reached lead: its p_win is the overall win rate, 1 / 2
    assert m["kpis"]["window"]["win_rate"] == m["forecast"]["p_bar"] == 0.5
    lead_p = by_key(m["forecast"]["stage_probabilities"])["lead"]
    assert (lead_p["won"], lead_p["lost"], lead_p["p_win"]) == (1, 1, 0.5)
