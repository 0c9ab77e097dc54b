"""`stage_probabilities` and `overall_win_rate`: the smoothed win probability from each open
stage, over the deals resolved in W = [2023-07-01, 2024-07-01) (period 2024-06)."""

from __future__ import annotations

import pytest

from funnel_reports.transforms.marts.win_probabilities import (
    overall_win_rate,
    stage_probabilities,
)
from tests.helpers import SETTINGS, history, opp, opportunities, path, world

FUNNEL = SETTINGS.funnel


def resolved_world():
    """W1 won through every stage; W2 won from lead, skipping the rest (a skip counts as
    reached); L1 lost in proposal, L2 lost in lead; L3 lost before W; O1 still open."""
    deals = opportunities(
        opp("W1", "won", "2024-01-01", status="won", closed_at="2024-03-01"),
        opp("W2", "won", "2024-01-01", status="won", closed_at="2024-02-01"),
        opp("L1", "proposal", "2024-01-01", status="lost", closed_at="2024-04-01"),
        opp("L2", "lead", "2024-01-01", status="lost", closed_at="2024-05-01"),
        opp("L3", "qualified", "2023-01-01", status="lost", closed_at="2023-05-01"),
        opp("O1", "proposal", "2024-01-01"),
    )
    steps = history(
        *path(
            "W1",
            ("lead", "2024-01-01"),
            ("qualified", "2024-01-10"),
            ("proposal", "2024-01-20"),
            ("negotiation", "2024-02-01"),
            ("won", "2024-03-01"),
        ),
        *path("W2", ("lead", "2024-01-01"), ("won", "2024-02-01")),
        *path(
            "L1", ("lead", "2024-01-01"), ("qualified", "2024-02-01"), ("proposal", "2024-03-01")
        ),
        *path("L2", ("lead", "2024-01-01")),
        *path("L3", ("lead", "2023-01-01"), ("qualified", "2023-02-01")),
        *path("O1", ("lead", "2024-01-01"), ("proposal", "2024-02-01")),
    )
    return world(deals, steps)


def probabilities(w, *, strength=5.0, min_resolved=3):
    return {
        row["stage"]: row
        for row in stage_probabilities(
            w.states,
            funnel=FUNNEL,
            window=w.window,
            smoothing_strength=strength,
            min_resolved=min_resolved,
        ).to_dicts()
    }


def test_p_bar_is_the_share_won_among_the_deals_resolved_in_w():
    w = resolved_world()
    assert overall_win_rate(w.states, window=w.window) == 0.5  # 2 of 4


def test_each_stage_counts_the_resolved_deals_that_reached_it_and_smooths_toward_p_bar():
    p = probabilities(resolved_world())
    assert list(p) == ["lead", "qualified", "proposal", "negotiation"]
    counts = {stage: (row["won"], row["lost"]) for stage, row in p.items()}
    assert counts == {
        "lead": (2, 2),
        "qualified": (2, 1),
        "proposal": (2, 1),
        "negotiation": (2, 0),
    }
    # (won + 5 x 0.5) / (won + lost + 5)
    assert p["lead"]["p_win"] == pytest.approx(4.5 / 9)
    assert p["qualified"]["p_win"] == pytest.approx(4.5 / 8)
    assert p["proposal"]["p_win"] == pytest.approx(4.5 / 8)
    assert p["negotiation"]["p_win"] == pytest.approx(4.5 / 7)


def test_a_stage_with_fewer_resolved_deals_than_the_minimum_is_insufficient_history():
    p = probabilities(resolved_world(), min_resolved=3)
    assert {s: row["insufficient_history"] for s, row in p.items()} == {
        "lead": False,
        "qualified": False,
        "proposal": False,
        "negotiation": True,  # 2 resolved
    }


def test_without_smoothing_the_probability_is_the_raw_share_won():
    p = probabilities(resolved_world(), strength=0.0)
    assert [p[s]["p_win"] for s in p] == [0.5, pytest.approx(2 / 3), pytest.approx(2 / 3), 1.0]


def test_nothing_resolved_in_w_is_no_probability_and_no_p_bar():
    w = world(opportunities(opp("O1", "lead", "2024-05-01")))
    assert overall_win_rate(w.states, window=w.window) is None
    p = probabilities(w)
    assert all(row["p_win"] is None and row["insufficient_history"] for row in p.values())
