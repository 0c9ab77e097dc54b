"""The forecast's sentences and its report-card chart, from small literal documents."""

from __future__ import annotations

import pytest

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.charts import backtest_chart
from funnel_reports.report_templates.narrative import (
    Money,
    forecast_method_sentence,
    learned_sentence,
)

TEXT = {**fmt.labels("en"), "_lang": "en"}


def score(method: str, wape: float | None) -> dict:
    return {"method": method, "origins": 8, "wape": wape, "bias": 0.0, "mape": wape}


def forecast(
    method: str, *, rows: int, wapes: dict[str, float | None], as_used: float | None = None
) -> dict:
    models = ("landmark", "open_deals", "new_deals")
    baselines = ("stage_weighted", "last_period", "mean_last_3")
    return {
        "method": method,
        "backtest": {
            "periods": [{}] * rows,
            "wape": as_used,
            "candidates": [score(m, wapes.get(m)) for m in models],
            "baselines": [score(m, wapes.get(m)) for m in baselines],
        },
    }


def test_the_forecasts_as_used_are_compared_with_the_best_baseline():
    # the sentence quotes the report card's "as used" WAPE (9.8%), not the method's own (7.4%):
    # one number for the forecast's error wherever the report gives it
    f = forecast(
        "landmark",
        rows=8,
        wapes={
            "landmark": 0.074,
            "stage_weighted": 0.33,
            "last_period": 0.134,
            "mean_last_3": 0.121,
        },
        as_used=0.098,
    )
    assert forecast_method_sentence(f, text=TEXT) == (
        "Stage and age model + new deals is used. At the last 8 period ends, the forecasts made "
        "as this report makes them were off by 9.8% of what was won (WAPE, the report card's "
        "first row), against 12.1% for mean of the last three periods."
    )


def test_a_baseline_is_compared_with_the_model():
    f = forecast(
        "mean_last_3",
        rows=8,
        wapes={"landmark": 0.43, "stage_weighted": 0.4, "last_period": 0.56, "mean_last_3": 0.37},
        as_used=0.39,
    )
    assert forecast_method_sentence(f, text=TEXT).endswith(
        "against 43.0% for stage and age model + new deals."
    )


@pytest.mark.parametrize(
    ("rows", "wapes", "expected"),
    [
        (0, {}, "there is no earlier period to learn from yet."),
        (2, {}, "2 past period ends are too few to compare methods on (3 are needed)."),
        (8, {}, "nothing was won in the periods after the last 8 period ends"),
    ],
)
def test_why_when_the_backtest_cannot_tell(rows, wapes, expected):
    assert expected in forecast_method_sentence(
        forecast("landmark", rows=rows, wapes=wapes), text=TEXT
    )


def test_no_forecast_without_deals():
    assert forecast_method_sentence({"method": None}, text=TEXT) == TEXT["no_forecast"]


def test_backtest_chart_puts_actual_forecast_and_range_on_one_axis():
    # largest value 200 (a P90) × 1.05 = 210 on a plot from y 150 (base) up to y 12
    rows = [
        {"period": "2026-01", "actual": 100.0, "forecast": 105.0, "p10": 80.0, "p90": 200.0},
        {"period": "2026-02", "actual": 0.0, "forecast": None, "p10": None, "p90": None},
    ]
    chart = backtest_chart(rows)
    first, second = chart["columns"]
    assert chart["base_y"] == 150
    assert first["actual_y"] == pytest.approx(150 - 138 * 100 / 210)
    assert first["p90_y"] == pytest.approx(150 - 138 * 200 / 210)
    assert second["forecast_y"] is None and second["actual_y"] == 150
    assert (first["centre"], second["centre"]) == (160, 480)
    # grid lines at half and all of the largest value drawn (200), labelled with it
    assert [tick["value"] for tick in chart["ticks"]] == pytest.approx([100.0, 200.0])
    assert chart["ticks"][1]["y"] == pytest.approx(first["p90_y"])
    assert backtest_chart([]) is None


def learned_forecast(method: str, kind: str, *, scale: float, shift: float, model: str) -> dict:
    """A forecast whose learned method made 120 from the model's 100 (corrected: 110) and the
    mean of the last three's 130."""
    return {
        "method": method,
        "next_period": 120.0,
        "learned": {"kind": kind, "scale": scale, "shift": shift},
        "monte_carlo": {"model": model},
        "next_period_by_method": {
            "landmark": 100.0,
            "landmark_close_date": 80.0,
            "landmark_corrected": 110.0,
            "mean_last_3": 130.0,
        },
    }


MONEY = Money.of("EUR", TEXT)


@pytest.mark.parametrize(
    ("forecast_", "expected"),
    [
        (
            learned_forecast(
                "landmark_corrected", "scaled", scale=1.2, shift=0.0, model="landmark"
            ),
            "The model gives EUR 100; its past forecasts were off by a steady share, so it is "
            "multiplied by 1.20",
        ),
        (  # the close-date model's figure, the one the method scales
            learned_forecast(
                "landmark_close_date_corrected",
                "scaled",
                scale=1.5,
                shift=0.0,
                model="landmark_close_date",
            ),
            "The model gives EUR 80;",
        ),
        (
            learned_forecast(
                "mean_last_3_month_in_quarter",
                "seasonal_mean",
                scale=1.2,
                shift=0.0,
                model="landmark",
            ),
            "The mean of the last three periods, EUR 130, is multiplied by 0.92",
        ),
        (
            learned_forecast("blend", "blend", scale=1.2, shift=0.0, model="landmark"),
            "The average of the corrected model (EUR 110) and the mean of the last three "
            "periods (EUR 130).",
        ),
    ],
)
def test_a_learned_method_says_how_it_made_its_figure(forecast_, expected):
    assert expected in learned_sentence(forecast_, text=TEXT, money=MONEY)


def test_a_model_or_a_baseline_as_it_is_says_nothing_more():
    assert learned_sentence({"learned": None}, text=TEXT, money=MONEY) is None
