"""The backtest's own arithmetic on literal rows: its origins, each method's scores, the pick,
the reliability of the deal probabilities, how far the range widens, the report card; and
what the forecasts read of an export (`forecast_inputs`), with the methods it allows.
Expectations computed by hand in the comments."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from funnel_reports.transforms.forecast.backtest import (
    ForecastInputs,
    backtest_origins,
    choose,
    forecast_inputs,
    models_of,
    next_period_forecast,
    reliability,
    report_card,
    scores,
    spread_factor,
    widened,
)
from funnel_reports.transforms.intermediate.derived import derive_tables
from funnel_reports.transforms.periods import parse_period
from tests.helpers import SETTINGS, history, opp, opportunities, path

# --- origins


def labels(period: str, first: str) -> list[str]:
    origins = backtest_origins(parse_period(period), parse_period(first))
    return [o.label for o in origins]


def test_the_origins_are_the_period_ends_six_months_of_data_on() -> None:
    """Data from January 2024: the first origin is the end of June (six months in), the last
    the end of November, before December's own end."""
    assert labels("2024-12", "2024-01") == [
        "2024-06",
        "2024-07",
        "2024-08",
        "2024-09",
        "2024-10",
        "2024-11",
    ]


def test_before_six_months_of_data_there_is_no_origin() -> None:
    assert labels("2024-06", "2024-01") == []


def test_a_quarter_s_origin_needs_data_in_the_two_quarters_before_it() -> None:
    """Data from January 2024: 2024-Q2 ends six months in, but 2023-Q4, two quarters before
    it, has none; 2024-Q3 is the first origin."""
    assert labels("2025-Q2", "2024-01") == ["2024-Q3", "2024-Q4", "2025-Q1"]


# --- scores


def scored_row(
    actual: float, forecast: float | None, band: tuple[float, float] | None = None
) -> dict[str, Any]:
    """A backtest row of one method `m`, with its P10–P90 range when given."""
    ranges = {} if band is None else {"m": {"p10": band[0], "p50": None, "p90": band[1]}}
    return {"forecasts": {"m": forecast}, "actual": actual, "ranges": ranges}


def test_the_scores_of_a_method_over_the_rows_it_forecast() -> None:
    """Forecasts 90, 120, none, 50 of 100, 100, 80, 0: three rows, 200 won.
    WAPE (10 + 20 + 50) / 200 = 0.4; bias 260 / 200 − 1 = 0.3; MAPE over the rows with wins
    (10/100 + 20/100) / 2 = 0.15; the range held 100 once in the two rows that have one."""
    rows = [
        scored_row(100, 90, (80, 110)),
        scored_row(100, 120, (105, 130)),
        scored_row(80, None),
        scored_row(0, 50),
    ]
    assert scores(rows, "m") == pytest.approx(
        {"method": "m", "origins": 3, "wape": 0.4, "bias": 0.3, "mape": 0.15, "coverage": 0.5}
    )


def test_a_range_without_a_p10_is_left_out_of_the_coverage() -> None:
    rows = [scored_row(100, 90, (80, 110)), {**scored_row(100, 90), "ranges": {"m": {"p10": None}}}]
    assert scores(rows, "m")["coverage"] == 1.0


def test_nothing_won_leaves_every_score_but_the_count_unknown() -> None:
    assert scores([scored_row(0, 50), scored_row(0, 0)], "m") == {
        "method": "m",
        "origins": 2,
        "wape": None,
        "bias": None,
        "mape": None,
        "coverage": None,
    }


def test_no_row_scores_nothing() -> None:
    assert scores([], "m") == {
        "method": "m",
        "origins": 0,
        "wape": None,
        "bias": None,
        "mape": None,
        "coverage": None,
    }


# --- the pick


def pick_rows(count: int = 6) -> list[dict[str, Any]]:
    """100 won every time: landmark says 130 (WAPE 0.3, bias 0.3), stage_weighted 112.5 and
    last_period 87.5 (WAPE and |bias| 0.125 each, exact in binary), mean_last_3 100 but
    nothing at the first origin."""
    return [
        {
            "actual": 100.0,
            "ranges": {},
            "forecasts": {
                "landmark": 130.0,
                "stage_weighted": 112.5,
                "last_period": 87.5,
                "mean_last_3": None if i == 0 else 100.0,
            },
        }
        for i in range(count)
    ]


AVAILABLE = ("landmark", "stage_weighted", "last_period", "mean_last_3")


def test_under_three_origins_the_landmark_method_is_kept() -> None:
    assert choose(pick_rows(2), AVAILABLE) == "landmark"
    assert choose(pick_rows(3), AVAILABLE) == "stage_weighted"


