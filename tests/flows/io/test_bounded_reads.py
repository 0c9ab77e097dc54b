"""Bounded reads (issue 22, point 2): a file no table needs is read by its header only, and
every file that is read is checked against the size and row limits of `[source]` before it
is read; a file over them stops the run (exit 2) naming it, the limit and the key."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io import readers
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import validate_inputs
from tests.flows.io.folders import as_read

DEALS = (
    "opportunity_id,stage,status,created_at,amount\n"
    "A,lead,open,2024-06-01,100\n"
    "B,won,won,2024-06-02,200\n"
)
GIB = 1 << 30


def folder_with(tmp_path: Path, files: dict[str, str | bytes], config: str = "") -> list[str]:
    """An input folder of these files, and the `funnel validate` arguments that read it."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    arguments = ["validate", "--input", str(folder)]
    if config:
        (tmp_path / "funnel.toml").write_text(config, encoding="utf-8")
        arguments += ["--config", str(tmp_path / "funnel.toml")]
    return arguments


def refusal(capsys) -> str:
    [line] = capsys.readouterr().err.strip().splitlines()
    return line


def sparse(path: Path, head: bytes, size: int) -> None:
    """A file of `size` bytes that holds `head` and then a hole (zeros, no disk blocks)."""
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)


def test_a_stray_sparse_file_no_table_needs_is_read_by_its_header_only(tmp_path, capsys):
    arguments = folder_with(tmp_path, {"opportunities.csv": DEALS})
    stray = tmp_path / "in" / "notes.csv"
    sparse(stray, b"id,text\n", 2 * GIB)
    assert stray.stat().st_blocks * 512 < 1 << 20  # 2 GiB apparent, next to nothing on disk
    # its size is over the limit, but no table needs it: its header is all that is read
    (tmp_path / "funnel.toml").write_text("[source]\nmax_file_bytes = 1_000_000\n", "utf-8")
    assert main([*arguments, "--config", str(tmp_path / "funnel.toml")]) == 0
    assert "not used: notes.csv" in capsys.readouterr().out.splitlines()


def test_a_file_no_table_needs_is_not_read_past_its_header(tmp_path, capsys):
    """Rows that would make the file unusable do not matter when no table takes it."""
    arguments = folder_with(
        tmp_path, {"opportunities.csv": DEALS, "notes.csv": "id;text\n1,a\n2,b\n"}
    )
    assert main(arguments) == 0
    assert "not used: notes.csv" in capsys.readouterr().out.splitlines()


def test_a_sparse_file_a_table_needs_stops_the_run_naming_it(tmp_path, capsys):
    arguments = folder_with(tmp_path, {})
    path = tmp_path / "in" / "opportunities.csv"
    sparse(path, DEALS.encode(), 2 * GIB)
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {path}: holds NUL bytes (the first at byte {len(DEALS)}): a file with a hole, "
        "or not a text export; expected CSV text or an XLSX workbook"
    )


def test_a_nul_byte_past_the_first_piece_is_found_by_the_pass_beside_the_read(
    tmp_path, capsys, monkeypatch
):
    """Only a file's first piece is looked at before it is read; the rest of its bytes are
    counted (and hashed) in a second thread while polars reads it, and a NUL there stops the
    run all the same, at its byte."""
    monkeypatch.setattr(readers, "PIECE_BYTES", 16)
    data = DEALS.encode() + b"C,lead,open,2024-06-03,3\0\n"
    arguments = folder_with(tmp_path, {"opportunities.csv": data})
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {tmp_path / 'in' / 'opportunities.csv'}: holds NUL bytes (the first at "
        f"byte {len(data) - 2}): a file with a hole, or not a text export; expected CSV text "
        "or an XLSX workbook"
    )


