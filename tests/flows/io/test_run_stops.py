"""What stops a run rather than report on a guess (issue 22, point 3): a snapshot folder
dated after today, two files that fit one table equally well, and an export with a header
but no rows; each exit 2, naming the files and the funnel.toml line that resolves it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import xlsxwriter

from funnel_reports.flows.cli import main
from tests.flows.io.folders import HEADER, deals_folder, refusal


def test_a_snapshot_folder_dated_after_today_stops_the_run(tmp_path, capsys):
    exports = tmp_path / "exports"
    for day in ("2024-05-31", "2062-05-31"):
        (exports / day).mkdir(parents=True)
        (exports / day / "opportunities.csv").write_text(
            HEADER + "A,lead,open,2024-05-01,,100,Ann\n", encoding="utf-8"
        )
    assert main(["validate", "--input", str(exports)]) == 2
    line = refusal(capsys)
    assert line.startswith(f"funnel: {exports / '2062-05-31'}: a snapshot folder dated after ")
    assert line.endswith("rename it to the date its export was taken")


def test_two_files_that_fit_one_table_equally_stop_the_run(tmp_path, capsys):
    folder = deals_folder(
        tmp_path, HEADER + "A,lead,open,2024-08-01,,100,Ann\n", "deals_2026-08.csv"
    )
    deals_folder(tmp_path, HEADER + "A,lead,open,2024-09-01,,200,Ann\n", "deals_2026-09.csv")
    assert main(["validate", "--input", str(folder)]) == 2
    assert refusal(capsys) == (
        f"funnel: {folder}: deals_2026-08.csv and deals_2026-09.csv fit opportunities equally "
        "well (7 columns each); name the one to use in funnel.toml: [source.files] "
        'opportunities = "deals_2026-09.csv"'
    )
    (tmp_path / "funnel.toml").write_text(
        '[source.files]\nopportunities = "deals_2026-09.csv"\n', encoding="utf-8"
    )
    config = ["--config", str(tmp_path / "funnel.toml")]
    assert main(["validate", "--input", str(folder), *config]) == 0
    assert "not used: deals_2026-08.csv" in capsys.readouterr().out.splitlines()


def test_an_export_with_a_header_but_no_rows_stops_the_run(tmp_path, capsys):
    folder = deals_folder(tmp_path, HEADER)
    assert main(["validate", "--input", str(folder)]) == 2
    assert refusal(capsys) == (
        f"funnel: {folder / 'opportunities.csv'}: has a header but no rows, so the report "
        "would be all zeros; export it again, or name the file that holds the deals in "
        'funnel.toml: [source.files] opportunities = "<file>"'
    )


def test_a_header_only_export_answers_before_prefect_starts(tmp_path):
    # it was refused only once the run had started Prefect and read the folder
    folder = deals_folder(tmp_path, HEADER + "\n  \n")  # blank lines are no records
    probe = (
        "import sys\nfrom flows.cli import main\nstatus = main(sys.argv[1:])\n"
        "print(status, 'prefect' in sys.modules)\n"
    )
    args = ["run", "--input", str(folder), "--period", "2024-06", "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "2 False", done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"funnel: {folder / 'opportunities.csv'}: has a header but no rows, so the report "
        "would be all zeros; export it again, or name the file that holds the deals in "
        'funnel.toml: [source.files] opportunities = "<file>"'
    ]


def test_a_sheet_with_a_header_only_is_refused_from_its_dimension(tmp_path):
    from funnel_reports.flows.io.exports import check_layout
    from funnel_reports.transforms.funnel_model import RunSettings
    from funnel_reports.transforms.staging.layout import UnusableInputError

    folder = tmp_path / "in"
    folder.mkdir()
    book = xlsxwriter.Workbook(folder / "deals.xlsx")
    sheet = book.add_worksheet("deals")
    for column, name in enumerate(HEADER.strip().split(",")):
        sheet.write(0, column, name)
    book.close()
    with pytest.raises(UnusableInputError, match="has a header but no rows"):
        check_layout(folder, RunSettings())
    (tmp_path / "csv").mkdir()
    with_a_record = deals_folder(tmp_path / "csv", HEADER + "A,lead,open,2024-05-01,,100,Ann\n")
    check_layout(with_a_record, RunSettings())  # a record: nothing to refuse
