"""The forecast benchmark's pieces (benchmarks/forecast.py): the copy of an export without
open-deal amounts or close dates, the backtest table and goal figures it prints from a literal
forecast section, the forecast section of a small generated export, and a run of `main` on
300 deals (a smoke test: the scores are not tested)."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest

from benchmarks.forecast import (
    TIMEZONE,
    backtest_of,
    better_than_naive,
    bias_error,
    main,
    percent,
    print_goals,
    report,
    score_rows,
    without_open_amounts_or_close_dates,
)
from funnel_reports.flows.generate import GenerateSpec, generate_exports
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import check_inputs

SETTINGS = RunSettings(timezone=TIMEZONE, currency="CNY")

OPPORTUNITIES = (
    "opportunity_id,stage,status,created_at,closed_at,amount,expected_close_date\n"
    "A,proposal,open,2026-08-01T09:00:00+08:00,,100000.0,2026-10-15\n"
    "B,won,won,2026-07-01T09:00:00+08:00,2026-08-20T10:00:00+08:00,200000.0,2026-08-31\n"
    "C,lead,lost,2026-07-05T09:00:00+08:00,2026-07-30T10:00:00+08:00,50000.0,\n"
)
HISTORY = (
    "opportunity_id,stage,entered_at,amount,expected_close_date\n"
    "A,lead,2026-08-01T09:00:00+08:00,90000.0,2026-10-15\n"
    "A,proposal,2026-08-10T09:00:00+08:00,100000.0,2026-10-15\n"
    "B,lead,2026-07-01T09:00:00+08:00,180000.0,2026-08-31\n"
    "B,won,2026-08-20T10:00:00+08:00,200000.0,2026-08-31\n"
)
# CRLF line ends and a byte-order mark: kept only by a byte-for-byte copy
FOLLOWUPS = (
    b"\xef\xbb\xbffollowup_id,opportunity_id,occurred_at\r\nF1,A,2026-08-02T10:00:00+08:00\r\n"
)

FORECAST = {
    "next_period_label": "2026-10",
    "next_period": 1_234_567.8,
    "method": "landmark",
    "next_period_components": {"open_deals": 1_000_000.0, "new_deals": 234_567.8},
    "monte_carlo": {"p10": 900_000.0, "p90": 1_600_000.0},
    "imputed_amount_count": 3,
    "imputed_amount": 9_000.0,
    "backtest": {
        "wape": 0.1,
        "bias": -0.02,
        "mape": 0.125,
        "coverage": 0.75,
        # 100 won each month; as used 90, 110, 100 (shown ranges 85–95, 90–120, none); the
        # mean of the last three from the second month: 130, 85
        "periods": [
            {"period": "2026-07", "forecast": 90.0, "actual": 100.0, "p10": 85.0, "p90": 95.0,
             "forecasts": {"mean_last_3": None, "last_period": 70.0}},
            {"period": "2026-08", "forecast": 110.0, "actual": 100.0, "p10": 90.0, "p90": 120.0,
             "forecasts": {"mean_last_3": 130.0, "last_period": 130.0}},
            {"period": "2026-09", "forecast": 100.0, "actual": 100.0, "p10": None, "p90": None,
             "forecasts": {"mean_last_3": 85.0, "last_period": 110.0}},
        ],
        "candidates": [
            {"method": "landmark", "origins": 3, "wape": 0.08, "bias": 0.01, "mape": 0.09,
             "coverage": 0.5},
            {"method": "open_deals", "origins": 3, "wape": 0.2, "bias": -0.1, "mape": 0.25,
             "coverage": None},
        ],
        "baselines": [
            {"method": "stage_weighted", "origins": 3, "wape": 0.05, "bias": -0.3, "mape": 0.06,
             "coverage": None},
            {"method": "last_period", "origins": 3, "wape": 0.3, "bias": 0.0, "mape": 0.35,
             "coverage": None},
            {"method": "mean_last_3", "origins": 2, "wape": 0.25, "bias": None, "mape": None,
             "coverage": None},
        ],
    },
}  # fmt: skip


def export(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "opportunities.csv").write_text(OPPORTUNITIES, encoding="utf-8")
    (folder / "stage_history.csv").write_text(HISTORY, encoding="utf-8")
    (folder / "followups.csv").write_bytes(FOLLOWUPS)
    return folder


def forecast_with(**changes) -> dict:
    forecast = copy.deepcopy(FORECAST)
    forecast.update(changes)
    return forecast


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    generate_exports(folder, GenerateSpec(opportunities=300, seed=1))
    return folder


# without_open_amounts_or_close_dates


def test_open_deals_lose_their_amount_and_every_deal_its_expected_close_date(tmp_path):
    bare = without_open_amounts_or_close_dates(export(tmp_path / "in"), tmp_path / "bare")
    assert (bare / "opportunities.csv").read_text(encoding="utf-8") == (
        "opportunity_id,stage,status,created_at,closed_at,amount,expected_close_date\n"
        "A,proposal,open,2026-08-01T09:00:00+08:00,,,\n"
        "B,won,won,2026-07-01T09:00:00+08:00,2026-08-20T10:00:00+08:00,200000.0,\n"
        "C,lead,lost,2026-07-05T09:00:00+08:00,2026-07-30T10:00:00+08:00,50000.0,\n"
    )


def test_the_history_of_open_deals_loses_its_amounts_and_every_row_its_close_date(tmp_path):
    bare = without_open_amounts_or_close_dates(export(tmp_path / "in"), tmp_path / "bare")
    assert (bare / "stage_history.csv").read_text(encoding="utf-8") == (
        "opportunity_id,stage,entered_at,amount,expected_close_date\n"
        "A,lead,2026-08-01T09:00:00+08:00,,\n"
        "A,proposal,2026-08-10T09:00:00+08:00,,\n"
        "B,lead,2026-07-01T09:00:00+08:00,180000.0,\n"
        "B,won,2026-08-20T10:00:00+08:00,200000.0,\n"
    )


def test_the_follow_ups_are_copied_byte_for_byte(tmp_path):
    bare = without_open_amounts_or_close_dates(export(tmp_path / "in"), tmp_path / "bare")
    assert (bare / "followups.csv").read_bytes() == FOLLOWUPS


def test_the_copy_is_made_in_a_new_nested_folder_that_is_returned(tmp_path):
    target = tmp_path / "scratch" / "bare"
    assert without_open_amounts_or_close_dates(export(tmp_path / "in"), target) == target
    assert sorted(p.name for p in target.iterdir()) == [
        "followups.csv",
        "opportunities.csv",
        "stage_history.csv",
    ]


def test_without_open_deals_the_history_keeps_every_amount(tmp_path):
    source = export(tmp_path / "in")
    (source / "opportunities.csv").write_text(
        OPPORTUNITIES.replace("A,proposal,open,", "A,proposal,lost,"), encoding="utf-8"
    )
    bare = without_open_amounts_or_close_dates(source, tmp_path / "bare")
    amounts = pl.read_csv(bare / "stage_history.csv", infer_schema=False)["amount"].to_list()
    assert amounts == ["90000.0", "100000.0", "180000.0", "200000.0"]


def test_a_bare_copy_of_a_generated_export_is_valid_with_no_open_deal_priced(generated, tmp_path):
    bare = without_open_amounts_or_close_dates(generated, tmp_path / "bare")
    checked = check_inputs(read_inputs(bare, SETTINGS))
    assert {table: q["rows_quarantined"] for table, q in checked.quality.items()} == {
        "opportunities": 0,
        "stage_history": 0,
        "followups": 0,
    }
    deals = checked.tables["opportunities"]
    assert deals.filter(pl.col("status") == "open").height > 0
    assert deals.filter(pl.col("status") == "open")["amount"].null_count() == (
        deals.filter(pl.col("status") == "open").height
    )
    assert deals.filter(pl.col("status") != "open")["amount"].null_count() < deals.height // 10
    assert deals["expected_close_date"].null_count() == deals.height


# score_rows


def test_the_scores_are_the_method_used_then_every_candidate_then_every_baseline():
    card = FORECAST["backtest"]
    assert score_rows(FORECAST) == [
        (
            "used at each month end",
            {"wape": 0.1, "bias": -0.02, "mape": 0.125, "coverage": 0.75, "origins": 3},
        ),
        ("landmark", card["candidates"][0]),
        ("open_deals", card["candidates"][1]),
        ("stage_weighted", card["baselines"][0]),
        ("last_period", card["baselines"][1]),
        ("mean_last_3", card["baselines"][2]),
    ]


def test_the_method_used_counts_as_origins_the_month_ends_backtested():
    forecast = copy.deepcopy(FORECAST)
    forecast["backtest"]["periods"] = []
    assert score_rows(forecast)[0][1]["origins"] == 0


# percent


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "–"),
        (0.0, "   0.0 %"),
        (0.123, "  12.3 %"),
        (-0.05, "  -5.0 %"),
        (1.0, " 100.0 %"),
        (0.99951, " 100.0 %"),  # rounded to one decimal
    ],
)
def test_a_share_is_printed_as_a_percent_of_one_decimal_six_wide(value, text):
    assert percent(value) == text


# report


def test_the_report_prints_the_backtest_table_and_the_forecast_picked(capsys):
    report("seed 9", FORECAST)
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["", "## seed 9: forecast of 2026-10"]
    assert [" ".join(line.split()) for line in lines[2:9]] == [
        "method month ends WAPE bias MAPE P10–P90",
        "used at each month end 3 10.0 % -2.0 % 12.5 % 75.0 %",
        "landmark 3 8.0 % 1.0 % 9.0 % 50.0 %",
        "open_deals 3 20.0 % -10.0 % 25.0 % –",
        "stage_weighted 3 5.0 % -30.0 % 6.0 % –",
        "last_period 3 30.0 % 0.0 % 35.0 % –",
        "mean_last_3 2 25.0 % – – –",
    ]
    assert lines[9:] == [
        "picked now: landmark → next period 1,234,568 (open deals 1,000,000, new deals "
        "234,568; P10–P90 900,000 – 1,600,000); 3 open deals priced at comparable deals' mean "
        "(9,000 in all)"
    ]


def test_the_table_columns_line_up_under_the_header(capsys):
    report("seed 9", FORECAST)
    lines = capsys.readouterr().out.splitlines()[2:9]
    assert {len(line) for line in lines} == {len(lines[0])}
    assert all(line[28] == " " and line[39] == " " for line in lines)


def test_the_report_returns_the_goal_figures_of_the_dataset():
    """The best naive WAPE is mean_last_3's 25 %, the lower of the two naive baselines; not
    stage_weighted's 5 %, which is no naive baseline; picked is the landmark method's.
    `better` and `bias_error` are worked out below; one shown range of three held its
    actual."""
    assert report("seed 9", FORECAST) == {
        "name": "seed 9",
        "best_naive": 0.25,
        "better": (pytest.approx(35 / 45), pytest.approx(5 / 45)),
        "covered": 1,
        "origins": 3,
        "used": 0.1,
        "picked": 0.08,
        "bias": -0.02,
        "bias_error": pytest.approx(10 * 3**0.5 / 300),
        "coverage": 0.75,
        "next_period": 1_234_567.8,
    }


# better_than_naive, bias_error


def test_better_is_the_share_of_the_naive_error_saved_with_its_standard_error():
    """The month ends both forecast: the second and third. Absolute errors as used 10 and
    0, of the mean of the last three 30 and 15: 35 of 45 saved. The paired differences 20
    and 15 have a standard deviation of √12.5; √12.5 · √2 / 45 = 5 / 45."""
    better, error = better_than_naive(FORECAST, "mean_last_3")
    assert better == pytest.approx(35 / 45)
    assert error == pytest.approx(5 / 45)


def test_a_forecast_worse_than_the_naive_one_is_a_negative_share():
    """Against the last period (errors 30, 30, 10): 70 − 20 = 50 of 70 saved. A used
    forecast doubled (180, 220, 200: errors 80, 120, 100) loses: 300 against 70, −230 / 70,
    with differences −50, −90 and −90."""
    better, _ = better_than_naive(FORECAST, "last_period")
    assert better == pytest.approx(50 / 70)
    doubled = copy.deepcopy(FORECAST)
    for row in doubled["backtest"]["periods"]:
        row["forecast"] *= 2
    worse, error = better_than_naive(doubled, "last_period")
    assert worse == pytest.approx(-230 / 70)
    differences = [30 - 80, 30 - 120, 10 - 100]
    mean = sum(differences) / 3
    sd = (sum((d - mean) ** 2 for d in differences) / 2) ** 0.5
    assert error == pytest.approx(sd * 3**0.5 / 70)


def test_fewer_than_two_paired_month_ends_or_no_naive_error_give_no_share():
    one = forecast_with(
        backtest={**FORECAST["backtest"], "periods": FORECAST["backtest"]["periods"][:2]}
    )
    assert better_than_naive(one, "mean_last_3") is None
    exact = copy.deepcopy(FORECAST)
    for row in exact["backtest"]["periods"]:
        row["forecasts"]["mean_last_3"] = row["actual"]
    assert better_than_naive(exact, "mean_last_3") is None


def test_the_bias_error_is_the_spread_of_the_errors_over_the_amount_won():
    """Errors −10, 10 and 0: standard deviation 10, times √3, over 300 won."""
    assert bias_error(FORECAST) == pytest.approx(10 * 3**0.5 / 300)
    one = forecast_with(
        backtest={**FORECAST["backtest"], "periods": FORECAST["backtest"]["periods"][:1]}
    )
    assert bias_error(one) is None


def test_the_picked_method_may_be_a_baseline():
    assert report("seed 9", forecast_with(method="last_period"))["picked"] == 0.3


def test_missing_forecast_parts_and_range_print_as_zero(capsys):
    forecast = forecast_with(
        next_period_components={"open_deals": None, "new_deals": None},
        monte_carlo={"p10": None, "p90": None},
    )
    report("seed 9", forecast)
    picked = capsys.readouterr().out.splitlines()[-1]
    assert "(open deals 0, new deals 0; P10–P90 0 – 0)" in picked


# backtest_of


def test_the_backtest_of_a_generated_export_forecasts_october_from_twelve_month_ends(generated):
    forecast = backtest_of(generated, SETTINGS)
    assert forecast["next_period_label"] == "2026-10"
    assert [p["period"] for p in forecast["backtest"]["periods"]] == [
        "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03",
        "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09",
    ]  # fmt: skip


def test_a_quarter_is_backtested_for_the_next_quarter(generated):
    assert backtest_of(generated, SETTINGS, "2026-Q3")["next_period_label"] == "2026-Q4"


def test_every_open_deal_of_a_bare_copy_is_priced_at_comparable_deals_mean(generated, tmp_path):
    bare = without_open_amounts_or_close_dates(generated, tmp_path / "bare")
    deals = pl.read_csv(generated / "opportunities.csv", infer_schema=False)
    open_deals = deals.filter(pl.col("status") == "open").height
    assert open_deals > 0
    assert backtest_of(bare, SETTINGS)["imputed_amount_count"] == open_deals


# main


def test_main_prints_each_dataset_then_the_goals(capsys):
    assert main(["--seeds", "1", "2", "--opportunities", "200"]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings == [
        "## generated, 200 deals, seed 1: forecast of 2026-10",
        "## generated, 200 deals, seed 2: forecast of 2026-10",
        "## seed 606, skewed amounts: forecast of 2026-10",
        "## seed 707, quarter-end season: forecast of 2026-10",
        "## seed 808, skewed amounts and a quarter-end season: forecast of 2026-10",
        "## seed 808 without open-deal amounts or close dates: forecast of 2026-10",
        "## seed 1 without open-deal amounts or close dates: forecast of 2026-10",
        "## the sample (data/sample): forecast of 2026-10",
        "## goals: WAPE of the method used vs the better naive baseline (± one standard",
        "## error of the month ends); |bias| ≤ 10 %; P10–P90 coverage 70–90 %",
    ]
    goals = out.split("## error of the month ends")[1].splitlines()[2:-2]
    assert [line[:52].rstrip() for line in goals] == [
        "generated, 200 deals, seed 1",
        "generated, 200 deals, seed 2",
        "seed 606, skewed amounts",
        "seed 707, quarter-end season",
        "seed 808, skewed amounts and a quarter-end season",
        "seed 808 without open-deal amounts or close dates",
        "seed 1 without open-deal amounts or close dates",
        "the sample (data/sample)",
    ]
    assert out.splitlines()[-2].startswith("P10–P90 coverage pooled: ")
    assert out.splitlines()[-1].startswith("bias over the exports (each weighs alike): ")


def test_main_generates_the_variants_of_the_seeds_it_is_given(capsys):
    assert main(["--seeds", "1", "--variant-seeds", "4", "5", "6", "--opportunities", "200"]) == 0
    headings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("## ")]
    assert headings[1:5] == [
        "## seed 4, skewed amounts: forecast of 2026-10",
        "## seed 5, quarter-end season: forecast of 2026-10",
        "## seed 6, skewed amounts and a quarter-end season: forecast of 2026-10",
        "## seed 6 without open-deal amounts or close dates: forecast of 2026-10",
    ]


# print_goals


def goal(name: str, **changes) -> dict:
    return {
        "name": name,
        "best_naive": 0.2,
        "used": 0.15,
        "picked": 0.1,
        "better": (0.25, 0.125),
        "bias": -0.031,
        "bias_error": 0.04,
        "coverage": 0.75,
        "covered": 3,
        "origins": 4,
    } | changes


def test_the_goals_show_each_share_with_its_error_and_the_pooled_coverage(capsys):
    """3 of 4 month ends held by one export and 2 of 6 by another: 5 of 10, 50 %; biases
    −3.1 % and 5.1 %: 1.0 % over the two."""
    print_goals(
        [goal("a"), goal("b", better=None, bias=0.051, bias_error=None, covered=2, origins=6)]
    )
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[-4:] == [
        "a 20.0 % 15.0 % 10.0 % 25 ± 12 % -3.1 ± 4 % 75.0 %",
        "b 20.0 % 15.0 % 10.0 % – 5.1 % 75.0 %",
        "P10–P90 coverage pooled: 5 of 10 month ends, 50%",
        "bias over the exports (each weighs alike): 1.0%",
    ]
