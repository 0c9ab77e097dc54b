"""What the backtest teaches a forecast: the corrected, seasonal and blended candidates, from
small literal backtest rows (each with the period it forecast, every candidate's forecast and
what was then won)."""

from __future__ import annotations

from datetime import date

import pytest

from funnel_reports.transforms.forecast.learning import (
    Learned,
    kind_of,
    learned_candidates,
    learned_methods,
    place_in,
    ratio,
    scaled_to,
)
from funnel_reports.transforms.periods import Period

MODELS = ("landmark", "landmark_close_date")


def month(year: int, m: int) -> Period:
    end = date(year + m // 12, m % 12 + 1, 1)
    return Period("month", date(year, m, 1), end, "UTC")


def row(m: int, actual: float, **forecasts: float | None) -> dict:
    return {"following": month(2024, m), "actual": actual, "forecasts": forecasts}


def test_the_ratio_of_actual_to_forecast_is_shrunk_by_one_origin():
    rows = [row(m, 150.0, landmark=100.0) for m in (1, 2, 3)]
    # raw 450 / 300 = 1.5 over 3 origins: 1 + 0.5 × 3 / (3 + 1) = 1.375
    assert ratio(rows, "landmark", toward=1.0) == pytest.approx(1.375)
    assert ratio(rows[:1], "landmark", toward=1.0) == pytest.approx(1.25)
    assert ratio([], "landmark", toward=1.0) == 1.0
    assert ratio([row(1, 10.0, landmark=None)], "landmark", toward=0.9) == 0.9


def test_a_persistent_under_forecast_is_corrected_by_the_record():
    """The model said 100 and 150 was won, three months running: its fourth forecast of 100
    becomes 137.5, a third of the way from a 33 % miss to 8 %."""
    rows = [row(m, 150.0, landmark=100.0, mean_last_3=150.0) for m in (1, 2, 3)]
    values = {"landmark": 100.0, "mean_last_3": 150.0}
    changes = learned_candidates(values, rows, following=month(2024, 4), models=("landmark",))
    corrected = changes["landmark_corrected"]
    assert corrected == Learned("landmark", pytest.approx(1.375), 0.0)
    assert corrected.of(100.0) == pytest.approx(137.5)
    # the blend: half the corrected model and half the mean of the last three, as the
    # model's forecast scaled (its range keeps the model's relative spread)
    assert changes["blend"] == Learned("landmark", pytest.approx(1.4375), 0.0)
    assert changes["blend"].of(100.0) == pytest.approx((137.5 + 150.0) / 2)


def test_a_quarter_end_season_lifts_the_quarters_last_month():
    """100 won in the first two months of each quarter, 200 in its last; the mean of the last
    three said 400/3 every time. September is a quarter's last month: March and June won
    400 against 800/3 forecast (1.5), shrunk by 2 origins to 1 + 0.5 × 2/3 = 4/3: 177.78.
    August is a middle month: February and May, 200 against 800/3 (0.75): 0.8333: 111.11."""
    won = {1: 100.0, 2: 100.0, 3: 200.0, 4: 100.0, 5: 100.0, 6: 200.0}
    rows = [row(m, won[m], landmark=130.0, mean_last_3=400 / 3) for m in won]
    values = {"landmark": 130.0, "mean_last_3": 400 / 3}
    seasonal = "mean_last_3_month_in_quarter"
    september = learned_candidates(values, rows, following=month(2024, 9), models=("landmark",))
    august = learned_candidates(values, rows, following=month(2024, 8), models=("landmark",))
    assert september[seasonal].of(130.0) == pytest.approx(400 / 3 * 4 / 3)
    assert august[seasonal].of(130.0) == pytest.approx(400 / 3 * (1 - 0.25 * 2 / 3))
    # no earlier September: the calendar-month pattern leaves the mean as it is
    assert september["mean_last_3_month_of_year"].of(130.0) == pytest.approx(400 / 3)


def test_a_season_of_the_model_leans_toward_its_overall_ratio():
    """The model hit every month but March and June (forecast 100, won 200). Overall: 800 /
    600 over 6 origins, 1 + (4/3 − 1) × 6/7 = 9/7. A quarter's last month: 400 / 200 = 2 over
    2 origins, shrunk toward 9/7: 9/7 + (2 − 9/7) × 2/3 = 1.7619."""
    won = {1: 100.0, 2: 100.0, 3: 200.0, 4: 100.0, 5: 100.0, 6: 200.0}
    rows = [row(m, won[m], landmark=100.0) for m in won]
    changes = learned_candidates(
        {"landmark": 100.0}, rows, following=month(2024, 9), models=("landmark",)
    )
    assert changes["landmark_corrected"].scale == pytest.approx(9 / 7)
    assert changes["landmark_month_in_quarter"].scale == pytest.approx(9 / 7 + (2 - 9 / 7) * 2 / 3)
    # without the mean of the last three, nothing is made of it
    assert changes["blend"] is None and changes["mean_last_3_month_in_quarter"] is None


def test_places_in_the_seasons_people_have():
    assert [place_in(month(2024, m), "month_in_quarter") for m in (1, 3, 4, 12)] == [0, 2, 0, 2]
    assert place_in(month(2024, 12), "month_of_year") == 11
    quarter = Period("quarter", date(2024, 7, 1), date(2024, 10, 1), "UTC")
    assert place_in(quarter, "quarter_of_year") == 2


def test_the_candidates_of_a_grain():
    assert learned_methods(("landmark",), "quarter") == (
        "landmark_corrected",
        "landmark_quarter_of_year",
        "mean_last_3_quarter_of_year",
        "blend",
    )


def test_a_figure_as_a_change_of_the_models():
    assert scaled_to(150.0, 100.0) == Learned("landmark", 1.5, 0.0)
    assert scaled_to(150.0, None).of(None) == 150.0  # the model forecasts nothing
    assert Learned("landmark", 0.5, 10.0).of(None) is None


def test_each_learned_candidate_has_the_kind_its_sentence_tells():
    kinds = {method: kind_of(method) for method in learned_methods(MODELS, "month")}
    assert kinds == {
        "landmark_corrected": "scaled",
        "landmark_close_date_corrected": "scaled",
        "landmark_month_in_quarter": "scaled",
        "landmark_month_of_year": "scaled",
        "mean_last_3_month_in_quarter": "seasonal_mean",
        "mean_last_3_month_of_year": "seasonal_mean",
        "blend": "blend",
    }
