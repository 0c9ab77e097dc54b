"""The read-memory benchmark's pieces (benchmarks/read_memory.py): the column letters, the
escaped text and the sheet rows it writes, the workbook read back by the project's own XLSX
reader (flows/io/workbook.py) as the CSV it was written from, the measure of one read in a
fresh process, and a run of `main` on 50 deals (a smoke test: the memory is not tested)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import polars as pl
import pytest

from benchmarks.read_memory import (
    SHEET_ROWS,
    column_letters,
    escaped,
    main,
    measured,
    rows_xml,
    write_workbook,
)
from funnel_reports.flows.io.workbook import column_index, dimension_rows, read_book
from tests.flows.io.test_workbook import records
from tests.helpers import opp, write_csv

CSV = "id,name,note\nA,x & y,<b>\nB,,张伟 Ltd\n"
TWO_GIB = 2 << 30


def escape(value: str | None) -> str | None:
    return pl.select(escaped(pl.lit(value, dtype=pl.String))).item()


def sheet_xml(path: Path) -> str:
    with zipfile.ZipFile(path) as book:
        return book.read("xl/worksheets/sheet1.xml").decode("utf-8")


def workbook_of(tmp_path: Path, csv: str, *, fill_down: bool) -> Path:
    (tmp_path / "deals.csv").write_text(csv, encoding="utf-8")
    write_workbook(tmp_path / "deals.csv", tmp_path / "deals.xlsx", fill_down=fill_down)
    return tmp_path / "deals.xlsx"


@pytest.fixture(scope="module")
def filled_down(tmp_path_factory) -> Path:
    """CSV as a workbook with its formula column filled down to the sheet's last row (5 MB)."""
    return workbook_of(tmp_path_factory.mktemp("filled"), CSV, fill_down=True)


# column_letters


@pytest.mark.parametrize(
    ("index", "letters"),
    [
        (0, "A"),
        (25, "Z"),
        (26, "AA"),
        (27, "AB"),
        (51, "AZ"),
        (52, "BA"),
        (701, "ZZ"),
        (702, "AAA"),
        (16_383, "XFD"),  # a sheet's last column
    ],
)
def test_a_columns_letters_count_from_a_without_a_zero_digit(index, letters):
    assert column_letters(index) == letters


def test_the_xlsx_reader_numbers_every_columns_letters_back_to_its_index():
    letters = pl.Series([column_letters(i) for i in range(16_384)])
    numbers = pl.select(column_index(pl.lit(letters))).to_series().to_list()
    assert numbers == list(range(16_384))


# escaped


def test_ampersands_and_angle_brackets_are_escaped_for_xml_text():
    assert escape("R&D <pilot> > 3") == "R&amp;D &lt;pilot&gt; &gt; 3"


def test_an_escaped_looking_text_is_escaped_again_to_read_back_as_written():
    assert escape("&lt;b&gt; &amp;") == "&amp;lt;b&amp;gt; &amp;amp;"


def test_quotes_and_other_text_are_left_as_they_are():
    assert escape('say "hi" it\'s 张伟') == 'say "hi" it\'s 张伟'


def test_a_null_value_stays_null():
    assert escape(None) is None


# rows_xml


def test_each_row_is_a_sheet_row_of_inline_strings_from_row_two():
    frame = pl.DataFrame({"id": ["A", "B"], "note": ["x<y", "z"]})
    assert rows_xml(frame, ["A", "B", "C"], fill_down=False).to_list() == [
        '<row r="2"><c r="A2" t="inlineStr"><is><t>A</t></is></c>'
        '<c r="B2" t="inlineStr"><is><t>x&lt;y</t></is></c></row>',
        '<row r="3"><c r="A3" t="inlineStr"><is><t>B</t></is></c>'
        '<c r="B3" t="inlineStr"><is><t>z</t></is></c></row>',
    ]


def test_a_null_value_writes_no_cell_and_keeps_the_others_in_their_columns():
    frame = pl.DataFrame(
        {"id": [None], "note": ["z"]}, schema=dict.fromkeys(["id", "note"], pl.String)
    )
    assert rows_xml(frame, ["A", "B", "C"], fill_down=False).to_list() == [
        '<row r="2"><c r="B2" t="inlineStr"><is><t>z</t></is></c></row>'
    ]


