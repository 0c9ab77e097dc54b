"""None, NULL, N/A, NaN and - (what pandas and many tools write for nothing) read as blank in
optional cells, counted; a required cell holding one is missing."""

from __future__ import annotations

import json
from pathlib import Path

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import data_quality, validate_inputs

HEADER = (
    "opportunity_id,stage,created_at,status,closed_at,expected_close_date,amount,owner,"
    "customer_name,lost_reason,stage_entered_at\n"
)
ROWS = (  # 7 null words in optional cells of A-C; D, E and F hold one where one is required
    "A,lead,2024-06-01,open,NULL,None,N/A,nan,Nonesuch Ltd,,NaN\n"
    "B,proposal,2024-06-02,None,,2024-07-01, - ,Ann,N/A Corp,none,\n"
    "C,lead,2024-06-03,lost,2024-06-20,,100,Bob,Acme,  -  ,2024-06-03\n"
    "D,lead,None,open,,,1,Cy,Delta,,\n"
    "NULL,lead,2024-06-04,open,,,1,Cy,Eps,,\n"
    "F,n/a,2024-06-05,open,,,1,Cy,Zeta,,\n"
)


def read(folder: Path):
    inputs = read_inputs(folder, RunSettings())
    validated = validate_inputs(inputs)
    return inputs, validated, data_quality(inputs, validated)


def test_null_words_in_optional_cells_read_as_blank_and_are_counted(tmp_path):
    (tmp_path / "opportunities.csv").write_text(HEADER + ROWS, encoding="utf-8")
    _, validated, quality = read(tmp_path)
    opps = validated["opportunities"]
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert sorted(rows) == ["A", "B", "C"]
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["closed_at"], a["expected_close_date"], a["amount"], a["owner"]) == (
        None,
        None,
        None,
        None,
    )
    assert a["stage_entered_at"] is None
    assert (b["status"], b["amount"], b["lost_reason"]) == ("open", None, None)
    assert c["lost_reason"] is None
    # a word that only holds one is a value
    assert (a["customer_name"], b["customer_name"]) == ("Nonesuch Ltd", "N/A Corp")
    # a required cell holding one is missing, as an empty one is
    reasons = dict(
        zip(
            opps.quarantined["_row"].to_list(),
            opps.quarantined["reasons"].to_list(),
            strict=True,
        )
    )
    assert reasons == {
        4: ["created_at: missing (required)"],
        5: ["opportunity_id: missing (required)"],
        6: ["stage: missing (required)"],
    }
    assert quality["opportunities"]["null_words"] == {
        "cells": 12,
        "columns": {
            "opportunity_id": 1,
            "stage": 1,
            "created_at": 1,
            "status": 1,
            "closed_at": 1,
            "expected_close_date": 1,
            "amount": 2,
            "owner": 1,
            "lost_reason": 2,
            "stage_entered_at": 1,
        },
    }


def test_the_first_non_blank_of_several_headers_passes_over_a_null_word(tmp_path):
    """Pipedrive's won and lost times, as pandas writes a missing one."""
    (tmp_path / "deals.csv").write_text(
        "Deal - ID,Deal - Stage,Deal - Status,Deal - Deal created,Deal - Won time,"
        "Deal - Lost time\n"
        "1,Proposal Made,lost,2024-05-01,None,2024-06-03\n"
        "2,Proposal Made,won,2024-05-01,2024-06-04,None\n",
        encoding="utf-8",
    )
    inputs, validated, _ = read(tmp_path)
    assert inputs.preset.name == "pipedrive"
    valid = validated["opportunities"].valid
    closed = dict(zip(valid["opportunity_id"], valid["closed_at"], strict=True))
    assert {k: v.date().isoformat() for k, v in closed.items()} == {
        "1": "2024-06-03",
        "2": "2024-06-04",
    }


def test_the_count_is_in_metrics_json_and_the_report_appendix(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(HEADER + ROWS, encoding="utf-8")
    out = tmp_path / "out"
    run = ["run", "--input", str(folder), "--period", "2024-06", "--out", str(out)]
    for lang in ("en", "zh"):
        assert main([*run, "--allow-stale", "--lang", lang]) == 0  # the export ends 2024-06-20
        report = (out / "2024-06" / "report.html").read_text(encoding="utf-8")
        if lang == "en":
            assert (
                "opportunities: 12 cells held None, NULL, N/A, NaN or - and were read as blank"
                in report
            )
        else:
            assert "商机：12 个单元格为 None、NULL、N/A、NaN 或 -，按空值读取" in report
    metrics = json.loads((out / "2024-06" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data_quality"]["opportunities"]["null_words"]["cells"] == 12
    assert metrics["data_quality"]["opportunities"]["null_words"]["columns"]["amount"] == 2
