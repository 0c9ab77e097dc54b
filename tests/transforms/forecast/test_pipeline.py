"""Win probabilities, the weighted pipeline, the Monte Carlo range and the target decomposition.
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


def forecast_world(
    target: float | None = None, next_target: float | None = None
) -> dict[str, object]:
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
    return figures(
        opportunities(*opps),
        history(*rows),
        target=target,
        next_target=next_target,
        of=("forecast", "targets"),
    )


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


def test_weighted_pipeline_and_its_part_expected_to_close_next_period():
    f = forecast_world()["forecast"]
    # O1: 1000 * 0.5 = 500; O2: 2000 * 0.6875 = 1375; O3 has no amount (adds 0, unpriced)
    assert f["weighted_pipeline"] == pytest.approx(1875.0)
    assert f["unpriced_count"] == 1
    assert f["next_period_label"] == "2024-07"
    # the stage-weighted baseline: only O2 is expected to close in July
    assert f["next_period_by_method"]["stage_weighted"] == pytest.approx(1375.0)
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
    p = by_key(
        figures(opportunities(*opps), history(*rows), of=("forecast",))["forecast"][
            "stage_probabilities"
        ]
    )
    assert (p["lead"]["won"], p["lead"]["lost"]) == (12, 8)
    assert p["lead"]["insufficient_history"] is False
    # p̄ = 0.6: (12 + 3) / (20 + 5) = 0.6
    assert p["lead"]["p_win"] == pytest.approx(0.6)
    assert p["qualified"]["insufficient_history"] is True  # won deals skipped it: 12 < 20


def test_the_chance_to_reach_a_target_is_against_the_next_period_s_target():
    """The range is July's, so its chance is against July's target: June's target alone
    gives none, a July target beyond any draw gives 0 and one below every draw 1, and June's
    target beside July's changes nothing."""
    june_only = forecast_world(target=10000)["forecast"]["monte_carlo"]
    assert (june_only["target"], june_only["p_hit_target"]) == (None, None)
    assert june_only["p50"] is not None  # there is a range: only the target is missing
    beyond = forecast_world(next_target=1e12)["forecast"]["monte_carlo"]
    assert (beyond["target"], beyond["p_hit_target"]) == (1e12, 0.0)
    # 500 lies below the range (its P10 too): every draw reaches it
    assert june_only["p10"] >= 500
    july = forecast_world(next_target=500)["forecast"]["monte_carlo"]
    assert (july["target"], july["p_hit_target"]) == (500, 1.0)
    assert forecast_world(target=1e12, next_target=500)["forecast"]["monte_carlo"] == july


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
