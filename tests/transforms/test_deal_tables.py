"""The rows behind the figures (transforms/deal_tables.py, issue 27): the deal-level tables
of a literal export worked by hand, each headline figure reproduced by its rule from the
tables, and the rule's one-line text."""

from __future__ import annotations

import polars as pl
import pytest

from funnel_reports.transforms.deal_tables import (
    BACKTEST,
    CONVERSION,
    DEALS,
    FIGURES,
    FORECAST,
    STAGE_VISITS,
    TABLES,
    Rule,
    deal_tables,
    figure_rules,
    metric,
)
from funnel_reports.transforms.metrics_document import PeriodFigures, period_figures
from funnel_reports.transforms.periods import parse_period
from tests.helpers import SETTINGS, history, opp, opportunities, touches

# June 2024 (UTC): A is carried from May into proposal; B, open at the start, is won on the
# 15th (36 days after it was created); C is created and lost inside June; D is created in
# June and stays open; E was lost in May and is not in play.
DEALS_OF_JUNE = opportunities(
    opp("A", "proposal", "2024-05-01", amount=100),
    opp("B", "won", "2024-05-10", closed_at="2024-06-15", amount=200),
    opp("C", "lead", "2024-06-05", status="lost", closed_at="2024-06-20"),
    opp("D", "qualified", "2024-06-10", amount=50),
    opp("E", "lead", "2024-04-01", status="lost", closed_at="2024-05-20"),
)
ENTRIES_OF_JUNE = history(
    ("A", "lead", "2024-05-01"),
    ("A", "proposal", "2024-06-10"),
    ("B", "lead", "2024-05-10"),
    ("B", "won", "2024-06-15"),
)


def june(
    opps: pl.DataFrame = DEALS_OF_JUNE, entries: pl.DataFrame = ENTRIES_OF_JUNE
) -> PeriodFigures:
    return period_figures(
        opps,
        entries,
        touches(),
        period=parse_period("2024-06", SETTINGS.timezone),
        settings=SETTINGS.metrics,
        history_available=True,
    )


@pytest.fixture(scope="module")
def tables_of_june() -> tuple[dict, dict[str, pl.DataFrame]]:
    figures = june()
    return figures.metrics, deal_tables(figures.inputs, figures.metrics)


def column(frame: pl.DataFrame, name: str) -> dict:
    return dict(zip(frame["opportunity_id"], frame[name], strict=True))


def test_the_deals_in_play_are_those_open_at_either_instant_or_created_won_or_lost(
    tables_of_june,
):
    deals = tables_of_june[1][DEALS]
    assert deals["opportunity_id"].to_list() == ["A", "B", "C", "D"]
    assert column(deals, "open_at_start") == {"A": True, "B": True, "C": False, "D": False}
    assert column(deals, "open_at_end") == {"A": True, "B": False, "C": False, "D": True}
    assert column(deals, "created_in_period") == {"A": False, "B": False, "C": True, "D": True}
    assert column(deals, "won_in_period") == {"A": False, "B": True, "C": False, "D": False}
    assert column(deals, "lost_in_period") == {"A": False, "B": False, "C": True, "D": False}
    assert column(deals, "closed_in_period") == {"A": False, "B": True, "C": True, "D": False}


def test_each_deal_has_its_state_at_both_instants_and_its_movement_step(tables_of_june):
    deals = tables_of_june[1][DEALS]
    assert column(deals, "stage_start") == {"A": "lead", "B": "lead", "C": None, "D": None}
    assert column(deals, "stage_end") == {
        "A": "proposal",
        "B": "won",
        "C": "lead",
        "D": "qualified",
    }
    assert column(deals, "state_end") == {"A": "open", "B": "won", "C": "lost", "D": "open"}
    assert column(deals, "movement_step") == {
        "A": "unchanged",
        "B": "won",
        "C": "created_and_closed",
        "D": "created",
    }
    assert column(deals, "won_amount") == {"A": None, "B": 200.0, "C": None, "D": None}
    assert column(deals, "cycle_days") == {"A": None, "B": 36.0, "C": None, "D": None}


