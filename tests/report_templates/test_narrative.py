"""The executive summary's sentences and tiles, from small literal section views (the
summary reads the views of `context.report_views`, never the document)."""

from __future__ import annotations

import pytest

from funnel_reports.report_templates.context import report_text
from funnel_reports.report_templates.narrative import (
    Money,
    change_phrase,
    data_as_of_sentence,
    data_is_old,
    expected_sentence,
    kpi_tiles,
    leak_sentence,
    movement_sentence,
    slowest_sentence,
    source_line,
    summary_sentences,
)

EN, ZH = report_text("en"), report_text("zh")
KPIS = {
    "won_count": 3,
    "won_amount": 120_000.0,
    "lost_count": 2,
    "win_rate": 0.6,
    "open_amount": 900_000.0,
}
BEFORE = {
    "won_count": 2,
    "won_amount": 100_000.0,
    "lost_count": 2,
    "win_rate": 0.5,
    "open_amount": 1_000_000.0,
}


def step(frm: str, to: str, resolved: float | None, *, from_is_open: bool = True) -> dict:
    return {
        "from_label": frm,
        "to_label": to,
        "resolved_rate": resolved,
        "from_is_open": from_is_open,
    }


def views(**overrides) -> dict:
    """The section views the summary reads, for a month with three wins."""
    change = {key: KPIS[key] - BEFORE[key] for key in KPIS}
    base = {
        "header": {"currency": "EUR", "window_months": 12},
        "comparison": {
            "label": "2024-06",
            "kpis": KPIS,
            "previous": {"label": "2024-05", "kpis": BEFORE, "change": change},
        },
        "forecast": {
            "open_count": 10,
            "open_amount": 900_000.0,
            "weighted_pipeline": 300_000.0,
            "next_period": 80_000.0,
            "next_period_label": "2024-07",
        },
        "funnel": {
            "conversion": [
                step("Lead", "Qualified", 0.5),
                step("Qualified", "Proposal", 0.25),
                step("Proposal", "Won", None),
                step("Won", "Retention", 0.1, from_is_open=False),
            ]
        },
        "stalls": {
            "stalled_count": 4,
            "stalled_amount": 40_000.0,
            "missing_reason_count": 1,
            "compliance_rate": 0.75,
            "reasons_recorded": True,
            "has_limits": True,
        },
        "movement": {
            "steps": [
                {"key": "open_start", "kind": "total", "count": 12, "amount": 1_000_000.0},
                {"key": "created", "kind": "in", "count": 3, "amount": 150_000.0},
                {"key": "increased", "kind": "in", "count": 1, "amount": 10_000.0},
                {"key": "decreased", "kind": "out", "count": 0, "amount": 0.0},
                {"key": "won", "kind": "out", "count": 3, "amount": 120_000.0},
                {"key": "lost", "kind": "out", "count": 1, "amount": 140_000.0},
                {"key": "open_end", "kind": "total", "count": 10, "amount": 900_000.0},
            ]
        },
        "dwell": {
            "rows": [
                {"label": "Lead", "median_days": 3.0},
                {"label": "Qualified", "median_days": 9.5},
            ]
        },
    }
    return base | overrides


def test_the_summary_says_won_pipeline_weakest_step_stalls_and_slowest_stage():
    assert summary_sentences(views(), text=EN) == [
        EN["summary_won"].format(
            period="2024-06",
            won_count="3",
            won_amount="EUR 120k",
            won_change="up 20k on 2024-05",
            win_rate="60%",
            rate_change="up 10.0 pp on 2024-05",
        ),
        # the two largest steps: created 150k, then lost 140k
        EN["summary_movement"].format(
            period="2024-06",
            direction="fell",
            start="EUR 1.00M",
            end="EUR 900k",
            change="-10%",
            moves="EUR 150k created (3 deals), EUR 140k lost (1 deal)",
        ),
        EN["summary_leak"].format(**{"from": "Qualified", "to": "Proposal"}, months=12, rate="25%"),
        EN["summary_stalls"].format(stalled="4", stalled_amount="EUR 40k", missing="1"),
        EN["summary_slowest"].format(stage="Qualified", days="9.5"),
    ]


