"""Headline figures, velocity and comparisons with earlier periods. Expectations computed by hand
in the comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

import pytest

from tests.helpers import (
    figures,
    opp,
    opportunities,
    step,
)


def test_headline_figures_and_velocity():
    m = figures(
        opportunities(
            opp("W1", "won", "2024-05-01", closed_at="2024-06-10", amount=1000),  # cycle 40
            opp("W2", "won", "2024-06-01", closed_at="2024-06-21", amount=3000),  # cycle 20
            opp("W3", "won", "2024-06-05", closed_at="2024-06-15"),  # cycle 10, no amount
            opp("L1", "lead", "2024-06-01", status="lost", closed_at="2024-06-20"),
            opp("L2", "lead", "2024-04-01", status="lost", closed_at="2024-05-20"),  # in W only
            opp("O1", "proposal", "2024-06-01", amount=700),
        ),
        of=("kpis",),
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
    m = figures(
        opportunities(
            opp("A1", "won", "2024-05-01", closed_at="2024-05-10", amount=100),
            opp("A2", "won", "2024-06-01", closed_at="2024-06-02", amount=300),
            opp("A3", "won", "2023-06-01", closed_at="2023-06-02", amount=50),
        ),
        of=("comparison",),
    )
    previous = m["comparison"]["previous"]
    assert previous["period"]["label"] == "2024-05"
    assert previous["kpis"]["won_amount"] == 100.0
    assert previous["change"]["won_amount"] == 200.0
    year_ago = m["comparison"]["year_ago"]
    assert year_ago["period"]["label"] == "2023-06"
    assert year_ago["change"]["won_amount"] == 250.0


def test_won_deal_that_keeps_its_open_stage_is_won_at_closed_at():
    # Pipedrive keeps the stage a deal was won from: negotiation, status won, won on 06-10
    m = figures(
        opportunities(
            opp("P", "negotiation", "2024-05-01", status="won", closed_at="2024-06-10", amount=10)
        ),
        of=("conversion", "kpis"),
    )
    assert (m["kpis"]["won_count"], m["kpis"]["won_amount"]) == (1, 10.0)
    assert step(m, "negotiation", "won")["entries_to"] == 1
    assert m["kpis"]["median_cycle_days"] == pytest.approx(40.0)
