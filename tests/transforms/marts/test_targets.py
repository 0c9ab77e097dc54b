"""Target decomposition on literal deals, every figure computed by hand."""

from __future__ import annotations

import polars as pl
import pytest

from tests.helpers import figures, history, opp, opportunities, path

# June 2024, W = [2023-07-01, 2024-07-01). Two deals won in W: W1 reached proposal 10 days
# and qualified 20 days before its win (amount 100); W2 reached qualified 4 days before its
# win (amount 300). L1 was lost at qualified; O1 is an open proposal of 500.
DEALS = opportunities(
    opp("W1", "won", "2024-05-01", closed_at="2024-06-21", amount=100),
    opp("W2", "won", "2024-06-01", closed_at="2024-06-15", amount=300),
    opp("L1", "qualified", "2024-05-02", status="lost", closed_at="2024-06-10", amount=50),
    opp("O1", "proposal", "2024-06-02", amount=500),
)
HISTORY = history(
    *path("W1", ("lead", "2024-05-01"), ("qualified", "2024-06-01"), ("proposal", "2024-06-11")),
    *path("W1", ("won", "2024-06-21")),
    *path("W2", ("lead", "2024-06-01"), ("qualified", "2024-06-11"), ("won", "2024-06-15")),
    *path("L1", ("lead", "2024-05-02"), ("qualified", "2024-05-03")),
    *path("O1", ("lead", "2024-06-02"), ("proposal", "2024-06-03")),
)


def targets(target: float) -> dict:
    return figures(DEALS, HISTORY, of=("targets",), target=target)["targets"]


def test_what_is_left_and_how_many_wins_it_takes():
    t = targets(1000.0)
    # won 400 in June; the average won amount over W is (100 + 300) / 2 = 200
    assert (t["target"], t["won_amount"], t["remaining"]) == (1000.0, 400.0, 600.0)
    assert t["won_needed"] == 1000.0 / 200.0


def test_a_target_already_reached_leaves_nothing_and_no_coverage():
    t = targets(300.0)
    assert t["remaining"] == 0.0
    assert t["coverage"] is None
    assert t["gap"] == pytest.approx(
        0.0 - figures(DEALS, HISTORY, of=("forecast",))["forecast"]["weighted_pipeline"]
    )


def test_gap_and_coverage_against_the_weighted_pipeline():
    t = targets(1000.0)
    weighted = figures(DEALS, HISTORY, of=("forecast",))["forecast"]["weighted_pipeline"]
    assert t["gap"] == pytest.approx(600.0 - weighted)
    assert t["coverage"] == pytest.approx(weighted / 600.0)


def test_each_stage_needs_wins_over_its_win_probability_and_a_latest_entry_date():
    t = targets(1000.0)
    rows = {row["stage"]: row for row in t["stages"]}
    p_win = {
        row["stage"]: row["p_win"]
        for row in figures(DEALS, HISTORY, of=("forecast",))["forecast"]["stage_probabilities"]
    }
    for stage in ("lead", "qualified", "proposal"):
        assert rows[stage]["entries_needed"] == pytest.approx(5.0 / p_win[stage])
    # days from reaching the stage to the win, median over W1 and W2
    assert rows["qualified"]["median_days_to_won"] == pytest.approx((20 + 4) / 2)
    # W1 10 days; W2 skipped proposal, which counts as reached when it won: 0 days
    assert rows["proposal"]["median_days_to_won"] == pytest.approx((10 + 0) / 2)
    assert rows["lead"]["median_days_to_won"] == pytest.approx((51 + 14) / 2)
    # the period ends 2024-07-01: 12 whole days before it, 5 days, 32 days (32.5 floored)
    assert rows["qualified"]["latest_entry_date"] == "2024-06-19"
    assert rows["proposal"]["latest_entry_date"] == "2024-06-26"
    assert rows["lead"]["latest_entry_date"] == "2024-05-30"
    # negotiation: both wins skipped it, so both reached it when they won
    assert rows["negotiation"]["median_days_to_won"] == pytest.approx(0.0)


def test_no_target_no_section():
    assert figures(DEALS, HISTORY, of=("targets",))["targets"] is None


def test_without_wins_in_w_no_win_count_can_be_asked():
    open_only = opportunities(opp("O1", "proposal", "2024-06-02", amount=500))
    t = figures(open_only, of=("targets",), target=1000.0)["targets"]
    assert t["won_needed"] is None
    assert all(row["entries_needed"] is None for row in t["stages"])
    assert pl.Series([row["latest_entry_date"] for row in t["stages"]]).null_count() == len(
        t["stages"]
    )