def test_the_method_with_the_lowest_wape_plus_bias_over_every_origin_is_picked() -> None:
    """mean_last_3 is exact where it forecasts, but missed an origin; of the two at WAPE
    0.125 and |bias| 0.125 the earlier in the order given wins."""
    assert choose(pick_rows(), AVAILABLE) == "stage_weighted"
    assert choose(pick_rows(), ("landmark", "last_period", "stage_weighted")) == "last_period"


def test_a_method_persistently_off_to_one_side_loses_to_a_less_biased_one() -> None:
    """100 won every time. steady: 115 every time (WAPE 0.15, bias +0.15: 0.30); wobbly: 80
    then 120 in turn (WAPE 0.2, bias 0: 0.20). WAPE alone picks steady; its bias loses."""
    rows = [
        {
            "actual": 100.0,
            "ranges": {},
            "forecasts": {"steady": 115.0, "wobbly": 80.0 + 40 * (i % 2)},
        }
        for i in range(4)
    ]
    assert scores(rows, "steady")["wape"] < scores(rows, "wobbly")["wape"]
    assert choose(rows, ("steady", "wobbly")) == "wobbly"


def test_without_a_method_that_can_be_scored_the_landmark_method_is_kept() -> None:
    rows = [{**r, "actual": 0.0} for r in pick_rows()]
    assert choose(rows, AVAILABLE) == "landmark"


# --- reliability of the deal probabilities


def pair(p: list[float | None], won: list[bool | None]) -> tuple[pl.Series, pl.Series]:
    return pl.Series(p, dtype=pl.Float64), pl.Series(won, dtype=pl.Boolean)


def test_the_brier_score_and_the_reliability_table_of_every_origin_s_deals() -> None:
    """p 0.05 (lost), 0.15 (won) at one origin; 0.95 (won), 0.9 (lost) at the next.
    Brier (0.0025 + 0.7225 + 0.0025 + 0.81) / 4 = 0.384375; bins [0, 0.1), [0.1, 0.2) and
    [0.9, 1] (0.9 and 0.95: mean p 0.925, half won)."""
    brier, table = reliability(
        [pair([0.05, 0.15], [False, True]), pair([0.95, 0.9], [True, False])]
    )
    assert brier == pytest.approx(0.384375)
    assert table == [
        {"from": 0.0, "to": 0.1, "deals": 1, "mean_p": pytest.approx(0.05), "won_share": 0.0},
        {"from": 0.1, "to": 0.2, "deals": 1, "mean_p": pytest.approx(0.15), "won_share": 1.0},
        {"from": 0.9, "to": 1.0, "deals": 2, "mean_p": pytest.approx(0.925), "won_share": 0.5},
    ]


def test_a_probability_on_an_edge_falls_in_the_bin_it_starts() -> None:
    _, table = reliability([pair([0.0, 0.2, 1.0], [False, False, True])])
    assert [(row["from"], row["to"], row["deals"]) for row in table] == [
        (0.0, 0.1, 1),
        (0.2, 0.3, 1),
        (0.9, 1.0, 1),
    ]


def test_a_deal_without_a_probability_is_not_scored() -> None:
    brier, table = reliability([pair([None, 0.5], [True, True])])
    assert brier == pytest.approx(0.25)
    assert [row["deals"] for row in table] == [1]
    # nor counted among the scored deals the report card states beside the score
    card = report_card([], [pair([None, 0.5], [True, True])], models=(), learned=(), method=None)
    assert (card["brier"], card["scored_deals"]) == (pytest.approx(0.25), 1)


def test_no_deal_has_no_reliability() -> None:
    assert reliability([]) == (None, [])
    assert reliability([pair([None], [True])]) == (None, [])


# --- how far the range widens


def simulated_rows(
    actuals: list[float], band: tuple[float | None, float | None, float | None]
) -> list[dict[str, Any]]:
    return [{"simulated": band, "actual": a} for a in actuals]


def test_an_actual_is_measured_in_half_ranges_of_its_own_side() -> None:
    """P10 80, P50 100, P90 110: 120 lies 20/10 = 2 half-ranges above, 60 lies 40/20 = 2
    below; with four at the median, the 80th percentile of (0, 0, 0, 0, 2, 2) is 2."""
    rows = simulated_rows([120, 60, 100, 100, 100, 100], (80.0, 100.0, 110.0))
    assert spread_factor(rows) == pytest.approx(2.0)


