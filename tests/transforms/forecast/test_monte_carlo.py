"""The Monte Carlo range, unit by unit: the generator where the deals' draws leave it, the
deals' wins chunk by chunk, certain and impossible deals, independent draws, the new deals
drawn on from the seed, the spread, and models or runs without chances.

Expectations are exact where the draws do not matter (chances 0 or 1, one new-deal amount)
or follow from the seed's own stream; where they are random they are probabilities computed
by hand, held to four standard errors of the draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from funnel_reports.transforms.forecast.monte_carlo import (
    CHUNK,
    OpenAndNew,
    deal_draws,
    generator_at,
    monte_carlo,
    monte_carlo_of_models,
    monte_carlo_of_runs,
)

NONE = {"p10": None, "p50": None, "p90": None, "p_hit_target": None, "draws": 0, "spread": 1.0}


def within_four_errors(share: float | None, p: float, draws: int) -> bool:
    assert share is not None
    return abs(share - p) <= 4 * math.sqrt(p * (1 - p) / draws)


def hit(
    amounts: list[float],
    chances: list[float],
    target: float,
    *,
    draws: int,
    new_deal_count: float = 0.0,
    new_deal_amounts: tuple[float, ...] = (),
) -> float | None:
    """The share of draws reaching `target`."""
    figures = monte_carlo(
        np.array(amounts),
        np.array(chances),
        new_deal_count=new_deal_count,
        new_deal_amounts=np.array(new_deal_amounts),
        target=target,
        draws=draws,
    )
    return figures["p_hit_target"]


# --- the generator


@pytest.mark.parametrize("position", [0, 1, 6, 7])
def test_the_generator_at_a_position_continues_the_seed_s_single_precision_stream(
    position: int,
) -> None:
    """After `position` float32 uniforms, an odd count leaving half a 64-bit step behind."""
    stream = np.random.Generator(np.random.PCG64(11)).random(position + 5, dtype=np.float32)
    after = generator_at(position, seed=11).random(5, dtype=np.float32)
    assert after.tolist() == stream[position:].tolist()


# --- the deals' wins, chunk by chunk


def test_a_certain_deal_is_won_in_every_draw_and_an_impossible_one_in_none() -> None:
    [[brought]] = list(
        deal_draws([(np.array([10.0, 20.0]), [np.array([1.0, 0.0])])], draws=4, seed=1)
    )
    assert brought is not None
    assert brought[0].tolist() == [10.0, 10.0, 10.0, 10.0]


def test_each_model_of_a_run_brings_its_own_wins() -> None:
    runs = [(np.array([10.0, 20.0]), [np.array([1.0, 0.0]), np.array([0.0, 1.0])])]
    [[brought]] = list(deal_draws(runs, draws=3, seed=1))
    assert brought is not None
    assert [b.tolist() for b in brought] == [[10.0] * 3, [20.0] * 3]


def test_a_run_whose_deals_all_came_in_earlier_chunks_brings_none() -> None:
    """CHUNK deals a chunk: a run of CHUNK + 1 deals takes two chunks, one of 3 deals one."""
    long = np.ones(CHUNK + 1)
    runs = [(long, [long]), (np.array([5.0, 5.0, 5.0]), [np.ones(3)])]
    chunks = list(deal_draws(runs, draws=2, seed=3))
    assert len(chunks) == 2
    first, second = chunks
    assert first[0] is not None and first[1] is not None
    assert [b.tolist() for b in first[0]] == [[float(CHUNK)] * 2]
    assert [b.tolist() for b in first[1]] == [[15.0, 15.0]]
    assert second[1] is None
    assert second[0] is not None and [b.tolist() for b in second[0]] == [[1.0, 1.0]]


def test_no_deal_brings_no_chunk() -> None:
    assert list(deal_draws([(np.zeros(0), [np.zeros(0)])], draws=5, seed=1)) == []


# --- the range of the open deals


def test_certain_deals_make_a_range_of_one_value() -> None:
    figures = monte_carlo(
        np.array([100.0, 250.0, 40.0]),
        np.array([1.0, 1.0, 0.0]),
        new_deal_count=0.0,
        new_deal_amounts=np.zeros(0),
        target=350.0,
        draws=50,
    )
    assert figures == {
        "p10": 350.0,
        "p50": 350.0,
        "p90": 350.0,
        "p_hit_target": 1.0,
        "draws": 50,
        "spread": 1.0,
    }


def test_a_target_above_every_draw_is_never_hit() -> None:
    assert hit([100.0, 250.0], [1.0, 1.0], 350.01, draws=50) == 0.0


def test_without_a_target_there_is_no_chance_of_hitting_it() -> None:
    figures = monte_carlo(
        np.array([100.0]),
        np.array([1.0]),
        new_deal_count=0.0,
        new_deal_amounts=np.zeros(0),
        target=None,
        draws=10,
    )
    assert figures["p_hit_target"] is None and figures["p50"] == 100.0


def test_no_open_deal_and_no_new_deal_is_a_range_of_zero() -> None:
    figures = monte_carlo(
        np.zeros(0), np.zeros(0), new_deal_count=0.0, new_deal_amounts=np.zeros(0), target=1.0
    )
    assert (figures["p10"], figures["p50"], figures["p90"], figures["p_hit_target"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )


def test_a_deal_is_won_in_about_its_chance_of_the_draws() -> None:
    assert within_four_errors(hit([1.0], [0.3], 1.0, draws=5000), 0.3, 5000)


def test_deals_are_won_independently_of_each_other() -> None:
    """Two deals at 1/2 bringing 1 and 2: all 3 with 1/4 (1/2 were they drawn together),
    at least 1 with 3/4, at least 2 with 1/2."""
    for target, p in ((3.0, 0.25), (1.0, 0.75), (2.0, 0.5)):
        share = hit([1.0, 2.0], [0.5, 0.5], target, draws=5000)
        assert within_four_errors(share, p, 5000), (target, share)


def test_deals_in_different_chunks_are_independent_too() -> None:
    """The first deal and the first of the next chunk, each at 1/2, the rest impossible."""
    chances = [0.0] * (CHUNK + 1)
    chances[0] = chances[CHUNK] = 0.5
    amounts = [0.0] * (CHUNK + 1)
    amounts[0] = amounts[CHUNK] = 1.0
    assert within_four_errors(hit(amounts, chances, 2.0, draws=2000), 0.25, 2000)


def test_the_same_seed_gives_the_same_figures() -> None:
    one = monte_carlo(
        np.array([100.0, 50.0]),
        np.array([0.4, 0.7]),
        new_deal_count=1.5,
        new_deal_amounts=np.array([10.0, 30.0]),
        target=100.0,
        draws=500,
        seed=5,
    )
    again = monte_carlo(
        np.array([100.0, 50.0]),
        np.array([0.4, 0.7]),
        new_deal_count=1.5,
        new_deal_amounts=np.array([10.0, 30.0]),
        target=100.0,
        draws=500,
        seed=5,
    )
    assert one == again


def test_chances_with_a_nan_give_no_range() -> None:
    figures = monte_carlo(
        np.array([100.0, 50.0]),
        np.array([0.5, np.nan]),
        new_deal_count=2.0,
        new_deal_amounts=np.array([10.0]),
        target=10.0,
    )
    assert figures == NONE


def test_the_spread_keeps_a_range_s_spread_even_when_it_is_nothing_to_widen() -> None:
    figures = monte_carlo(
        np.array([100.0]),
        np.array([1.0]),
        new_deal_count=0.0,
        new_deal_amounts=np.zeros(0),
        target=None,
        spread=3.0,
        draws=10,
    )
    assert (figures["p10"], figures["p50"], figures["p90"], figures["spread"]) == (
        100.0,
        100.0,
        100.0,
        3.0,
    )


def test_a_spread_moves_each_quantile_that_many_times_as_far_from_the_median() -> None:
    """Every draw is moved so: quantiles, which interpolate linearly, follow; a draw moved
    below 0 is 0 (nothing wins less): P10 20 around P50 110, 2.5 times as far, is −115: 0."""

    def drawn(spread: float) -> dict[str, float | None]:
        return monte_carlo(
            np.array([100.0, 60.0]),
            np.array([0.3, 0.6]),
            new_deal_count=2.0,
            new_deal_amounts=np.array([10.0, 40.0]),
            target=None,
            spread=spread,
            draws=999,
            seed=9,
        )

    plain, wide = drawn(1.0), drawn(2.5)
    p10, p50, p90 = plain["p10"], plain["p50"], plain["p90"]
    assert p10 is not None and p50 is not None and p90 is not None
    assert p10 < p50 < p90  # a range to widen
    assert wide["p50"] == pytest.approx(p50)
    assert (p10, p50) == (20.0, 110.0) and wide["p10"] == 0.0
    assert drawn(1.2)["p10"] == pytest.approx(p50 + 1.2 * (p10 - p50))  # 110 − 108 = 2
    assert wide["p90"] == pytest.approx(p50 + 2.5 * (p90 - p50))
    assert wide["spread"] == 2.5


# --- new deals


def test_new_deals_draw_a_poisson_count_from_the_seed_after_the_deals_draws() -> None:
    """One certain deal of 10 and five draws take five uniforms (an odd count); the new
    deals, 1 each, then add the seed's next five Poisson counts."""
    stream = np.random.Generator(np.random.PCG64(7))
    stream.random(5, dtype=np.float32)
    counts = stream.poisson(2.0, 5)
    figures = monte_carlo(
        np.array([10.0]),
        np.array([1.0]),
        new_deal_count=2.0,
        new_deal_amounts=np.array([1.0]),
        target=None,
        draws=5,
        seed=7,
    )
    p10, p50, p90 = np.quantile(10.0 + counts, [0.1, 0.5, 0.9])
    assert (figures["p10"], figures["p50"], figures["p90"]) == (p10, p50, p90)


