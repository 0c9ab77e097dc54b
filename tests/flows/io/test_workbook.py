"""XLSX sheets read part by part (flows/io/workbook.py), on small workbooks written here: by
xlsxwriter (as Excel writes them: shared strings, styles, the date system), or part by part
(`workbook` of test_bounded_reads: inline strings, cells of any shape) where a writer would
not write what a test needs."""

from __future__ import annotations

import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from funnel_reports.flows.io.workbook import (
    EPOCH_1900,
    EPOCH_1904,
    Header,
    TooManyRows,
    WorkbookError,
    column_index,
    counted_rows,
    dimension_rows,
    is_date_format,
    read_book,
    sheet_header,
    sheet_rows,
)
from tests.flows.io.test_bounded_reads import cells, workbook


@pytest.fixture(autouse=True)
def _prefect():
    """Files only: no Prefect flow runs here, so no test server is started."""
    yield


def xlsx(path: Path, rows: list[list], *, name: str = "deals", **options) -> Path:
    """A workbook of one sheet written by xlsxwriter, `rows` from A1 (None: no cell)."""
    book = xlsxwriter.Workbook(str(path), options)
    sheet = book.add_worksheet(name)
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is not None:
                sheet.write(r, c, value)
    book.close()
    return path


def with_part(path: Path, name: str, text: str) -> Path:
    """The workbook at `path` with its part `name` rewritten as `text` (in place)."""
    with zipfile.ZipFile(path) as archive:
        parts = {info.filename: archive.read(info) for info in archive.infolist()}
    parts[name] = text.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in parts.items():
            archive.writestr(member, data)
    return path


def records(path: Path, max_rows: int = 100, max_columns: int = 100) -> list[dict]:
    """The first sheet's records as dicts, read as a run reads them."""
    book = read_book(path)
    sheet = book.sheets[0]
    header = sheet_header(book, sheet, max_columns)
    assert header is not None
    return sheet_rows(book, sheet, header, max_rows).to_dicts()


# read_book


def test_a_books_sheets_are_listed_in_its_order_with_their_parts(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "funnel.xlsx"))
    book.add_worksheet("商机").write(0, 0, "id")
    book.add_worksheet("follow-ups").write(0, 0, "id")
    book.close()
    found = read_book(tmp_path / "funnel.xlsx")
    assert [(s.name, s.part) for s in found.sheets] == [
        ("商机", "xl/worksheets/sheet1.xml"),
        ("follow-ups", "xl/worksheets/sheet2.xml"),
    ]
    assert found.shared_part == "xl/sharedStrings.xml"
    assert found.epoch == EPOCH_1900


def test_a_chart_sheet_is_not_a_table(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "funnel.xlsx"))
    book.add_worksheet("deals").write_column(0, 0, [1, 2])
    chart = book.add_chart({"type": "line"})
    chart.add_series({"values": "=deals!$A$1:$A$2"})
    book.add_chartsheet("trend").set_chart(chart)
    book.close()
    assert [s.name for s in read_book(tmp_path / "funnel.xlsx").sheets] == ["deals"]


def test_the_1904_date_system_is_read_from_the_workbook(tmp_path):
    path = xlsx(tmp_path / "mac.xlsx", [["id"]], date_1904=True)
    assert read_book(path).epoch == EPOCH_1904


def test_a_file_that_is_no_zip_is_no_workbook(tmp_path):
    path = tmp_path / "deals.xlsx"
    path.write_text("opportunity_id,stage\nA,lead\n", encoding="utf-8")
    with pytest.raises(WorkbookError, match="File is not a zip file"):
        read_book(path)


def test_a_zip_without_a_workbook_part_is_no_workbook(tmp_path):
    path = tmp_path / "deals.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(WorkbookError, match=r"it has no part xl/workbook\.xml"):
        read_book(path)


def test_a_sheet_named_by_an_absolute_target_is_found(tmp_path):
    path = xlsx(tmp_path / "deals.xlsx", [["id"], ["A"]])
    with zipfile.ZipFile(path) as archive:
        rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    assert 'Target="worksheets/sheet1.xml"' in rels
    with_part(
        path,
        "xl/_rels/workbook.xml.rels",
        rels.replace('Target="worksheets/sheet1.xml"', 'Target="/xl/worksheets/sheet1.xml"'),
    )
    assert [s.part for s in read_book(path).sheets] == ["xl/worksheets/sheet1.xml"]


def test_the_styles_whose_number_format_is_a_date_are_known(tmp_path):
    """Styles 1 to 4 in the order first used: a custom date, a custom percentage, the built-in
    format 14 (a date) and the built-in format 3 (#,##0)."""
    path = tmp_path / "styles.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("deals")
    for column, number_format in enumerate(["yyyy-mm-dd", "0.0%", 14, 3]):
        sheet.write_number(0, column, 1, book.add_format({"num_format": number_format}))
    book.close()
    assert read_book(path).date_styles == frozenset({1, 3})