def test_an_origin_without_a_simulated_range_is_not_counted() -> None:
    """Four usable origins, 0, 0, 0 and 20 half-ranges out: ⌈5 · 0.8⌉ = 4th of four is 20.
    Six origins without a range do not count; counted as lying on P50 they would make it
    the ⌈11 · 0.8⌉ = 9th of ten, 0, and leave the range as simulated."""
    rows = simulated_rows([100] * 3 + [300], (80.0, 100.0, 110.0)) + simulated_rows(
        [100] * 6, (None, None, None)
    )
    assert spread_factor(rows) == pytest.approx(20.0)


def test_an_origin_whose_range_has_no_width_on_the_actual_s_side_is_not_counted() -> None:
    """As above, with six origins whose P90 is their P50 and whose actual lies above it."""
    rows = simulated_rows([100] * 3 + [300], (80.0, 100.0, 110.0)) + simulated_rows(
        [300] * 6, (80.0, 100.0, 100.0)
    )
    assert spread_factor(rows) == pytest.approx(20.0)


def test_a_range_without_quantiles_is_not_widened() -> None:
    assert widened((None, None, None), 2.0) == (None, None)


# --- the report card


def card_row(
    period: str,
    forecast: float,
    simulated: tuple[float, float, float],
    shown: tuple[float, float],
    forecasts: dict[str, float | None],
) -> dict[str, Any]:
    """A backtest row as `backtest` writes it: the pick's forecast, the range simulated and
    the range shown (widened), each candidate's forecast and the landmark range; 100 won."""
    p10, p50, p90 = simulated
    return {
        "period": period,
        "forecast_at": "2024-08-01",
        "method": "landmark",
        "forecast": forecast,
        "actual": 100.0,
        "error": forecast - 100.0,
        "forecasts": forecasts,
        "ranges": {"landmark": {"p10": p10, "p50": p50, "p90": p90}},
        "simulated": simulated,
        "p10": shown[0],
        "p90": shown[1],
    }


CARD_ROWS = [
    card_row(
        "2024-08",
        90.0,
        (102.0, 110.0, 130.0),
        (80.0, 140.0),
        {
            "landmark": 90.0,
            "landmark_close_date": 95.0,
            "open_deals": 60.0,
            "new_deals": 30.0,
            "stage_weighted": 120.0,
            "last_period": 100.0,
            "mean_last_3": None,
        },
    ),
    card_row(
        "2024-09",
        150.0,
        (120.0, 150.0, 170.0),
        (110.0, 190.0),
        {
            "landmark": 150.0,
            "landmark_close_date": 130.0,
            "open_deals": 100.0,
            "new_deals": 50.0,
            "stage_weighted": 100.0,
            "last_period": 100.0,
            "mean_last_3": 80.0,
        },
    ),
]


def score(
    method: str, origins: int, wape: float, bias: float, mape: float, coverage: float | None
) -> dict[str, Any]:
    return {
        "method": method,
        "origins": origins,
        "wape": pytest.approx(wape),
        "bias": pytest.approx(bias),
        "mape": pytest.approx(mape),
        "coverage": coverage,
    }


def test_the_report_card_scores_the_forecasts_as_shown_and_every_candidate() -> None:
    """As shown: 90 and 150 of 100 and 100: WAPE 60/200 = 0.3, bias 240/200 − 1 = 0.2,
    MAPE (0.1 + 0.5) / 2 = 0.3; the ranges shown (80–140, 110–190) held the first actual,
    though the first simulated range (102–130) did not: coverage 1/2. Deal probabilities
    0.2 (lost) and 0.8 (won): Brier 0.04."""
    card = report_card(
        CARD_ROWS,
        [pair([0.2, 0.8], [False, True])],
        models=("landmark", "landmark_close_date"),
        learned=(),
        method="stage_weighted",
    )
    assert card["method"] == "stage_weighted"
    assert card["periods"] == [
        {k: v for k, v in row.items() if k not in ("ranges", "simulated", "following")}
        for row in CARD_ROWS
    ]
    assert {k: card[k] for k in ("origins", "wape", "bias", "mape", "coverage")} == {
        "origins": 2,
        "wape": pytest.approx(0.3),
        "bias": pytest.approx(0.2),
        "mape": pytest.approx(0.3),
        "coverage": 0.5,
    }
    # the simulated ranges missed both actuals, by 10/8 and 50/30 half-ranges below P50: of
    # two origins the larger (⌈3 · 0.8⌉ = 3rd of two), 5/3
    assert card["spread_factor"] == pytest.approx(5 / 3)
    assert card["brier"] == pytest.approx(0.04)
    assert card["scored_deals"] == 2
    assert [(r["from"], r["to"], r["deals"]) for r in card["reliability"]] == [
        (0.2, 0.3, 1),
        (0.8, 0.9, 1),
    ]
    # the landmark ranges (102–130, 120–170) held neither actual of 100
    assert card["candidates"] == [
        score("landmark", 2, 0.3, 0.2, 0.3, 0.0),
        score("landmark_close_date", 2, 35 / 200, 225 / 200 - 1, 0.175, None),
        score("open_deals", 2, 0.2, -0.2, 0.2, None),
        score("new_deals", 2, 0.6, -0.6, 0.6, None),
    ]
    assert card["baselines"] == [
        score("stage_weighted", 2, 0.1, 0.1, 0.1, None),
        score("last_period", 2, 0.0, 0.0, 0.0, None),
        score("mean_last_3", 1, 0.2, -0.2, 0.2, None),
    ]


