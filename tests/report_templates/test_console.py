"""What `funnel` says on the console (report_templates/console.py), from literal rows."""

from __future__ import annotations

from funnel_reports.report_templates.console import backfill_lines, lookalike_sentence, on_one_line


def row(report, period, status, won=None, rate=None, error=None):
    return {
        "report": report,
        "period": period,
        "status": status,
        "won_amount": won,
        "win_rate": rate,
        "seconds": 1.25,
        "error": error,
    }


def test_a_backfill_summary_is_a_line_per_report_then_the_counts_and_the_failures_apart():
    lines, failures = backfill_lines(
        [
            row(None, "2024-05", "written", 1234567.4, 0.25),
            row(None, "2024-06", "current", 0.0, None),
            row(None, "2024-07", "failed", error="no deals"),
        ]
    )
    assert lines == [
        "period    status       won amount  win rate  seconds",
        "2024-05   written       1,234,567     25.0%      1.2",
        "2024-06   current               0                1.2",
        "2024-07   failed                                 1.2",
        "1 written, 1 current, 1 failed",
    ]
    assert failures == ["funnel: 2024-07: no deals"]


def test_a_report_sets_summary_names_each_report():
    lines, failures = backfill_lines(
        [row("company", "2024-06", "written", 10, 1.0), row("east", "2024-06", "failed", error="x")]
    )
    assert lines[0].startswith("report  period")
    assert lines[1].startswith("company 2024-06   written")
    assert failures == ["funnel: east 2024-06: x"]


def test_a_lookalike_says_why_it_is_not_used():
    by_name = {"file": "deals (2).csv", "table": "opportunities", "by": "name"}
    assert lookalike_sentence(by_name | {"missing": ["stage"], "used_instead": None}) == (
        "deals (2).csv looks like opportunities by its name but is not used: it lacks stage"
    )
    assert lookalike_sentence(
        by_name | {"by": "headers", "missing": [], "used_instead": "deals.csv"}
    ) == (
        "deals (2).csv looks like opportunities by its headers but is not used: "
        "opportunities come from deals.csv"
    )


def test_a_reason_with_line_breaks_reads_on_one_line():
    assert on_one_line("a\r\nb\nc\rd") == "a⏎b⏎c⏎d"