def test_many_new_deals_drawn_in_slices_are_each_counted_once() -> None:
    """A mean of 1,000 new deals over 5,000 draws is drawn in slices of 2,000 draws: the
    totals are still the seed's 5,000 Poisson counts."""
    counts = np.random.Generator(np.random.PCG64(4)).poisson(1000.0, 5000)
    figures = monte_carlo(
        np.zeros(0),
        np.zeros(0),
        new_deal_count=1000.0,
        new_deal_amounts=np.array([1.0]),
        target=1000.0,
        draws=5000,
        seed=4,
    )
    assert (figures["p10"], figures["p50"], figures["p90"]) == tuple(
        np.quantile(counts, [0.1, 0.5, 0.9])
    )
    assert figures["p_hit_target"] == float(np.mean(counts >= 1000))


def test_at_least_one_new_deal_comes_with_one_minus_e_to_the_minus_mean() -> None:
    """A certain 100 and new deals of 100, a mean of 1: reaching 200 is P(N >= 1) = 1 - 1/e."""
    share = hit(
        [100.0],
        [1.0],
        200.0,
        new_deal_count=1.0,
        new_deal_amounts=(100.0,),
        draws=5000,
    )
    assert within_four_errors(share, 1 - math.exp(-1), 5000)


def test_new_deals_without_amounts_to_draw_from_bring_nothing() -> None:
    figures = monte_carlo(
        np.array([100.0]),
        np.array([1.0]),
        new_deal_count=3.0,
        new_deal_amounts=np.zeros(0),
        target=None,
        draws=20,
    )
    assert (figures["p10"], figures["p90"]) == (100.0, 100.0)


