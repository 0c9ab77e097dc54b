"""Each validation rule fires on its own row, with its reason, and the counts reconcile."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.io.exports import read_inputs, whole_quarantine
from funnel_reports.transforms.staging.checks import check_inputs, validate_inputs
from tests.helpers import SETTINGS, write_csv

GOOD = {"opportunity_id": "OK", "stage": "lead", "created_at": "2024-06-01"}


def run(opps, stage_history=None, followups=None):
    """Write the rows as canonical CSV files and read them back through the real ingest."""
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "opportunities.csv", opps)
    if stage_history is not None:
        write_csv(folder / "stage_history.csv", stage_history)
    if followups is not None:
        write_csv(folder / "followups.csv", followups)
    validated = validate_inputs(read_inputs(folder, SETTINGS))
    for table in validated.values():
        assert table.rows_read == table.rows_valid + table.rows_quarantined
    return validated


def reasons_of(table, row: int) -> list[str]:
    found = table.quarantined.filter(pl.col("_row") == row)
    return found["reasons"].to_list()[0] if found.height else []


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"opportunity_id": "A", "stage": "lead", "created_at": ""}, "created_at: missing"),
        (
            {"opportunity_id": "A", "stage": "lead", "created_at": "2024-13-45"},
            "created_at: cannot read as a timestamp (got '2024-13-45')",
        ),
        (
            {"opportunity_id": "A", "stage": "stage 9", "created_at": "2024-06-01"},
            "stage: cannot read as a stage (got 'stage 9')",
        ),
        (
            {"opportunity_id": "", "stage": "lead", "created_at": "2024-06-01"},
            "opportunity_id: missing",
        ),
        ({**GOOD, "opportunity_id": "A", "amount": "-5"}, "amount: negative value (got '-5.0')"),
        (
            {**GOOD, "opportunity_id": "A", "amount": "12 apples"},
            "amount: cannot read as a number (got '12 apples')",
        ),
        (
            {**GOOD, "opportunity_id": "A", "status": "maybe"},
            "status: cannot read as a status (open, won or lost) (got 'maybe')",
        ),
        (
            {**GOOD, "opportunity_id": "A", "expected_close_date": "31/31/2024"},
            "expected_close_date: cannot read as a date (got '31/31/2024')",
        ),
        (
            {**GOOD, "opportunity_id": "A", "closed_at": "2024-05-01", "status": "lost"},
            "closed_at: before created_at",
        ),
        ({**GOOD, "opportunity_id": "A", "status": "lost"}, "closed_at: missing for a lost deal"),
        (
            {**GOOD, "opportunity_id": "A", "stage": "won", "status": "open"},
            "status: 'open' but the stage 'won' is a won stage",
        ),
        (
            {**GOOD, "opportunity_id": "A", "stage": "won"},
            "closed_at: missing for a won deal, and no entry into the won stage",
        ),
        (  # lost is an outcome: the export's stage says lost, its status open
            {**GOOD, "opportunity_id": "A", "stage": "lost", "status": "open"},
            "status: 'open' but the export's stage says the deal was lost",
        ),
        (
            {**GOOD, "opportunity_id": "A", "stage": "lost", "status": "won"},
            "status: 'won' but the export's stage says the deal was lost",
        ),
    ],
)
def test_each_opportunity_rule_quarantines_its_row(row, expected):
    validated = run([GOOD, row])
    opps = validated["opportunities"]
    assert opps.rows_valid == 1 and opps.rows_quarantined == 1
    assert any(reason.startswith(expected) for reason in reasons_of(opps, 2)), reasons_of(opps, 2)


def test_every_reason_of_a_row_is_kept():
    validated = run([{"opportunity_id": "A", "stage": "nope", "created_at": "x", "amount": "-1"}])
    reasons = reasons_of(validated["opportunities"], 1)
    assert len(reasons) == 3
    assert not any(r.endswith("missing (required)") for r in reasons)  # unreadable != missing


def test_duplicate_ids_quarantine_every_copy_and_their_children():
    validated = run(
        [GOOD, {**GOOD, "opportunity_id": "D"}, {**GOOD, "opportunity_id": "D"}],
        stage_history=[{"opportunity_id": "D", "stage": "lead", "entered_at": "2024-06-01"}],
    )
    assert validated["opportunities"].rows_quarantined == 2
    assert validated["opportunities"].valid["opportunity_id"].to_list() == ["OK"]
    assert reasons_of(validated["stage_history"], 1) == [
        "opportunity_id: 'D' is quarantined in opportunities"
    ]


def test_won_deal_with_a_won_entry_in_history_needs_no_closed_at():
    validated = run(
        [{**GOOD, "stage": "won"}],
        stage_history=[{"opportunity_id": "OK", "stage": "won", "entered_at": "2024-06-05"}],
    )
    assert validated["opportunities"].rows_quarantined == 0


def test_children_of_unknown_opportunities_and_late_entries_are_quarantined():
    validated = run(
        [GOOD, {**GOOD, "opportunity_id": "L", "status": "lost", "closed_at": "2024-06-10"}],
        stage_history=[
            {"opportunity_id": "OK", "stage": "lead", "entered_at": "2024-06-01"},
            {"opportunity_id": "ghost", "stage": "lead", "entered_at": "2024-06-01"},
            {"opportunity_id": "L", "stage": "qualified", "entered_at": "2024-06-11"},
            {"opportunity_id": "OK", "stage": "lead", "entered_at": "soon"},
        ],
        followups=[
            {"opportunity_id": "OK", "occurred_at": "2024-06-02", "channel": "Phone"},
            {"opportunity_id": "ghost", "occurred_at": "2024-06-02", "channel": "phone"},
            {"opportunity_id": "OK", "occurred_at": "2024-06-02", "channel": "pigeon"},
        ],
    )
    history = validated["stage_history"]
    assert (history.rows_read, history.rows_valid, history.rows_quarantined) == (4, 1, 3)
    assert reasons_of(history, 2) == ["opportunity_id: 'ghost' is not in opportunities"]
    assert reasons_of(history, 3) == ["entered_at: after the deal was lost (closed_at)"]
    assert reasons_of(history, 4) == ["entered_at: cannot read as a timestamp (got 'soon')"]
    followups = validated["followups"]
    assert (followups.rows_valid, followups.rows_quarantined) == (1, 2)
    assert reasons_of(followups, 3) == [
        "channel: cannot read as a channel (phone, meeting, email, visit, message or other) "
        "(got 'pigeon')"
    ]
    assert followups.valid["channel"].to_list() == ["phone"]


def test_valid_rows_are_typed():
    validated = run([{**GOOD, "amount": "1200.50", "created_at": "2024-06-01T10:00:00+08:00"}])
    row = validated["opportunities"].valid.row(0, named=True)
    assert row["amount"] == 1200.5
    assert row["created_at"].isoformat() == "2024-06-01T02:00:00+00:00"
    assert row["status"] == "open"


def test_stage_lost_means_status_lost_and_the_last_stage_of_the_history():
    validated = run(
        [
            {**GOOD, "opportunity_id": "A", "stage": "Lost", "closed_at": "2024-06-20"},
            {**GOOD, "opportunity_id": "B", "stage": "lost", "closed_at": "2024-06-20"},
            {**GOOD, "opportunity_id": "C", "stage": "lost"},  # lost without closed_at
        ],
        stage_history=[
            {"opportunity_id": "A", "stage": "lead", "entered_at": "2024-06-01"},
            {"opportunity_id": "A", "stage": "proposal", "entered_at": "2024-06-05"},
        ],
    )
    valid = validated["opportunities"].valid.sort("opportunity_id")
    assert valid.select("opportunity_id", "stage", "status").rows() == [
        ("A", "proposal", "lost"),
        ("B", "lead", "lost"),
    ]
    assert "_stage_from_history" not in valid.columns
    assert reasons_of(validated["opportunities"], 3) == ["closed_at: missing for a lost deal"]


def test_dates_may_carry_a_time():
    validated = run([{**GOOD, "expected_close_date": "2024-07-15T00:00:00"}])
    assert str(validated["opportunities"].valid["expected_close_date"][0]) == "2024-07-15"


def test_a_won_deal_may_keep_the_stage_it_was_won_from():
    validated = run([{**GOOD, "stage": "negotiation", "status": "won", "closed_at": "2024-06-09"}])
    assert validated["opportunities"].rows_valid == 1


def test_quarantined_rows_keep_the_files_own_columns_even_when_named_like_ours():
    """An export's own "reasons" column is kept next to `_reasons`; lines and files match."""
    folder = Path(tempfile.mkdtemp())
    write_csv(
        folder / "opportunities.csv",
        [
            {**GOOD, "reasons": "budget"},
            {**GOOD, "opportunity_id": "B", "created_at": "never", "reasons": "=1+1"},
        ],
    )
    inputs = read_inputs(folder, SETTINGS)
    checked = whole_quarantine(check_inputs(inputs), inputs.files)
    rows = checked.quarantine["opportunities"]
    assert "reasons" in inputs.files[0].source.unread  # no figure reads it: read again
    assert rows.columns == ["_file", "_line", "_reasons", *inputs.files[0].source.header]
    assert rows.row(0, named=True) == {
        "_file": "opportunities.csv",
        "_line": 3,
        "_reasons": "created_at: cannot read as a timestamp (got 'never')",
        "opportunity_id": "B",
        "stage": "lead",
        "created_at": "never",
        "reasons": "=1+1",  # as it came in; made formula-safe when written
    }
    assert checked.quality["opportunities"]["files"] == [
        {"file": "opportunities.csv", "rows_read": 2, "rows_valid": 1, "rows_quarantined": 1}
    ]
    assert "contact_name" not in checked.tables["opportunities"].columns