def test_the_weakest_step_leaves_an_open_stage():
    """Won → Retention's 10 % is lower, but a step after the sale is not a leak."""
    sentence = leak_sentence(views()["funnel"]["conversion"], text=EN, months=12)
    assert "Qualified" in sentence and "25%" in sentence and "10%" not in sentence


def test_no_weakest_step_without_a_resolved_open_step():
    conversion = [step("Proposal", "Won", None), step("Won", "Retention", 0.1, from_is_open=False)]
    assert leak_sentence(conversion, text=EN, months=12) is None


def test_a_month_without_wins_says_so_and_what_was_lost():
    kpis = KPIS | {"won_count": 0, "won_amount": 0.0, "win_rate": 0.0}
    comparison = views()["comparison"] | {"kpis": kpis}
    first = summary_sentences(views(comparison=comparison), text=EN)[0]
    assert first == EN["summary_no_won"].format(
        period="2024-06", won_change="down 100k on 2024-05", lost_count="2"
    )


def test_a_month_without_movement_says_no_deal_moved():
    steps = [
        {**step, "count": 0, "amount": 0.0 if step["kind"] != "total" else 500.0}
        for step in views()["movement"]["steps"]
    ]
    sentence = movement_sentence(
        {"steps": steps}, period="2024-06", text=EN, money=Money.of("EUR", EN)
    )
    assert sentence == (
        "Over 2024-06 no deal came in, changed or closed: the open pipeline stayed at EUR 500."
    )


def test_a_pipeline_that_changed_without_a_recorded_step_says_the_export_does_not_record_it():
    # no amount history: increased and decreased are not recorded (None), nothing was created
    # or closed, yet the open deals' amounts add up to more at the end
    amounts = {"open_start": 500.0, "created": 0.0, "won": 0.0, "lost": 0.0, "open_end": 600.0}
    steps = [
        {**step, "count": 0, "amount": amounts.get(step["key"])}
        for step in views()["movement"]["steps"]
    ]
    sentence = movement_sentence(
        {"steps": steps}, period="2024-06", text=EN, money=Money.of("EUR", EN)
    )
    assert sentence == (
        "Over 2024-06 the open pipeline grew from EUR 500 to EUR 600 (+20%), mostly changes to "
        "open deals' amounts that the export does not record."
    )


def test_the_expected_deals_sentence_and_what_an_export_cannot_tell():
    money = Money.of("EUR", EN)
    assert (
        expected_sentence(None, period="2024-06", text=EN, money=money)
        == EN["expected_not_recorded"]
    )
    expected = {
        "expected_count": 12,
        "expected_amount": 2_148_000.0,
        "won_count": 4,
        "lost_count": 5,
        "pushed_out_count": 1,
        "overdue_count": 2,
        "pulled_in_count": 0,
        "new_won_count": 3,
    }
    assert expected_sentence(expected, period="2024-06", text=EN, money=money) == (
        "Of the 12 deals (EUR 2.15M) expected to close in 2024-06 as of its start, 4 were won, "
        "5 lost, 1 pushed out and 2 are still open past their date; 0 wins came from deals "
        "expected later and 3 from deals created in 2024-06."
    )


def test_no_slowest_stage_when_no_visit_was_measured():
    assert slowest_sentence([{"label": "Lead", "median_days": None}], text=EN) is None


@pytest.mark.parametrize(
    ("current", "previous", "kind", "expected"),
    [
        (120.0, 100.0, "amount", "up 20 on 2024-05"),
        (0.5, 0.6, "rate", "down 10.0 pp on 2024-05"),
        (3, 3, "count", "unchanged on 2024-05"),
        (3, None, "count", EN["change_unknown"].format(label="2024-05")),
    ],
)
def test_change_phrases(current, previous, kind, expected):
    phrase = change_phrase(current, previous, label="2024-05", kind=kind, text=EN)
    assert phrase == expected