@pytest.mark.parametrize(
    ("code", "is_date"),
    [
        ("yyyy-mm-dd", True),
        ("hh:mm", True),
        ("[h]:mm:ss", True),  # elapsed hours
        ("[$-409]mmm d", True),  # a locale in brackets, then a date
        ("General", False),
        ("0.00", False),
        ("0.0%", False),
        ("[Red]#,##0", False),  # a colour is no date
        ('#,##0 "days"', False),  # quoted text is no date
        ("0.0\\d", False),  # an escaped d is text
        ("#,##0_);(#,##0)", False),  # _) is a space as wide as )
        ("@", False),
    ],
)
def test_a_number_format_is_a_date_when_it_shows_a_date_or_time_part(code, is_date):
    assert is_date_format(code) is is_date


def test_column_letters_are_numbered_from_zero_up_to_xfd():
    letters = pl.Series(["A", "Z", "AA", "AB", "XFD", "XFE", "a"])
    numbers = pl.select(column_index(pl.lit(letters))).to_series().to_list()
    assert numbers == [0, 25, 26, 27, 16_383, None, None]


# sheet_header


def test_the_header_is_the_first_row_with_a_value_from_its_first_to_its_last(tmp_path):
    """Two rows above it hold nothing but spaces; a blank cell between names is named for its
    place (as fastexcel names it)."""
    path = xlsx(
        tmp_path / "deals.xlsx",
        [
            [None, "  "],
            [],
            [None, "id", "stage", None, "amount"],
            [None, "A", "lead", "x", 100],
        ],
    )
    book = read_book(path)
    assert sheet_header(book, book.sheets[0], 100) == Header(
        row=3, first=1, names=["id", "stage", "__UNNAMED__2", "amount"]
    )


def test_a_header_of_numbers_reads_them_as_written(tmp_path):
    path = xlsx(tmp_path / "deals.xlsx", [["id", 2024, 2025.5]])
    book = read_book(path)
    assert sheet_header(book, book.sheets[0], 100).names == ["id", "2024", "2025.5"]


def test_an_empty_sheet_has_no_header(tmp_path):
    path = xlsx(tmp_path / "empty.xlsx", [])
    book = read_book(path)
    assert sheet_header(book, book.sheets[0], 100) is None


def test_a_header_wider_than_the_limit_has_blank_names_only(tmp_path):
    """Refused for its width by the caller: no name of it is read."""
    path = xlsx(tmp_path / "wide.xlsx", [["a", None, None, "d"]])
    book = read_book(path)
    assert sheet_header(book, book.sheets[0], 3) == Header(row=1, first=0, names=[""] * 4)


# sheet_rows: values as a spreadsheet shows them


def test_values_read_as_text_under_their_header_with_their_sheet_row(tmp_path):
    path = tmp_path / "deals.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("deals")
    sheet.write_row(0, 0, ["id", "amount", "won", "note"])
    sheet.write_row(1, 0, ["A", 1000, True, "A & <B>"])
    sheet.write_row(2, 0, ["B", 1000.5, False])
    sheet.write_formula(2, 3, "=NA()", None, "#N/A")  # an error shows nothing
    sheet.write_formula(3, 0, '="C"', None, "C")  # a formula's text
    sheet.write_number(3, 1, -0.25)
    book.close()
    assert records(path) == [
        {"id": "A", "amount": "1000", "won": "true", "note": "A & <B>", "_line": 2},
        {"id": "B", "amount": "1000.5", "won": "false", "note": None, "_line": 3},
        {"id": "C", "amount": "-0.25", "won": None, "note": None, "_line": 4},
    ]


def test_a_number_with_a_date_format_reads_as_a_date_and_time(tmp_path):
    path = tmp_path / "dates.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("deals")
    as_date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["id", "at"])
    for row, moment in enumerate(
        [
            datetime(2024, 6, 1),
            datetime(2024, 6, 1, 14, 5, 7),
            datetime(2024, 6, 1, 0, 0, 0, 500_000),
        ],
        start=1,
    ):
        sheet.write(row, 0, f"D{row}")
        sheet.write_datetime(row, 1, moment, as_date)
    sheet.write_row(4, 0, ["D4", 45444])  # the same day's serial number, without a format
    book.close()
    assert [(r["id"], r["at"]) for r in records(path)] == [
        ("D1", "2024-06-01 00:00:00"),
        ("D2", "2024-06-01 14:05:07"),
        ("D3", "2024-06-01 00:00:00.500"),
        ("D4", "45444"),
    ]


