"""Chart geometry (flows/charts.py) computed by hand."""

from __future__ import annotations

import pytest

from funnel_reports.report_templates.charts import dwell_chart, funnel_chart, waterfall_chart

STAGES = [
    {"id": "lead", "stall_days": 7},
    {"id": "qualified", "stall_days": None},
    {"id": "won", "stall_days": None},
]
LABELS = {"lead": "Lead", "qualified": "Qualified", "won": "Won"}


def dwell_row(stage, completed, p25=None, median=None, p75=None, p90=None, km=None):
    return {
        "stage": stage,
        "completed_visits": completed,
        "p25_days": p25,
        "median_days": median,
        "p75_days": p75,
        "p90_days": p90,
        "km_median_days": km,
    }


def test_dwell_chart_places_quartiles_median_km_and_threshold_on_one_day_axis():
    # the longest end is the 7-day threshold: steps of 2 days (7 / 1 > 6 ticks), the axis
    # runs to 2 * (7.35 // 2 + 1) = 8 days over 640 - 170 - 20 = 450 px: 56.25 px a day
    chart = dwell_chart(
        [
            dwell_row("lead", 3, p25=3, median=4, p75=5, p90=5.6, km=6),
            dwell_row("qualified", 0),
        ],
        STAGES,
        LABELS,
    )
    lead, qualified = chart["rows"]
    assert [t["days"] for t in chart["ticks"]] == [0, 2, 4, 6, 8]
    assert chart["axis_x1"] == pytest.approx(170 + 8 * 56.25)
    assert lead["p25_x"] == pytest.approx(170 + 3 * 56.25)
    assert lead["median_x"] == pytest.approx(170 + 4 * 56.25)
    assert lead["p75_x"] == pytest.approx(170 + 5 * 56.25)
    assert lead["p90_x"] == pytest.approx(170 + 5.6 * 56.25)
    assert lead["km_x"] == pytest.approx(170 + 6 * 56.25)
    assert lead["stall_x"] == pytest.approx(170 + 7 * 56.25)
    assert (lead["has_visits"], qualified["has_visits"]) == (True, False)
    assert qualified["stall_x"] is None and qualified["km_x"] is None
    assert qualified["y"] - lead["y"] == chart["row_height"]


def test_no_dwell_chart_without_completed_visits():
    assert dwell_chart([dwell_row("lead", 0, km=3)], STAGES, LABELS) is None


def test_funnel_chart_of_a_funnel_that_ends_at_won_has_a_won_bar():
    # lead -> qualified -> won, nothing after won: the won bar is the won stage's cohort, read
    # from the row into it (this crashed with KeyError: 'won')
    metrics = {
        "stages": [
            {"id": "lead", "is_open": True, "shown": True},
            {"id": "qualified", "is_open": True, "shown": True},
            {"id": "won", "is_open": False, "shown": True},
        ],
        "conversion": [
            {"from": "lead", "to": "qualified", "cohort_size": 10, "cohort_size_to": 6},
            {"from": "qualified", "to": "won", "cohort_size": 6, "cohort_size_to": 3},
        ],
        "observed_funnel": {
            "conversion": [
                {"from": "lead", "to": "qualified", "cohort_rate": 0.6},
                {"from": "qualified", "to": "won", "cohort_rate": 0.5},
            ]
        },
    }
    chart = funnel_chart(metrics, {"lead": "Lead", "qualified": "Qualified", "won": "Won"})
    assert [(b["label"], b["value"], b["rate"]) for b in chart["bars"]] == [
        ("Lead", 10, 0.6),
        ("Qualified", 6, 0.5),
        ("Won", 3, None),
    ]
    assert chart["bars"][-1]["is_won"]


def test_the_waterfall_floats_each_step_from_the_running_total():
    # 100 open at the start, +50 created, increases not recorded, 0 decreased, 30 won, 20
    # lost, 100 open at the end: the highest point is 150, drawn 102 px tall (124 − 22)
    steps = [
        {"key": "open_start", "kind": "total", "amount": 100.0, "count": 4},
        {"key": "created", "kind": "in", "amount": 50.0, "count": 2},
        {"key": "increased", "kind": "in", "amount": None, "count": None},
        {"key": "decreased", "kind": "out", "amount": 0.0, "count": 0},
        {"key": "won", "kind": "out", "amount": 30.0, "count": 1},
        {"key": "lost", "kind": "out", "amount": 20.0, "count": 1},
        {"key": "open_end", "kind": "total", "amount": 100.0, "count": 4},
    ]
    chart = waterfall_chart(steps)
    scale = 102 / 150
    spans = [value for c in chart["columns"] for value in (c["y"], c["height"])]
    assert spans == pytest.approx(
        [
            value
            for span in [
                (124 - 100 * scale, 100 * scale),  # on the axis
                (124 - 150 * scale, 50 * scale),  # from 100 up to 150
                (124 - 150 * scale, 0),  # not recorded: an empty slot at the running total
                (124 - 150 * scale, 0),
                (124 - 150 * scale, 30 * scale),  # from 150 down to 120
                (124 - 120 * scale, 20 * scale),  # from 120 down to 100
                (124 - 100 * scale, 100 * scale),
            ]
            for value in span
        ]
    )
    slot = 640 / 7
    assert chart["columns"][1]["centre"] == pytest.approx(1.5 * slot)
    assert chart["columns"][2]["amount"] is None  # the template says "not recorded" there