def test_open_deals_have_their_age_in_stage_and_are_stalled_past_seven_days(tables_of_june):
    """A entered proposal on 10 June and D was created in qualified that day: 21 days by
    1 July, past the default funnel's 7."""
    deals = tables_of_june[1][DEALS]
    assert column(deals, "days_in_stage") == {"A": 21.0, "B": None, "C": None, "D": 21.0}
    assert column(deals, "stall_days") == {"A": 7, "B": None, "C": None, "D": 7}
    assert column(deals, "stalled") == {"A": True, "B": False, "C": False, "D": True}


def test_the_conversion_cohorts_hold_each_deal_and_stage_it_reached_in_the_window(
    tables_of_june,
):
    """Lead's cohort: A, B and D went on (D reached lead when it was created in qualified),
    C and E were lost there: 3 of 5."""
    cohorts = tables_of_june[1][CONVERSION]
    lead = cohorts.filter(pl.col("from") == "lead")
    assert dict(zip(lead["opportunity_id"], lead["outcome"], strict=True)) == {
        "A": "advanced",
        "B": "advanced",
        "C": "lost",
        "D": "advanced",
        "E": "lost",
    }
    assert set(lead["to"]) == {"qualified"}
    assert dict(zip(lead["opportunity_id"], lead["in_period"], strict=True)) == {
        "A": False,
        "B": False,
        "C": True,
        "D": True,
        "E": False,
    }


def test_every_headline_figure_of_the_literal_export_is_its_rule_over_the_tables(
    tables_of_june,
):
    metrics, tables = tables_of_june
    assert metrics["kpis"]["won_amount"] == 200.0 and metrics["kpis"]["win_rate"] == 0.5
    assert metrics["kpis"]["open_amount"] == 150.0
    assert metrics["stalls"]["stalled_count"] == 2
    assert metric(metrics, "conversion[from=lead].cohort_rate") == 0.6
    # the step into after-sales no deal entered is not measurable: null, with no rule to meet
    assert metric(metrics, "conversion[from=won].cohort_rate") is None
    checked = 0
    for rule in figure_rules(metrics):
        if (expected := metric(metrics, rule.figure)) is not None:
            assert rule.value(tables) == pytest.approx(expected), rule.text()
            checked += 1
    assert checked == tables[FIGURES].height > 50


def test_the_figures_sheet_lists_each_figure_with_a_value_and_its_rule(tables_of_june):
    metrics, tables = tables_of_june
    sheet = tables[FIGURES]
    assert list(tables) == list(TABLES)
    rules = {rule.figure: rule for rule in figure_rules(metrics)}
    for figure, value, text in sheet.iter_rows():
        assert value == pytest.approx(metric(metrics, figure))
        assert text == rules[figure].text()
    # a figure without a value (no backtest origin here) has nothing to reproduce
    assert metrics["forecast"]["backtest"]["wape"] is None
    assert "forecast.backtest.wape" not in sheet["figure"].to_list()
    assert tables[BACKTEST].height == 0


def test_the_forecast_sheet_holds_the_deals_open_at_the_end_with_their_chances(tables_of_june):
    metrics, tables = tables_of_june
    forecast = tables[FORECAST]
    assert forecast["opportunity_id"].to_list() == ["A", "D"]
    assert forecast["amount_used"].to_list() == [100.0, 50.0]
    assert forecast["amount_estimated"].to_list() == [False, False]
    assert forecast["expected_amount"].sum() == pytest.approx(
        metrics["forecast"]["next_period_components"]["open_deals"]
    )
    assert forecast["expected_amount"].to_list() == pytest.approx(
        (forecast["chance_within_next_period"] * forecast["amount_used"]).to_list()
    )