def unscored(method: str) -> dict[str, Any]:
    return {
        "method": method,
        "origins": 0,
        "wape": None,
        "bias": None,
        "mape": None,
        "coverage": None,
    }


def test_an_export_with_no_deal_forecasts_nothing_and_has_every_key() -> None:
    forecast = next_period_forecast(None, period=parse_period("2024-06"), target=None)
    assert forecast == {
        "next_period": None,
        "method": None,
        "next_period_components": {"open_deals": None, "new_deals": None},
        "next_period_by_method": {},
        "learned": None,
        "imputed_amount_count": 0,
        "imputed_amount": 0.0,
        "new_deals": {"periods": 0, "run_rate": None, "seasonal_factor": 1.0, "mean_count": 0.0},
        "monte_carlo": {
            "p10": None,
            "p50": None,
            "p90": None,
            "p_hit_target": None,
            "draws": 0,
            "spread": 1.0,
            "method": None,
            "target": None,
            "model": None,
            "scale": None,
            "shift": None,
        },
        "backtest": {
            "method": None,
            "periods": [],
            "origins": 0,
            "wape": None,
            "bias": None,
            "mape": None,
            "coverage": None,
            "spread_factor": 1.0,
            "brier": None,
            "scored_deals": 0,
            "reliability": [],
            "candidates": [unscored("open_deals"), unscored("new_deals")],
            "baselines": [
                unscored("stage_weighted"),
                unscored("last_period"),
                unscored("mean_last_3"),
            ],
        },
        "categories": None,
    }


# --- what the forecasts read


def inputs_for(
    deals: pl.DataFrame, steps: pl.DataFrame, period: str = "2024-06"
) -> ForecastInputs | None:
    report = parse_period(period)
    derived = derive_tables(deals, steps, as_of=report.end, funnel=SETTINGS.funnel)
    return forecast_inputs(
        deals,
        derived,
        derived.states_at(deals, funnel=SETTINGS.funnel),
        period=report,
        funnel=SETTINGS.funnel,
        timezone="UTC",
        window_months=12,
        smoothing_strength=5.0,
        min_resolved=20,
    )


def test_an_export_whose_deals_are_all_created_after_the_period_has_nothing_to_forecast() -> None:
    deals = opportunities(opp("A", "lead", "2024-07-05"))
    assert inputs_for(deals, history()) is None


def test_the_forecasts_start_at_the_first_month_with_a_created_deal() -> None:
    deals = opportunities(
        opp("A", "lead", "2024-04-20", customer_size="SMB"), opp("B", "lead", "2024-03-31")
    )
    inputs = inputs_for(deals, history())
    assert inputs is not None
    assert inputs.first.label == "2024-03"
    assert inputs.segments.rows() == [("A", None, "SMB"), ("B", None, None)]  # product, size


def test_without_expected_close_dates_only_the_landmark_method_is_tried() -> None:
    inputs = inputs_for(opportunities(opp("A", "lead", "2024-04-20")), history())
    assert inputs is not None
    assert inputs.has_close_dates is False
    assert models_of(inputs) == ("landmark",)


def test_an_expected_close_date_of_a_deal_allows_the_landmark_method_with_it() -> None:
    deals = opportunities(opp("A", "lead", "2024-04-20", expected_close_date="2024-08-31"))
    inputs = inputs_for(deals, history())
    assert inputs is not None
    assert models_of(inputs) == ("landmark", "landmark_close_date")


def test_an_expected_close_date_in_the_history_alone_allows_it_too() -> None:
    deals = opportunities(opp("A", "lead", "2024-04-20"))
    steps = history(
        *path("A", ("lead", "2024-04-20")),
        {
            "opportunity_id": "A",
            "stage": "lead",
            "entered_at": "2024-05-02",
            "expected_close_date": "2024-08-31",
        },
    )
    inputs = inputs_for(deals, steps)
    assert inputs is not None
    assert models_of(inputs) == ("landmark", "landmark_close_date")
