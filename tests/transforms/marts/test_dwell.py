"""Time in stage: completed and open visits, Kaplan–Meier, the window, repeated stage rows.
Expectations computed by hand in the comments.

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
)


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
    q = by_key(figures(opportunities(*opps), history(*rows), of=("dwell",))["dwell"])["qualified"]
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
    m = figures(
        opportunities(opp("K", "negotiation", "2024-05-20", status="lost", closed_at="2024-06-04")),
        history(*path("K", ("lead", "2024-05-20"), ("negotiation", "2024-06-01"))),
        of=("dwell", "kpis"),
    )
    negotiation = by_key(m["dwell"])["negotiation"]
    assert negotiation["completed_visits"] == 1
    assert negotiation["mean_days"] == pytest.approx(3.0)
    assert negotiation["open_visits"] == 0
    assert m["kpis"]["lost_count"] == 1


def test_completed_visits_outside_the_window_are_left_out():
    # A lead visit that ended in May 2023 is before W = [2023-07-01, 2024-07-01)
    m = figures(
        opportunities(opp("Z", "qualified", "2023-05-01")),
        history(*path("Z", ("lead", "2023-05-01"), ("qualified", "2023-05-03"))),
        of=("dwell",),
    )
    dwell = by_key(m["dwell"])
    assert dwell["lead"]["completed_visits"] == 0
    assert dwell["qualified"]["open_visits"] == 1  # open visits count whatever their start


def test_a_row_repeating_the_current_stage_is_no_new_visit():
    # R entered proposal on 06-01; a second proposal row on 06-20 only changed the amount.
    m = figures(
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
        of=("dwell", "kpis", "stalls"),
    )
    proposal = by_key(m["dwell"])["proposal"]
    assert (proposal["completed_visits"], proposal["open_visits"]) == (0, 1)
    assert proposal["open_median_age_days"] == pytest.approx(30.0)  # since 06-01, not 06-20
    assert m["stalls"]["deals"][0]["days_in_stage"] == pytest.approx(30.0)
    assert m["kpis"]["open_amount"] == 300.0  # the latest amount still counts