def test_tiles_show_the_figures_their_changes_the_forecast_and_the_stalls():
    tiles = kpi_tiles(views(), text=EN)
    assert [(t["value"], t["direction"]) for t in tiles] == [
        ("120k", "up"),
        ("3", "up"),
        ("60%", "up"),
        ("900k", "down"),
        ("80k", None),
        ("4", None),
    ]
    assert tiles[-1]["change"] == f"{EN['compliance']}: 75%"


def test_the_stall_tile_says_not_recorded_when_the_export_has_no_reasons():
    stalls = views()["stalls"] | {"reasons_recorded": False, "compliance_rate": None}
    tile = kpi_tiles(views(stalls=stalls), text=EN)[-1]
    assert tile["change"] == f"{EN['compliance']}: {EN['not_recorded']}"


def test_money_is_the_currency_code_and_a_compact_amount_in_the_language():
    assert Money.of("CNY", ZH)(1_091_000) == "CNY 109.1万"
    assert Money.of("USD", EN)(1_091_000) == "USD 1.09M"


def test_data_as_of_and_when_it_is_old():
    assert data_as_of_sentence(None, text=EN) is None
    fresh = {"date": "2024-06-30", "days_before_period_end": 1.0}
    assert data_as_of_sentence(fresh, text=EN) == EN["data_as_of"].format(date="2024-06-30")
    assert not data_is_old(fresh)
    old = {"date": "2024-06-10", "days_before_period_end": 20.6}
    assert data_is_old(old)
    assert data_as_of_sentence(old, text=EN) == EN["data_as_of_stale"].format(
        date="2024-06-10", days=21
    )


def test_amount_tiles_name_their_currency_once():
    titles = [tile["title"] for tile in kpi_tiles(views(), text=EN)]
    assert titles == [
        f"{EN['won_amount']} (EUR)",
        EN["won_deals"],
        EN["win_rate"],
        f"{EN['open_pipeline']} (EUR)",
        EN["next_period_forecast"].format(label="2024-07") + " (EUR)",
        EN["stalled_deals"],
    ]


def test_the_source_line_names_the_layout_and_each_files_table_in_the_language():
    source = {
        "preset": "canonical",
        "label": "canonical layout",
        "files": {"opportunities.csv": "opportunities", "stage_history.csv": "stage_history"},
    }
    assert source_line(source, text=EN) == (
        "Read as the canonical layout: opportunities.csv as opportunities, "
        "stage_history.csv as stage history."
    )
    assert source_line(source, text=ZH) == (
        "读取方式：标准布局；opportunities.csv 作为商机、stage_history.csv 作为阶段历史。"
    )


def test_the_source_line_of_dated_snapshots_counts_them_and_lists_the_latest():
    source = {
        "preset": "salesforce",
        "label": "Salesforce (Opportunity, OpportunityHistory, Task)",
        "files": {
            "2024-05-31/Opportunity.csv": "opportunities",
            "2024-06-30/Opportunity.csv": "opportunities",
            "2024-06-30/Task.csv": "followups",
            "2024-04-30/Opportunity.csv": "opportunities",
        },
    }
    assert source_line(source, text=ZH) == (
        "读取方式：Salesforce (Opportunity, OpportunityHistory, Task)；共 3 份按日期的快照"
        "（2024-04-30 … 2024-06-30），最新一份：Opportunity.csv 作为商机、Task.csv 作为跟进记录。"
    )
    assert source_line(source, text=EN).startswith(
        "Read as Salesforce (Opportunity, OpportunityHistory, Task), from 3 dated snapshots "
        "(2024-04-30 … 2024-06-30); the latest holds Opportunity.csv as opportunities, "
    )


def test_a_funnel_without_stall_limits_says_stalls_are_not_measured():
    """No stage has stall_days: not "no deal is stalled" nor a tile of 0, but not measured."""
    v = views()
    v["stalls"] = {**v["stalls"], "has_limits": False, "stalled_count": 0}
    assert EN["summary_no_stall_limits"] in summary_sentences(v, text=EN)
    assert EN["summary_no_stalls"] not in summary_sentences(v, text=EN)
    stalled = next(t for t in kpi_tiles(v, text=EN) if t["title"] == EN["stalled_deals"])
    assert stalled["value"] == "not measured"
