"""The metrics.json document: its sections in the registry's order, the quarter's months,
what an export cannot give, and the company's rates for a thin report."""

from __future__ import annotations

import polars as pl

from funnel_reports.transforms.metrics_document import (
    COMPANY_RATES,
    FIGURES,
    NOT_RECORDED,
    OWN,
    inferred_rows,
    period_metrics,
    period_rates,
)
from funnel_reports.transforms.periods import parse_period
from tests.helpers import SETTINGS, history, metrics_for, opp, opportunities, path, touches

DEALS = opportunities(
    opp("W1", "won", "2024-06-01", closed_at="2024-06-20", amount=100),
    opp("L1", "qualified", "2024-06-02", status="lost", closed_at="2024-06-15"),
    opp("O1", "lead", "2024-06-04", amount=70),
)
HISTORY = history(
    *path("W1", ("lead", "2024-06-01"), ("qualified", "2024-06-05"), ("won", "2024-06-20")),
    *path("L1", ("lead", "2024-06-02"), ("qualified", "2024-06-06")),
    *path("O1", ("lead", "2024-06-04")),
)


def test_a_months_document_has_every_section_of_the_registry_in_its_order_but_months():
    document = metrics_for(DEALS, HISTORY)
    assert list(document) == [key for key in FIGURES if key != "months"] + ["not_measurable"]


def test_a_quarters_document_adds_its_three_months():
    document = metrics_for(DEALS, HISTORY, period="2024-Q2")
    assert list(document)[-2:] == ["months", "not_measurable"]
    assert [m["period"]["label"] for m in document["months"]] == ["2024-04", "2024-05", "2024-06"]
    assert [m["kpis"]["won_count"] for m in document["months"]] == [0, 0, 1]


def test_what_the_export_does_not_hold_is_null_and_listed_with_its_reason():
    document = metrics_for(DEALS, HISTORY, not_recorded=("followups",))
    assert document["followups"]["touches_in_period"] is None
    assert document["followups"]["channel_mix"] == []
    listed = {f["figure"]: f for f in document["not_measurable"]}
    assert listed["followups.touches_in_period"] == {
        "figure": "followups.touches_in_period",
        "reason": NOT_RECORDED,
        "needs": "followups",
    }
    assert "stalls.compliance_rate" not in listed  # the stall reason column is held


def test_a_thin_report_borrows_the_companys_rates():
    """Two deals resolved in W are under min_resolved_for_p_win (20): given the company's
    rates (three wins of four: p̄ 0.75), the report forecasts with them and says so."""
    period = parse_period("2024-06")
    company_deals = opportunities(
        *(opp(f"W{i}", "won", "2024-06-01", closed_at="2024-06-20", amount=10) for i in range(3)),
        opp("L9", "lead", "2024-06-01", status="lost", closed_at="2024-06-10"),
    )
    company = period_rates(company_deals, history(), period=period, settings=SETTINGS.metrics)
    assert company.p_bar == 0.75

    def forecast(**rates):
        return period_metrics(
            DEALS,
            HISTORY,
            touches(),
            period=period,
            settings=SETTINGS.metrics,
            history_available=True,
            **rates,
        )["forecast"]

    own, borrowed = forecast(), forecast(company_rates=company)
    assert (own["rates_from"], own["p_bar"], own["resolved_in_window"]) == (OWN, 0.5, 2)
    assert (borrowed["rates_from"], borrowed["p_bar"]) == (COMPANY_RATES, 0.75)
    assert borrowed["resolved_in_window"] == 2  # its own deals, as the report says


def test_rows_resting_on_a_stage_no_deal_was_seen_in_are_inferred():
    conversion = pl.DataFrame({"from": ["lead", "qualified"], "to": ["qualified", "proposal"]})
    rows = inferred_rows(conversion, observed=["lead", "qualified"])
    assert [row["inferred"] for row in rows] == [False, True]