def test_rows_past_the_first_piece_are_held_to_the_row_limit_too(tmp_path, capsys, monkeypatch):
    """A file whose first piece promises well under `max_rows` is read while its rows are
    counted; more than `max_rows` stop the run once they are."""
    monkeypatch.setattr(readers, "PIECE_BYTES", 64)
    header = "opportunity_id,stage,status,created_at,amount\n"
    rows = "".join(f"D{i:02},lead,open,2024-06-01,1\n" for i in range(21))
    arguments = folder_with(
        tmp_path, {"opportunities.csv": header + rows}, "[source]\nmax_rows = 20\n"
    )
    path = tmp_path / "in" / "opportunities.csv"
    head = readers.csv_head(path, None, readers.Limits(max_rows=20))
    assert not readers.precheck(path, head, readers.Limits(max_rows=20)).near_row_limit
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {path}: 21 lines after its header, over the limit of 20 rows; raise [source] "
        "max_rows in funnel.toml to read it"
    )


def test_a_file_over_the_size_limit_stops_the_run_before_it_is_read(tmp_path, capsys):
    arguments = folder_with(
        tmp_path, {"opportunities.csv": DEALS}, "[source]\nmax_file_bytes = 50\n"
    )
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {tmp_path / 'in' / 'opportunities.csv'}: {len(DEALS)} bytes, over the limit "
        "of 50 bytes; raise [source] max_file_bytes in funnel.toml to read it"
    )


def test_a_file_over_the_row_limit_stops_the_run_before_it_is_read(tmp_path, capsys):
    rows = "".join(f"D{i},lead,open,2024-06-01,{i}\n" for i in range(20))
    arguments = folder_with(
        tmp_path,
        {"opportunities.csv": "opportunity_id,stage,status,created_at,amount\n" + rows},
        "[source]\nmax_rows = 10\n",
    )
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {tmp_path / 'in' / 'opportunities.csv'}: 20 lines after its header, over the "
        "limit of 10 rows; raise [source] max_rows in funnel.toml to read it"
    )


def test_a_side_file_with_too_many_columns_is_named(tmp_path, capsys):
    header = ",".join(f"c{i}" for i in range(100_000))
    arguments = folder_with(
        tmp_path, {"opportunities.csv": DEALS, "wide.csv": header + "\n" + "1," * 99_999 + "1\n"}
    )
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {tmp_path / 'in' / 'wide.csv'}: its header has 100,000 columns, over the "
        "limit of 2,000 columns; raise [source] max_columns in funnel.toml to read it"
    )


def test_a_header_field_over_csvs_limit_is_named(tmp_path, capsys):
    header = "opportunity_id,stage,created_at," + "x" * 200_000
    arguments = folder_with(tmp_path, {"opportunities.csv": DEALS, "odd.csv": header + "\n1\n"})
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {tmp_path / 'in' / 'odd.csv'}: a field of its header is longer than 131,072 "
        "characters (csv's field limit); expected column names on line 1"
    )


# workbooks, written part by part: the sheet's rows as inline strings


def workbook(path: Path, sheet_rows: str, *, dimension: str | None) -> None:
    """An .xlsx file with one sheet `deals` whose <sheetData> holds `sheet_rows`."""
    main_ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel_ns = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006"
    sheet = (
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{main_ns}">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetData>{sheet_rows}</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{package}/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
        ),
        "_rels/.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}/'
            f'relationships"><Relationship Id="rId1" Type="{rel_ns}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>'
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{main_ns}" '
            f'xmlns:r="{rel_ns}"><sheets><sheet name="deals" sheetId="1" r:id="rId1"/>'
            "</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{package}/'
            f'relationships"><Relationship Id="rId1" Type="{rel_ns}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as book:
        for name, text in parts.items():
            book.writestr(name, text)


def cells(row: int, values: list[str]) -> str:
    """One <row> of inline strings from column A on."""
    inline = "".join(
        f'<c r="{chr(65 + i)}{row}" t="inlineStr"><is><t>{v}</t></is></c>'
        for i, v in enumerate(values)
    )
    return f'<row r="{row}">{inline}</row>'


DEAL_ROWS = [
    ["opportunity_id", "stage", "status", "created_at", "amount"],
    ["A", "lead", "open", "2024-06-01", "100"],
    ["B", "qualified", "open", "2024-06-02", "200"],
]


