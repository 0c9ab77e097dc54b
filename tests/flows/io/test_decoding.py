"""Decoding decided per file, believed line by line (issue 22, point 3): a line that does
not decode is quarantined with its reason and the rest read in the file's encoding; a file
that no encoding reads as plausible text is refused with the encodings tried."""

from __future__ import annotations

import random

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.exports import whole_quarantine
from funnel_reports.transforms.staging.checks import check_inputs
from tests.flows.io.folders import HEADER, as_read, deals_folder, quarantined, read, refusal


def test_one_latin_1_byte_in_a_utf_8_file_quarantines_its_row_and_nothing_else(tmp_path):
    rows = [f"D{i},lead,open,2024-06-0{1 + i % 9},,{100 + i},王芳\n" for i in range(30)]
    rows[12] = "X,lead,open,2024-06-02,,100,Café\n"
    data = (HEADER + "".join(rows)).encode("utf-8").replace("é".encode(), "é".encode("latin-1"))
    inputs, validated = read(deals_folder(tmp_path, data))
    assert inputs.files[0].source.encoding == "utf-8"
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (30, 29, 1)
    assert set(opps.valid["owner"]) == {"王芳"}
    assert quarantined(inputs, validated) == {
        "X": ["row: holds bytes that are not utf-8 text (got 'Caf\ufffd')"]
    }
    lines = dict(as_read(inputs).select("opportunity_id", "_line").iter_rows())
    assert lines["X"] == 14
    # its row is written to the quarantine as it came, the byte as U+FFFD, like its reason
    checked = whole_quarantine(check_inputs(inputs), inputs.files)
    [row] = checked.quarantine["opportunities"].to_dicts()
    assert (row["opportunity_id"], row["owner"], row["_line"]) == ("X", "Caf\ufffd", 14)


def test_a_file_that_decodes_to_no_plausible_text_is_refused_with_the_encodings_tried(
    tmp_path, capsys
):
    rng = random.Random(22)
    noise = bytes(rng.randrange(256) for _ in range(4000))
    folder = deals_folder(tmp_path, HEADER.encode() + noise)
    assert main(["validate", "--input", str(folder)]) == 2
    line = refusal(capsys)
    path = folder / "opportunities.csv"
    assert line.startswith(f"funnel: {path}: reads as no plausible text in the encodings tried (")
    assert "utf-8: " in line
    assert line.endswith(
        'set [source.parse] encoding in funnel.toml ("latin-1", say), or save it as CSV '
        "UTF-8 or XLSX"
    )
