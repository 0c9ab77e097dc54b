"""Deal states at another instant than the period end, and what the backtest reads of them:
win probabilities counted from how far each deal got, and Monte Carlo ranges drawn together."""

from __future__ import annotations

import numpy as np
import polars as pl

from funnel_reports.schemas.vocabulary import LOST, WON
from funnel_reports.transforms.forecast.monte_carlo import (
    OpenAndNew,
    monte_carlo,
    monte_carlo_of_runs,
)
from funnel_reports.transforms.marts.win_probabilities import (
    overall_win_rate,
    resolved_in_window,
    smoothed_probabilities,
    stage_probabilities,
)
from funnel_reports.transforms.periods import Window, parse_period
from tests.helpers import history, opp, opportunities, path, world


def mixed_world():
    """W1 won through every stage, L1 lost from qualified, K1 skipped to proposal and was lost,
    O1 is open in negotiation, N1 was created after May."""
    opps = [
        opp("W1", "won", "2024-02-01", closed_at="2024-04-01", amount=100),
        opp("L1", "qualified", "2024-02-01", status="lost", closed_at="2024-03-20"),
        opp("K1", "proposal", "2024-03-01", status="lost", closed_at="2024-05-20"),
        opp("O1", "negotiation", "2024-03-01", amount=50),
        opp("N1", "lead", "2024-06-10"),
    ]
    rows = path(
        "W1",
        ("lead", "2024-02-01"),
        ("qualified", "2024-02-10"),
        ("proposal", "2024-03-01"),
        ("negotiation", "2024-03-10"),
        ("won", "2024-04-01"),
    )
    rows += path("L1", ("lead", "2024-02-01"), ("qualified", "2024-02-15"))
    rows += path("K1", ("lead", "2024-03-01"), ("proposal", "2024-03-05"))
    rows += path("O1", ("lead", "2024-03-01"), ("negotiation", "2024-04-10"))
    rows += path("N1", ("lead", "2024-06-10"))
    return world(opportunities(*opps), history(*rows))


def test_deal_states_at_the_period_end_are_the_derived_ones():
    w = mixed_world()
    states = w.derived.states_at(w.opportunities, funnel=w.settings.funnel).states(w.period.end)
    by_id = {r["opportunity_id"]: r for r in states.collect().to_dicts()}
    derived = {r["opportunity_id"]: r for r in w.derived.states.to_dicts()}
    assert by_id.keys() == derived.keys()
    for oid, state in by_id.items():
        assert {k: derived[oid][k] for k in state if k != "reached_index"} == {
            k: v for k, v in state.items() if k != "reached_index"
        }
    # the furthest stage reached: won is 4, qualified 1, proposal 2, negotiation 3, lead 0
    assert {oid: s["reached_index"] for oid, s in by_id.items()} == {
        "W1": 4,
        "L1": 1,
        "K1": 2,
        "O1": 3,
        "N1": 0,
    }


def probabilities_from_reaches(reaches, states, **settings):
    """The definition of docs/metrics.md read literally: among the deals resolved in W, those with
    a reach of the stage, won and lost."""
    resolved = resolved_in_window(states, window=settings["window"])
    counts = (
        reaches.join(resolved.select("opportunity_id", "state"), on="opportunity_id")
        .group_by("stage")
        .agg(
            (pl.col("state") == WON).sum().alias("won"),
            (pl.col("state") == LOST).sum().alias("lost"),
        )
    )
    return smoothed_probabilities(
        counts,
        overall_win_rate(states, window=settings["window"]),
        funnel=settings["funnel"],
        smoothing_strength=settings["smoothing_strength"],
        min_resolved=settings["min_resolved"],
    )


def test_win_probabilities_from_how_far_deals_got_equal_those_from_their_reaches():
    w = mixed_world()
    states_at = w.derived.states_at(w.opportunities, funnel=w.settings.funnel)
    for label in ("2024-03", "2024-04", "2024-05", "2024-06"):
        period = parse_period(label, w.settings.timezone)
        settings = {
            "funnel": w.settings.funnel,
            "window": Window(period, w.settings.window_months),
            "smoothing_strength": w.settings.smoothing_strength,
            "min_resolved": 2,
        }
        states = states_at.states(period.end)
        expected = probabilities_from_reaches(states_at.reaches(period.end), states, **settings)
        assert stage_probabilities(states, **settings).equals(expected)


def test_monte_carlo_runs_drawn_together_give_each_run_its_own_figures():
    rng = np.random.default_rng(7)
    runs = [
        OpenAndNew(
            rng.integers(0, 5000, size) * 1.0 + 0.25,
            [rng.random(size), rng.random(size) * 0.2],
            new_deal_count,
            rng.random(30) * 1000,
        )
        for size, new_deal_count in ((5000, 3.0), (4097, 0.0), (12, 40.0))
    ]
    alone = [
        [
            monte_carlo(
                run.amounts,
                p,
                new_deal_count=run.new_deal_count,
                new_deal_amounts=run.new_deal_amounts,
                target=20_000.0,
                draws=301,
            )
            for p in run.probabilities
        ]
        for run in runs
    ]
    assert monte_carlo_of_runs(runs, target=20_000.0, draws=301) == alone


def test_monte_carlo_wins_are_those_of_single_precision_uniforms_of_the_seed():
    """Deal i is won in draw j when the (i·draws + j)-th float32 uniform of the seed lies below
    its chance: the totals of a straightforward draw, chunk by chunk, without new deals."""
    rng = np.random.default_rng(3)
    amounts, chances = rng.random(4200) * 1000, rng.random(4200).astype(np.float32)
    draws, seed = 7, 11
    uniforms = np.random.default_rng(seed)
    totals = np.zeros(draws)
    for start in range(0, amounts.size, 4096):
        p = chances[start : start + 4096]
        wins = uniforms.random((p.size, draws), dtype=np.float32) < p[:, None]
        totals += amounts[start : start + 4096] @ wins
    p10, p50, p90 = np.quantile(totals, [0.1, 0.5, 0.9])
    figures = monte_carlo(
        amounts,
        chances.astype(np.float64),
        new_deal_count=0.0,
        new_deal_amounts=np.zeros(0),
        target=None,
        draws=draws,
        seed=seed,
    )
    assert (figures["p10"], figures["p50"], figures["p90"]) == (p10, p50, p90)