def test_dates_around_the_29_february_1900_that_excel_counts(tmp_path):
    """Excel's serial 1 is 1900-01-01, 59 is 1900-02-28 and 61 is 1900-03-01: it counts a
    29 February 1900 (serial 60) that never was."""
    path = tmp_path / "old.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("deals")
    as_date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write(0, 0, "at")
    for row, serial in enumerate([1, 59, 61], start=1):
        sheet.write_number(row, 0, serial, as_date)
    book.close()
    assert [r["at"] for r in records(path)] == [
        "1900-01-01 00:00:00",
        "1900-02-28 00:00:00",
        "1900-03-01 00:00:00",
    ]


def test_dates_of_the_1904_system_count_from_1904(tmp_path):
    path = tmp_path / "mac.xlsx"
    book = xlsxwriter.Workbook(str(path), {"date_1904": True})
    sheet = book.add_worksheet("deals")
    sheet.write(0, 0, "at")
    sheet.write_datetime(1, 0, datetime(2024, 6, 1), book.add_format({"num_format": "d/m/yy"}))
    sheet.write_number(2, 0, 1, book.add_format({"num_format": "d/m/yy"}))
    book.close()
    assert [r["at"] for r in records(path)] == ["2024-06-01 00:00:00", "1904-01-02 00:00:00"]


def test_text_that_xml_cannot_hold_is_read_back_as_written(tmp_path):
    """A control character is written `_x0007_`; a line break is kept."""
    path = xlsx(tmp_path / "odd.xlsx", [["note"], ["bell\x07"], ["a\nb"]])
    assert [r["note"] for r in records(path)] == ["bell\x07", "a\nb"]


def test_a_rich_string_reads_as_its_runs_joined(tmp_path):
    path = tmp_path / "rich.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("deals")
    sheet.write(0, 0, "note")
    sheet.write_rich_string(1, 0, book.add_format({"bold": True}), "Big", " deal")
    book.close()
    assert records(path) == [{"note": "Big deal", "_line": 2}]


def test_phonetic_guides_are_no_part_of_a_shared_string(tmp_path):
    path = xlsx(tmp_path / "ja.xlsx", [["customer"], ["東京"]])
    main_ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    with_part(
        path,
        "xl/sharedStrings.xml",
        f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{main_ns}" count="2" '
        'uniqueCount="2"><si><t>customer</t></si><si><t>東京</t>'
        '<rPh sb="0" eb="2"><t>トウキョウ</t></rPh></si></sst>',
    )
    assert records(path) == [{"customer": "東京", "_line": 2}]


def test_blank_rows_and_values_outside_the_header_are_no_records(tmp_path):
    """Row 3 holds only spaces, row 5 only an empty formula text, row 6 only a value right of
    the header's last column: none is a record."""
    body = (
        cells(1, ["id", "stage"])
        + cells(2, ["A", "lead"])
        + cells(3, ["  ", ""])
        + cells(4, ["B", "won"])
        + '<row r="5"><c r="A5" t="str"><f>""</f><v></v></c></row>'
        + '<row r="6"><c r="C6" t="inlineStr"><is><t>stray</t></is></c></row>'
    )
    workbook(tmp_path / "deals.xlsx", body, dimension=None)
    assert records(tmp_path / "deals.xlsx") == [
        {"id": "A", "stage": "lead", "_line": 2},
        {"id": "B", "stage": "won", "_line": 4},
    ]


def test_numbers_lose_their_trailing_zeros_as_a_spreadsheet_shows_them(tmp_path):
    body = cells(1, ["amount"]) + "".join(
        f'<row r="{r}"><c r="A{r}"><v>{v}</v></c></row>'
        for r, v in enumerate(["100.50", "100.0", "10", " 7 ", "1.5E3"], start=2)
    )
    workbook(tmp_path / "deals.xlsx", body, dimension=None)
    assert [r["amount"] for r in records(tmp_path / "deals.xlsx")] == [
        "100.5",
        "100",
        "10",
        "7",
        "1500",
    ]


def test_cells_in_other_shapes_are_read_alike(tmp_path):
    """Attributes in another order, a cell without a reference (it follows the one before it
    in its row), rows without numbers (each follows the one before it), an ISO date cell."""
    body = (
        cells(1, ["id", "stage", "at"])
        + '<row><c t="inlineStr" r="A2"><is><t>A</t></is></c>'
        + '<c t="inlineStr"><is><t>lead</t></is></c>'
        + '<c t="d"><v>2024-06-01T10:00:00</v></c></row>'
        + '<row><c r="B3" t="inlineStr"><is><t>won</t></is></c></row>'
    )
    workbook(tmp_path / "deals.xlsx", body, dimension=None)
    assert records(tmp_path / "deals.xlsx") == [
        {"id": "A", "stage": "lead", "at": "2024-06-01T10:00:00", "_line": 2},
        {"id": None, "stage": "won", "at": None, "_line": 3},
    ]