# --- several models, several runs


def test_each_model_gets_the_figures_it_would_get_alone_and_a_nan_model_none() -> None:
    amounts, new_amounts = np.array([100.0, 60.0, 30.0]), np.array([20.0])
    models = [np.array([0.2, 0.5, 0.9]), np.array([0.5, np.nan, 0.1]), np.array([0.7, 0.1, 0.4])]

    def alone(chances: np.ndarray) -> dict[str, float | None]:
        return monte_carlo(
            amounts,
            chances,
            new_deal_count=0.5,
            new_deal_amounts=new_amounts,
            target=100.0,
            draws=300,
            seed=2,
        )

    together = monte_carlo_of_models(
        amounts,
        models,
        new_deal_count=0.5,
        new_deal_amounts=new_amounts,
        target=100.0,
        draws=300,
        seed=2,
    )
    assert together == [alone(models[0]), NONE, alone(models[2])]
    assert together[0] != together[2]  # the models differ


def test_a_run_without_chances_changes_no_other_run_s_figures() -> None:
    known = OpenAndNew(np.array([100.0, 60.0]), [np.array([0.3, 0.8])], 1.0, np.array([5.0]))
    unknown = OpenAndNew(np.arange(5000.0), [np.array([np.nan])], 2.0, np.array([5.0]))
    together = monte_carlo_of_runs([unknown, known], target=80.0, draws=200)
    assert together == [[NONE], monte_carlo_of_runs([known], target=80.0, draws=200)[0]]
