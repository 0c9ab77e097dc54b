"""Believe a value only when it parses for sure (issue 22, point 3): an amount whose
separators do not fit, a number too large, a date outside the span an export can hold and a
history row before its deal's creation are quarantined with their reason, never read as
something else."""

from __future__ import annotations

from pathlib import Path

from funnel_reports.schemas import reasons
from tests.flows.io.folders import HEADER, deals_folder, quarantined, read

AMOUNTS = {
    "A": "250,000",
    "B": "1,234.50",
    "C": "12,34",
    "D": "250.000,00",
    "E": "1" + "0" * 400,
    "F": "1,2345",
}


def amounts_folder(tmp_path: Path) -> Path:
    rows = "".join(f'{k},lead,open,2024-06-01,,"{v}",Ann\n' for k, v in AMOUNTS.items())
    return deals_folder(tmp_path, HEADER + rows)


def test_amounts_need_separators_that_fit_and_a_finite_value(tmp_path):
    inputs, validated = read(amounts_folder(tmp_path))
    valid = dict(validated["opportunities"].valid.select("opportunity_id", "amount").iter_rows())
    assert valid == {"A": 250_000.0, "B": 1234.5}
    fit = 'amount: separators that do not fit [source.parse] decimal = ".", thousands = ","'
    assert quarantined(inputs, validated) == {
        "C": [f"{fit} (got '12,34')"],
        "D": [f"{fit} (got '250.000,00')"],
        "E": [f"amount: too large to be a number (got '{AMOUNTS['E']}')"],
        "F": [f"{fit} (got '1,2345')"],
    }


def test_european_separators_read_european_amounts_only(tmp_path):
    folder = amounts_folder(tmp_path)
    config = '[source.parse]\ndecimal = ","\nthousands = "."\n'
    inputs, validated = read(folder, config)
    valid = dict(validated["opportunities"].valid.select("opportunity_id", "amount").iter_rows())
    assert valid == {"A": 250.0, "C": 12.34, "D": 250_000.0, "F": 1.2345}
    fit = 'amount: separators that do not fit [source.parse] decimal = ",", thousands = "."'
    assert quarantined(inputs, validated)["B"] == [f"{fit} (got '1,234.50')"]


def test_dates_outside_the_span_an_export_can_hold_are_quarantined(tmp_path):
    folder = deals_folder(
        tmp_path,
        HEADER
        + "A,lead,open,2024-06-01,,100,Ann\n"
        + "B,lead,open,0001-01-01,,100,Ann\n"
        + "C,won,won,2024-06-01,2062-05-31,100,Ann\n"
        + "D,lead,open,1989-12-31,,100,Ann\n",
    )
    inputs, validated = read(folder)
    assert validated["opportunities"].valid["opportunity_id"].to_list() == ["A"]
    bad = quarantined(inputs, validated)
    early = "outside the dates an export can hold, before 1990-01-01 ([source.parse] earliest_date)"
    assert bad["B"] == [f"created_at: {early} (got '0001-01-01')"]
    assert bad["D"] == [f"created_at: {early} (got '1989-12-31')"]
    late = bad["C"][0]  # and, its close date unread, a won deal without one
    assert late.startswith("closed_at: outside the dates an export can hold, after ")
    assert late.endswith("[source.parse] latest_after_export_days = 366) (got '2062-05-31')")
    # an export of old deals says where its span starts
    config = "[source.parse]\nearliest_date = 1980-01-01\n"
    inputs, validated = read(folder, config)
    assert sorted(validated["opportunities"].valid["opportunity_id"]) == ["A", "D"]


def test_a_history_row_before_its_deals_creation_is_quarantined(tmp_path):
    folder = deals_folder(tmp_path, HEADER + "A,qualified,open,2024-06-01,,100,Ann\n")
    (folder / "stage_history.csv").write_text(
        "opportunity_id,stage,entered_at\n"
        "A,lead,2017-05-20\n"  # seven years before the deal was created
        "A,lead,2024-06-01\n"
        "A,qualified,2024-06-10\n",
        encoding="utf-8",
    )
    _, validated = read(folder)
    history = validated["stage_history"]
    assert (history.rows_read, history.rows_valid, history.rows_quarantined) == (3, 2, 1)
    [row] = history.quarantined.to_dicts()
    assert row["_row"] == 1
    assert row["reasons"] == [reasons.ENTRY_BEFORE_CREATED]