def test_what_the_export_does_not_hold_is_named_table_by_table():
    """No follow-ups file, no stall-reason column: named, so their figures read as not
    recorded (a stall-reason column that is there but empty is recorded)."""
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "opportunities.csv", [{**GOOD, "amount": "5"}])
    write_csv(
        folder / "stage_history.csv",
        [{"opportunity_id": "OK", "stage": "lead", "entered_at": "2024-06-01"}],
    )
    absent = check_inputs(read_inputs(folder, SETTINGS)).not_recorded
    assert "followups" in absent
    assert "opportunities.stall_reason" in absent
    assert "opportunities.amount" not in absent
    assert "stage_history.entered_at" not in absent
    write_csv(folder / "opportunities.csv", [{**GOOD, "stall_reason": ""}])
    assert (
        "opportunities.stall_reason" not in check_inputs(read_inputs(folder, SETTINGS)).not_recorded
    )


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo"])
def test_a_close_date_without_a_time_on_the_creation_day_is_not_before_it(timezone):
    """Dynamics 365 writes Created On with a time and Actual Close Date without one: a deal
    closed the day it was logged closes at its creation; a close on an earlier day, or at an
    earlier time of that day, is still before it."""
    created = "2024-06-03 14:22"
    rows = [
        {"opportunity_id": "W", "stage": "won", "status": "won", "closed_at": "2024-06-03"},
        {"opportunity_id": "L", "stage": "lead", "status": "lost", "closed_at": "2024-06-03"},
        {"opportunity_id": "T", "stage": "lead", "status": "lost", "closed_at": "2024-06-03 9:00"},
        {"opportunity_id": "D", "stage": "lead", "status": "lost", "closed_at": "2024-06-02"},
    ]
    folder = Path(tempfile.mkdtemp())
    write_csv(folder / "opportunities.csv", [{**row, "created_at": created} for row in rows])
    settings = replace(SETTINGS, timezone=timezone)
    opps = validate_inputs(read_inputs(folder, settings))["opportunities"]
    assert sorted(opps.valid["opportunity_id"]) == ["L", "W"]
    assert (opps.valid["closed_at"] == opps.valid["created_at"]).all()
    assert reasons_of(opps, 3) == reasons_of(opps, 4) == ["closed_at: before created_at"]