def test_a_deal_the_forecast_priced_says_its_amount_was_estimated():
    """F, open in qualified without an amount, is priced at comparable won deals' mean (B's
    200 is the only one); A and D carry their own amounts; B and C, closed, are not in the
    forecast, so the deals sheet cannot say (null)."""
    opps = opportunities(
        opp("A", "proposal", "2024-05-01", amount=100),
        opp("B", "won", "2024-05-10", closed_at="2024-06-15", amount=200),
        opp("C", "lead", "2024-06-05", status="lost", closed_at="2024-06-20"),
        opp("D", "qualified", "2024-06-10", amount=50),
        opp("F", "qualified", "2024-06-12"),
    )
    figures = june(opps)
    tables = deal_tables(figures.inputs, figures.metrics)
    forecast, deals = tables[FORECAST], tables[DEALS]
    assert column(forecast, "amount_estimated") == {"A": False, "D": False, "F": True}
    assert column(forecast, "amount_used") == {"A": 100.0, "D": 50.0, "F": 200.0}
    assert column(deals, "amount_estimated") == {
        "A": False,
        "B": None,
        "C": None,
        "D": False,
        "F": True,
    }
    assert column(deals, "amount_end")["F"] is None
    assert deals.columns.index("amount_estimated") == deals.columns.index("amount_end") + 1
    assert figures.metrics["forecast"]["imputed_amount_count"] == 1


def test_stage_visits_hold_the_stays_open_at_the_end_or_ended_in_the_window(tables_of_june):
    visits = tables_of_june[1][STAGE_VISITS]
    a = visits.filter(pl.col("opportunity_id") == "A").sort("started_at")
    assert a.select("stage", "days", "completed").rows() == [
        ("lead", 40.0, True),
        ("proposal", 21.0, False),
    ]


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (
            Rule("kpis.won_amount", "deals", "sum", "won_amount", {"won_in_period": True}),
            "kpis.won_amount = sum of deals.won_amount where won_in_period",
        ),
        (
            Rule("kpis.won_count", "deals", "count", where={"won_in_period": True}),
            "kpis.won_count = number of deals rows where won_in_period",
        ),
        (
            Rule(
                "kpis.win_rate",
                "deals",
                "share",
                where={"won_in_period": True},
                over={"closed_in_period": True},
            ),
            "kpis.win_rate = number of deals rows where won_in_period, over the number of its "
            "rows where closed_in_period",
        ),
        (
            Rule(
                "x", "conversion", "count", where={"from": "lead", "outcome": ("advanced", "lost")}
            ),
            "x = number of conversion rows where from = lead and outcome in (advanced, lost)",
        ),
        (
            Rule("forecast.backtest.wape", "backtest", "ratio", "abs_error", over_column="actual"),
            "forecast.backtest.wape = sum of backtest.abs_error, over the sum of backtest.actual",
        ),
        (
            Rule("d", "stage_visits", "median", "days", {"stage": "lead", "completed": False}),
            "d = median of stage_visits.days where stage = lead and not completed",
        ),
    ],
)
def test_a_rule_reads_as_one_line(rule, text):
    assert rule.text() == text


def test_a_rule_over_no_rows_is_none_where_it_would_divide_or_average_by_nothing():
    empty = {"t": pl.DataFrame({"x": [1.0, 2.0], "f": [False, False], "y": [0.0, 0.0]})}
    nothing = {"f": True}
    assert Rule("a", "t", "count", where=nothing).value(empty) == 0.0
    assert Rule("a", "t", "sum", "x", nothing).value(empty) == 0.0
    assert Rule("a", "t", "mean", "x", nothing).value(empty) is None
    assert Rule("a", "t", "median", "x", nothing).value(empty) is None
    assert Rule("a", "t", "share", where=nothing, over=nothing).value(empty) is None
    assert Rule("a", "t", "ratio", "x", over_column="y").value(empty) is None
    assert Rule("a", "t", "ratio", "x", {"f": False}, over_column="x").value(empty) == 1.0


def test_a_figure_path_picks_the_item_of_a_list_by_a_key():
    document = {
        "kpis": {"won": 3},
        "dwell": [{"stage": "lead", "d": 1}, {"stage": "qualified", "d": 2}],
    }
    assert metric(document, "kpis.won") == 3
    assert metric(document, "dwell[stage=qualified].d") == 2