def test_a_row_of_nulls_is_an_empty_sheet_row():
    frame = pl.DataFrame(
        {"id": [None], "note": [None]}, schema=dict.fromkeys(["id", "note"], pl.String)
    )
    assert rows_xml(frame, ["A", "B", "C"], fill_down=False).to_list() == ['<row r="2"></row>']


def test_filled_down_rows_end_with_an_empty_text_formula_after_the_last_column():
    frame = pl.DataFrame({"id": ["A", "B"]})
    assert rows_xml(frame, ["A", "B"], fill_down=True).to_list() == [
        '<row r="2"><c r="A2" t="inlineStr"><is><t>A</t></is></c>'
        '<c r="B2" t="str"><f>""</f><v></v></c></row>',
        '<row r="3"><c r="A3" t="inlineStr"><is><t>B</t></is></c>'
        '<c r="B3" t="str"><f>""</f><v></v></c></row>',
    ]


# write_workbook


def test_the_workbook_reads_back_as_the_csv_it_was_written_from(tmp_path):
    book = workbook_of(tmp_path, CSV, fill_down=False)
    assert records(book) == [
        {"id": "A", "name": "x & y", "note": "<b>", "_line": 2},
        {"id": "B", "name": None, "note": "张伟 Ltd", "_line": 3},
    ]


def test_the_workbooks_one_sheet_is_named_opportunities(tmp_path):
    book = read_book(workbook_of(tmp_path, CSV, fill_down=False))
    assert [sheet.name for sheet in book.sheets] == ["opportunities"]


def test_the_dimension_spans_the_header_and_the_rows(tmp_path):
    book = read_book(workbook_of(tmp_path, CSV, fill_down=False))
    assert dimension_rows(book, book.sheets[0]) == (3, "A1:C3")


def test_a_filled_down_workbook_spans_every_sheet_row_and_column_d(filled_down):
    book = read_book(filled_down)
    assert dimension_rows(book, book.sheets[0]) == (SHEET_ROWS, "A1:D1048576")


def test_a_filled_down_workbook_has_a_formula_in_every_row_below_the_header(filled_down):
    xml = sheet_xml(filled_down)
    assert len(re.findall(r'<c r="D\d+" t="str"><f>""</f>', xml)) == SHEET_ROWS - 1
    assert xml.count("<row ") == SHEET_ROWS
    assert '<c r="D1048576" t="str">' in xml and '<c r="D1048577"' not in xml


def test_a_filled_down_workbook_reads_back_as_the_csv_its_blank_rows_no_records(filled_down):
    assert records(filled_down, max_rows=10) == [
        {"id": "A", "name": "x & y", "note": "<b>", "_line": 2},
        {"id": "B", "name": None, "note": "张伟 Ltd", "_line": 3},
    ]


# measured


def test_a_measured_read_says_the_rows_read_and_valid_its_peak_memory_and_time(tmp_path):
    write_csv(
        tmp_path / "export" / "opportunities.csv",
        [
            opp("A", "lead", "2024-06-01T09:00:00+08:00", status="open"),
            opp("B", "lead", "2024-06-02T09:00:00+08:00", status="open"),
            opp("C", "lead", "someday", status="open"),
        ],
    )
    result = measured(tmp_path / "export")
    assert result["rows"] == "3 2"
    assert float(result["peak_mib"].replace(",", "")) > 0
    assert re.fullmatch(r"(\d+:)?\d+:\d\d(\.\d+)?", result["wall"])


# main


def test_main_prints_a_row_per_shape_of_the_same_deals(tmp_path, capsys):
    assert main(["--deals", "50", "--work", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [
        "| export | file bytes | peak MiB | × CSV | wall | rows read, valid |",
        "|---|---:|---:|---:|---:|---|",
    ]
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines[2:]}
    assert list(rows) == [
        "CSV",
        "XLSX",
        "XLSX, a formula filled down to row 1,048,576",
        "CSV beside a stray 2 GiB sparse file",
    ]
    assert all(cells[-1] == "50 50 |" for cells in rows.values())
    assert rows["CSV"][2] == "1.00"
    csv_bytes = (tmp_path / "generated" / "opportunities.csv").stat().st_size
    assert rows["CSV"][0] == f"{csv_bytes:,}"
    assert rows["CSV beside a stray 2 GiB sparse file"][0] == f"{csv_bytes + TWO_GIB:,}"