@pytest.mark.parametrize("dimension", ["A1:E3000001", None], ids=["dimension", "counted"])
def test_a_workbook_of_more_rows_than_a_sheet_holds_stops_the_run_unread(
    tmp_path, capsys, dimension
):
    """3 million rows in a few megabytes (more than Excel's 1,048,576): refused by the sheet's
    <dimension>, or by counting its rows when it has none, before a cell is read."""
    body = "".join(cells(i + 1, row) for i, row in enumerate(DEAL_ROWS)) + "".join(
        "<row><c><v>1</v></c></row>"
        for _ in range(4, 3_000_002)  # r is optional
    )
    arguments = folder_with(tmp_path, {})
    path = tmp_path / "in" / "deals.xlsx"
    workbook(path, body, dimension=dimension)
    assert path.stat().st_size < 4 << 20
    assert main(arguments) == 2
    counted = "its <dimension> A1:E3000001" if dimension else "counted"
    assert refusal(capsys) == (
        f"funnel: {path}[deals]: 3,000,000 rows after its header ({counted}), more than a "
        "worksheet holds (1,048,576); expected a workbook Excel can open"
    )


def test_a_workbook_over_the_row_limit_stops_the_run(tmp_path, capsys):
    body = "".join(cells(i + 1, row) for i, row in enumerate(DEAL_ROWS))
    arguments = folder_with(tmp_path, {}, "[source]\nmax_rows = 1\n")
    path = tmp_path / "in" / "deals.xlsx"
    workbook(path, body, dimension="A1:E3")
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {path}[deals]: 2 rows after its header (its <dimension> A1:E3), over the "
        "limit of 1 rows; raise [source] max_rows in funnel.toml to read it"
    )


def test_a_workbook_is_checked_against_its_uncompressed_size(tmp_path, capsys):
    body = "".join(cells(i + 1, row) for i, row in enumerate(DEAL_ROWS)) + "".join(
        cells(r, [f"D{r}", "lead", "open", "2024-06-01", "1"]) for r in range(4, 2_000)
    )
    arguments = folder_with(tmp_path, {}, "[source]\nmax_file_bytes = 100_000\n")
    path = tmp_path / "in" / "deals.xlsx"
    workbook(path, body, dimension="A1:E1999")
    assert path.stat().st_size < 100_000
    size = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml").file_size
    assert main(arguments) == 2
    assert refusal(capsys) == (
        f"funnel: {path}[deals]: {size:,} bytes of sheet XML uncompressed, over the limit of "
        "100,000 bytes; raise [source] max_file_bytes in funnel.toml to read it"
    )


def test_a_legal_sheet_filled_down_to_its_last_row_reads_its_deals_only(tmp_path):
    """A formula filled down the whole sheet (1,048,576 rows, each an empty text) is blank
    rows, not a million deals to quarantine; each deal keeps its sheet row as its line."""
    body = (
        "".join(cells(i + 1, row) for i, row in enumerate(DEAL_ROWS))
        + cells(5, ["C", "lead", "open", "2024-06-03", "300"])
        + "".join(
            f'<row r="{r}"><c r="F{r}" t="str"><f>""</f><v></v></c></row>'
            for r in range(6, 1_048_577)
        )
    )
    folder = tmp_path / "in"
    folder.mkdir()
    workbook(folder / "deals.xlsx", body, dimension="A1:F1048576")
    inputs = read_inputs(folder, RunSettings())
    validated = validate_inputs(inputs)
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (3, 3, 0)
    lines = dict(as_read(inputs).select("opportunity_id", "_line").iter_rows())
    assert lines == {"A": 2, "B": 3, "C": 5}


def test_a_workbook_no_table_needs_is_read_by_its_header_only(tmp_path, capsys):
    body = cells(1, ["id", "text"]) + "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(2, 200)
    )
    arguments = folder_with(
        tmp_path, {"opportunities.csv": DEALS}, "[source]\nmax_file_bytes = 2_000\n"
    )
    workbook(tmp_path / "in" / "notes.xlsx", body, dimension=None)
    assert os.path.getsize(tmp_path / "in" / "opportunities.csv") < 2_000
    assert main(arguments) == 0
    assert "not used: notes.xlsx[deals]" in capsys.readouterr().out.splitlines()
