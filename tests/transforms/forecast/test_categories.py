"""The CRM's forecast categories: the roll-up of the next period's deals by category and each
category's record, from a small literal export (period 2024-06, as_of 2024-07-01)."""

from __future__ import annotations

import pytest

from funnel_reports.transforms.forecast.categories import (
    category_record,
    category_rollup,
    forecast_categories,
)
from funnel_reports.transforms.periods import Window, parse_period
from tests.helpers import figures, history, opp, opportunities, world

PERIOD = parse_period("2024-06", "UTC")


def entry(oid: str, stage: str, at: str, category: str | None = None) -> dict:
    return {"opportunity_id": oid, "stage": stage, "entered_at": at, "forecast_category": category}


# Open at 07-01, expected to close in July: C1 (commit by its history, 100), C2 (best case by
# the export only, 50), C5 (no category, 20). C3 is expected in August; C4 was expected on
# 06-10 and is overdue (30). R1 (commit since 05-10, expected 06-15) was won on 06-20 (40);
# R2 (commit since 05-12, expected 06-25) is still open (60); R3 (pipeline since 05-15,
# expected 06-05) was lost on 06-10 (70).
DEALS = opportunities(
    opp("C1", "qualified", "2024-05-01", amount=100, expected_close_date="2024-07-15"),
    opp(
        "C2",
        "lead",
        "2024-05-02",
        amount=50,
        expected_close_date="2024-07-20",
        forecast_category="Best Case",
    ),
    opp(
        "C3",
        "lead",
        "2024-05-03",
        amount=80,
        expected_close_date="2024-08-10",
        forecast_category="Commit",
    ),
    opp("C4", "lead", "2024-05-04", amount=30, expected_close_date="2024-06-10"),
    opp("C5", "lead", "2024-05-05", amount=20, expected_close_date="2024-07-05"),
    opp(
        "R1",
        "won",
        "2024-05-06",
        amount=40,
        expected_close_date="2024-06-15",
        closed_at="2024-06-20",
    ),
    opp("R2", "qualified", "2024-05-07", amount=60, expected_close_date="2024-06-25"),
    opp(
        "R3",
        "qualified",
        "2024-05-08",
        amount=70,
        expected_close_date="2024-06-05",
        status="lost",
        closed_at="2024-06-10",
    ),
)
HISTORY = history(
    entry("C1", "lead", "2024-05-01", "Pipeline"),
    entry("C1", "qualified", "2024-05-20", "Commit"),
    entry("C2", "lead", "2024-05-02"),
    entry("C3", "lead", "2024-05-03"),
    entry("C4", "lead", "2024-05-04"),
    entry("C5", "lead", "2024-05-05"),
    entry("R1", "lead", "2024-05-06"),
    entry("R1", "qualified", "2024-05-10", "Forecast"),  # the Salesforce API's word for commit
    entry("R1", "won", "2024-06-20", "Closed"),
    entry("R2", "lead", "2024-05-07"),
    entry("R2", "qualified", "2024-05-12", "commit"),
    entry("R3", "lead", "2024-05-08"),
    entry("R3", "qualified", "2024-05-15", "Pipeline"),
)


def inputs():
    forecast_inputs = world(DEALS, HISTORY).forecast_inputs
    assert forecast_inputs is not None
    return forecast_inputs


def test_the_rollup_sums_the_next_periods_deals_by_category_up_to_each():
    i = inputs()
    rollup = category_rollup(i.states_at, i.category_history, i.current_categories, period=PERIOD)
    assert rollup["rows"] == [
        {"category": "commit", "count": 1, "amount": 100.0},
        {"category": "best_case", "count": 1, "amount": 50.0},
        {"category": "pipeline", "count": 0, "amount": 0.0},
        {"category": "omitted", "count": 0, "amount": 0.0},
        {"category": "not_set", "count": 1, "amount": 20.0},
    ]
    assert (rollup["commit_amount"], rollup["best_case_amount"], rollup["pipeline_amount"]) == (
        100.0,
        150.0,
        150.0,
    )
    # C4 (expected 06-10) and R2 (expected 06-25) are open past their dates: 30 + 60
    assert (rollup["overdue_count"], rollup["overdue_amount"]) == (2, 90.0)


def test_the_record_says_what_share_of_each_category_was_won_when_forecast():
    """At May's end (06-01) the history held R1 and R2 in commit and R3 in pipeline, each
    expected in June: R1 was won in June (40 of 100), R3 lost. C1 was commit only from 05-20
    but is expected in July: not June's."""
    i = inputs()
    june = Window(parse_period("2024-06", "UTC"), 12)  # the period after May's end
    record = {r["category"]: r for r in category_record(i.states_at, i.category_history, [june])}
    assert record["commit"] == {
        "category": "commit",
        "deals": 2,
        "won_deals": 1,
        "amount": 100.0,
        "won_amount": 40.0,
        "won_share": 0.5,
        "won_amount_share": pytest.approx(0.4),
    }
    assert record["pipeline"]["deals"] == 1 and record["pipeline"]["won_share"] == 0.0
    assert record["best_case"]["deals"] == 0 and record["best_case"]["won_share"] is None


def test_the_record_reads_the_history_only():
    """The export says C3 is commit now; its history never did: no past period end knew it."""
    i = inputs()
    may = Window(parse_period("2024-05", "UTC"), 12)  # nothing was created by its start
    assert all(r["deals"] == 0 for r in category_record(i.states_at, i.category_history, [may]))
    # at June's end: C1 (commit since 05-20, expected in July) counts; C3, commit by the
    # export only, does not
    july = Window(parse_period("2024-07", "UTC"), 12)
    record = category_record(i.states_at, i.category_history, [july])
    assert {r["category"]: r["deals"] for r in record} == {
        "commit": 1,
        "best_case": 0,
        "pipeline": 0,
    }


def test_an_export_without_categories_has_none_and_a_history_without_them_no_record():
    plain = opportunities(opp("A", "lead", "2024-05-01", amount=10))
    assert figures(plain, of=("forecast",))["forecast"]["categories"] is None
    i = world(DEALS, history(entry("C1", "lead", "2024-05-01"))).forecast_inputs
    assert i is not None
    both = forecast_categories(
        i.states_at, i.category_history, i.current_categories, period=PERIOD, windows=[]
    )
    assert both is not None and both["record"] is None
    assert both["rows"][1] == {"category": "best_case", "count": 1, "amount": 50.0}
