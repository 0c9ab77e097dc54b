"""report.xlsx as `write_workbook` writes it: every kind of cell read back as it was, the
period's end as its creation time, a text longer than a cell cut with an ellipsis, a table
longer than a sheet continued on the next, columns as wide as their text."""

from __future__ import annotations

import re
import zipfile
from datetime import date, datetime

import polars as pl
import pytest

from funnel_reports.flows.io import outputs
from funnel_reports.flows.io.outputs import (
    CELL_CHARACTERS,
    column_widths,
    created_at,
    sheet_parts,
    write_workbook,
)

DEALS = pl.DataFrame(
    {
        "opportunity_id": ["A", "B", "C"],
        "amount": [1_091_000.0, 0.16, None],
        "stall_days": [30, None, 7],
        "stalled": [True, False, None],
        "expected_close": [date(2024, 6, 30), None, date(2024, 7, 1)],
        "won_at": [datetime(2024, 6, 3, 14, 5, 9), None, None],
        "note": ["00123", "http://x.example", None],
    }
)


def test_every_kind_of_cell_reads_back_as_it_was(tmp_path):
    path = tmp_path / "report.xlsx"
    write_workbook(path, {"deals": DEALS, "figures": DEALS.head(1)}, created=datetime(2024, 6, 30))
    sheets = pl.read_excel(path, sheet_id=0)
    assert list(sheets) == ["deals", "figures"]
    read = sheets["deals"].cast(DEALS.schema)  # type: ignore[arg-type]
    assert read.equals(DEALS, null_equal=True)
    with zipfile.ZipFile(path) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        # text stays text: "00123" is no number, the address no link
        assert "<is><t>00123</t></is>" in sheet and "hyperlink" not in sheet
        assert '<pane ySplit="1" topLeftCell="A2"' in sheet and '<autoFilter ref="A1:G4"/>' in sheet
        styles = book.read("xl/styles.xml").decode()
        assert {"yyyy-mm-dd", "yyyy-mm-dd hh:mm:ss"} <= set(
            re.findall('formatCode="([^"]*)"', styles)
        )


def test_the_workbook_says_it_was_created_at_the_period_end(tmp_path):
    """Not when it was written: the same tables make the same bytes."""
    for name in ("one.xlsx", "two.xlsx"):
        write_workbook(tmp_path / name, {"deals": DEALS}, created=datetime(2024, 6, 30, 23, 59, 59))
    assert (tmp_path / "one.xlsx").read_bytes() == (tmp_path / "two.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.xlsx") as book:
        assert book.testzip() is None
        core = book.read("docProps/core.xml").decode()
    assert re.findall(r"<dcterms:(\w+)[^>]*>([^<]*)<", core) == [
        ("created", "2024-06-30T23:59:59Z"),
        ("modified", "2024-06-30T23:59:59Z"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.xlsx", "two.xlsx"]


def test_properties_without_the_two_creation_times_are_refused():
    with pytest.raises(RuntimeError, match="1 creation times, expected 2"):
        created_at(datetime(2024, 6, 30))(b"<dcterms:created>x</dcterms:created>")


def test_a_text_longer_than_a_cell_is_cut_with_an_ellipsis(tmp_path):
    """The Parquet file keeps it whole; the cell holds Excel's most, the last an ellipsis."""
    long = "a" * (CELL_CHARACTERS + 10)
    path = tmp_path / "report.xlsx"
    exact = "b" * CELL_CHARACTERS
    write_workbook(
        path, {"deals": pl.DataFrame({"note": [long, exact]})}, created=datetime(2024, 6, 30)
    )
    cut, kept = pl.read_excel(path, sheet_name="deals")["note"].to_list()
    assert len(cut) == CELL_CHARACTERS and cut == "a" * (CELL_CHARACTERS - 1) + "\u2026"
    assert kept == exact


def test_a_table_longer_than_a_sheet_goes_on_in_the_next(tmp_path, monkeypatch):
    """A sheet holds EXCEL_ROWS rows with its header: 3 data rows here, 7 rows make 3 sheets."""
    monkeypatch.setattr(outputs, "EXCEL_ROWS", 4)
    frame = pl.DataFrame({"n": list(range(7))})
    parts = sheet_parts("stage_visits", frame)
    assert [(name, part["n"].to_list()) for name, part in parts] == [
        ("stage_visits", [0, 1, 2]),
        ("stage_visits_2", [3, 4, 5]),
        ("stage_visits_3", [6]),
    ]
    ((name, whole),) = sheet_parts("deals", frame.head(3))
    assert name == "deals" and whole.equals(frame.head(3))
    path = tmp_path / "report.xlsx"
    write_workbook(
        path, {"stage_visits": frame, "figures": frame.head(1)}, created=datetime(2024, 6, 30)
    )
    sheets = pl.read_excel(path, sheet_id=0)
    assert list(sheets) == ["stage_visits", "stage_visits_2", "stage_visits_3", "figures"]
    assert pl.concat([sheets[f] for f in list(sheets)[:3]])["n"].to_list() == list(range(7))


def test_a_column_is_as_wide_as_its_longest_text_and_two_within_10_and_60_characters():
    frame = pl.DataFrame(
        {"id": ["A"], "customer_name": ["Northwind Trading Co."], "note": ["x" * 99]}
    )
    assert column_widths(frame) == {"id": 10.0, "customer_name": 23.0, "note": 60.0}


def test_categorical_text_is_formula_safe_like_any_text(tmp_path):
    """A file name or a stage kept as a categorical is text too: a leading = gets its
    apostrophe in the workbook as in a String column."""
    frame = pl.DataFrame(
        {
            "_file": pl.Series(["=cmd.csv", "deals.csv"], dtype=pl.Categorical),
            "stage": pl.Series(["@lead", "won"], dtype=pl.Enum(["@lead", "won"])),
        }
    )
    path = tmp_path / "report.xlsx"
    write_workbook(path, {"quarantine": frame}, created=datetime(2024, 6, 30))
    read = pl.read_excel(path, sheet_name="quarantine")
    assert read.rows() == [("'=cmd.csv", "'@lead"), ("deals.csv", "won")]
