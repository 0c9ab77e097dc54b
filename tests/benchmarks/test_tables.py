"""The tables benchmark (benchmarks/tables.py) on a small generated export: two real
`funnel run`s, and LibreOffice reading every sheet of the workbook back (heavy: it needs
LibreOffice, which `make heavy-test-packages` installs); and how it counts a table's rows
over the sheets it goes on in."""

from __future__ import annotations

import re
import shutil

import pytest

from benchmarks.tables import main, sheet_rows, tables_steps


@pytest.mark.heavy
def test_libreoffice_reads_every_sheet_of_a_generated_month_row_for_row(tmp_path, capsys):
    assert shutil.which("soffice"), "LibreOffice is not installed: make heavy-test-packages"
    assert main(["--opportunities", "2000", "--repeat", "1", "--work", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "the tables add" in out and "LibreOffice read every sheet in" in out
    sheets = re.findall(r"^  (\w+) +([\d,]+) rows, read +(\d+)$", out, flags=re.MULTILINE)
    assert [name for name, _, _ in sheets] == [
        "backtest",
        "conversion",
        "deals",
        "figures",
        "forecast",
        "stage_visits",
    ]
    assert all(int(rows.replace(",", "")) == int(read) for _, rows, read in sheets), sheets
    assert all(int(read) > 0 for name, _, read in sheets if name != "backtest")


def test_a_table_s_rows_are_counted_over_the_sheets_it_goes_on_in(tmp_path):
    for name, lines in {
        "report-conversion.csv": 4,
        "report-conversion_2.csv": 3,
        "report-conversion_10.csv": 2,
        "report-conversion_cohorts.csv": 9,  # another table's sheet
        "report-deals.csv": 1,
    }.items():
        (tmp_path / name).write_text("header\n" + "row\n" * (lines - 1), encoding="utf-8")
    assert sheet_rows(tmp_path, "report", "conversion") == 3 + 2 + 1
    assert sheet_rows(tmp_path, "report", "deals") == 0
    assert sheet_rows(tmp_path, "report", "forecast") is None


def test_the_tables_own_steps_are_computing_them_and_the_write_step_s_difference():
    def manifest(**steps: float) -> dict:
        return {"timings_seconds": {"steps": steps}}

    plain = manifest(compute=1.0, render_pdf=1.5, write=0.25)
    full = manifest(compute=1.0, tables=0.5, render_pdf=1.5, write=2.0)
    assert tables_steps(plain, full) == 0.5 + 2.0 - 0.25
    assert tables_steps(plain, manifest(write=0.25)) == 0.0