def test_namespace_prefixed_xml_reads_as_plain(tmp_path):
    """Some writers prefix every element (`<x:row>`, `<x:c>`)."""
    path = tmp_path / "deals.xlsx"
    workbook(path, "", dimension=None)
    main_ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    text = '<x:c r="{}" t="inlineStr"><x:is><x:t>{}</x:t></x:is></x:c>'
    rows = (
        f'<x:row r="1">{text.format("A1", "id")}{text.format("B1", "amount")}</x:row>'
        f'<x:row r="2">{text.format("A2", "A")}<x:c r="B2"><x:v>100</x:v></x:c></x:row>'
    )
    with_part(
        path,
        "xl/worksheets/sheet1.xml",
        f'<?xml version="1.0" encoding="UTF-8"?><x:worksheet xmlns:x="{main_ns}">'
        f"<x:sheetData>{rows}</x:sheetData></x:worksheet>",
    )
    assert records(path) == [{"id": "A", "amount": "100", "_line": 2}]


def test_rows_without_numbers_keep_their_lines_across_pieces(tmp_path):
    """30,000 rows without `r` (about 2.4 MB of XML, three pieces of a megabyte), read in
    parallel: each piece after the first learns its first row from the piece before it."""
    body = cells(1, ["id", "stage"]) + "".join(
        f'<row><c t="inlineStr"><is><t>D{n}</t></is></c><c t="inlineStr"><is><t>lead</t>'
        "</is></c></row>"
        for n in range(2, 30_002)
    )
    assert len(body) > 2 << 20
    workbook(tmp_path / "deals.xlsx", body, dimension=None)
    found = records(tmp_path / "deals.xlsx", max_rows=30_000)
    assert len(found) == 30_000
    assert all(r["id"] == f"D{r['_line']}" for r in found)
    assert (found[0]["_line"], found[-1]["_line"]) == (2, 30_001)


def test_more_records_than_the_limit_stop_the_read(tmp_path):
    path = xlsx(tmp_path / "deals.xlsx", [["id"], ["A"], ["B"], ["C"]])
    assert len(records(path, max_rows=3)) == 3
    with pytest.raises(TooManyRows, match="more than 2 rows after its header"):
        records(path, max_rows=2)


# dimension_rows and counted_rows: what is known before reading


def test_the_dimension_gives_the_rows_a_sheet_spans(tmp_path):
    path = xlsx(tmp_path / "deals.xlsx", [[None, "id"], [None, "A"], [None, None, "x"]])
    book = read_book(path)
    assert dimension_rows(book, book.sheets[0]) == (3, "B1:C3")


def test_a_one_cell_dimension_is_one_row(tmp_path):
    path = xlsx(tmp_path / "deals.xlsx", [["id"]])
    book = read_book(path)
    assert dimension_rows(book, book.sheets[0]) == (1, "A1")


def test_a_sheet_without_a_dimension_has_its_rows_counted(tmp_path):
    body = cells(1, ["id"]) + cells(2, ["A"]) + "<row/>" + '<row r="9"></row>'
    workbook(tmp_path / "deals.xlsx", body, dimension=None)
    book = read_book(tmp_path / "deals.xlsx")
    assert dimension_rows(book, book.sheets[0]) is None
    assert counted_rows(book, book.sheets[0]) == 4


# Failing (product bugs, reported; left out of the commits)


def test_a_shared_string_that_looks_like_an_escape_reads_as_written(tmp_path):
    """Excel writes the text `_x0041_` as `_x005F_x0041_` and shows `_x0041_`; the shared
    strings are unescaped once when read, and must not be again when a cell names them."""
    path = xlsx(tmp_path / "odd.xlsx", [["note"], ["_x0041_"]])
    with zipfile.ZipFile(path) as archive:
        assert b"<t>_x005F_x0041_</t>" in archive.read("xl/sharedStrings.xml")
    assert [r["note"] for r in records(path)] == ["_x0041_"]


def test_text_holding_a_character_reference_reads_as_written(tmp_path):
    """A customer name exported from a web CRM as `O&#39;Brien` is stored by the workbook as
    `O&amp;#39;Brien`, and a spreadsheet shows `O&#39;Brien` (as the same export in a CSV
    file reads): its `&amp;` is decoded once, not its `&#39;` as well."""
    path = xlsx(tmp_path / "crm.xlsx", [["customer"], ["O&#39;Brien"], ["&copy; Acme"]])
    assert [r["customer"] for r in records(path)] == ["O&#39;Brien", "&copy; Acme"]


def test_an_inline_string_holding_a_character_reference_reads_as_written(tmp_path):
    body = cells(1, ["customer"]) + cells(2, ["O&amp;#39;Brien"])
    workbook(tmp_path / "crm.xlsx", body, dimension=None)
    assert [r["customer"] for r in records(tmp_path / "crm.xlsx")] == ["O&#39;Brien"]
