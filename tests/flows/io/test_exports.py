"""Exports in the layouts and encodings people have: each read with exact, reconciled counts."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from funnel_reports.flows.io.exports import read_inputs, whole_quarantine
from funnel_reports.transforms.funnel_model import RunSettings, SourceSettings
from funnel_reports.transforms.staging.checks import check_inputs, validate_inputs
from funnel_reports.transforms.staging.layout import UnusableInputError
from tests.flows.io.folders import as_read

TEMPLATE_HEADER = [
    "机会编号",
    "客户名称",
    "联系人",
    "所属行业",
    "客户规模",
    "需求描述",
    "需求来源",
    "当前阶段",
    "预计成交金额",
    "预计成交日期",
    "阶段停留原因",
    "销售负责人",
    "协作成员",
    "创建日期",
    "成交日期",
    "状态",
]
TEMPLATE_ROWS = [
    [
        "ZH-1",
        "华东精密制造有限公司",
        "赵经理",
        "制造",
        "中型",
        "MES 升级",
        "展会",
        "3.方案报价",
        "25万",
        "2024/7/15",
        "客户预算审批中",
        "张伟",
        "李娜",
        "2024/6/1",
        "",
        "跟进中",
    ],
    [
        "ZH-2",
        "南方物流集团",
        "钱经理",
        "物流",
        "大型",
        "仓储系统",
        "转介绍",
        "5.成交签约",
        "￥1,200,000",
        "2024/6/20",
        "",
        "李娜",
        "",
        "2024/5/2",
        "2024年6月18日",
        "赢单",
    ],
    [
        "ZH-3",
        "远航软件",
        "孙经理",
        "软件",
        "小型",
        "",
        "官网",
        "需求确认",
        "8万",
        "",
        "",
        "王芳",
        "",
        "2024/6/3",
        "2024/6/25",
        "输单",
    ],
    [
        "ZH-4",
        "坏数据公司",
        "周经理",
        "软件",
        "小型",
        "",
        "官网",
        "需求确认",
        "八万",
        "",
        "",
        "王芳",
        "",
        "2024/13/3",
        "",
        "跟进中",
    ],
]
FOLLOWUP_HEADER = ["机会编号", "沟通时间", "沟通方式", "沟通要点", "客户反馈", "下一步行动"]
FOLLOWUP_ROWS = [
    ["ZH-1", "2024/6/5 10:30", "电话", "介绍方案", "认可", "发送报价单"],
    ["ZH-2", "2024/6/10", "拜访", "价格谈判", "需要内部讨论", "安排签约"],
    ["ZH-9", "2024/6/10", "微信", "无此商机", "", ""],
]


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if any(c in v for c in (delimiter, '"', "\n")) else v

    return "\n".join(delimiter.join(cell(v) for v in row) for row in [header, *rows]) + "\n"


def read(folder: Path, settings: RunSettings | None = None):
    inputs = read_inputs(folder, settings or RunSettings(timezone="Asia/Shanghai"))
    validated = validate_inputs(inputs)
    for table in validated.values():
        assert table.rows_read == table.rows_valid + table.rows_quarantined
    return inputs, validated


def check_template(inputs, validated):
    assert inputs.preset.name == "template-zh"
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (4, 3, 1)
    assert opps.quarantined["reasons"].to_list() == [
        [
            "created_at (创建日期): cannot read as a timestamp (got '2024/13/3')",
            "amount (预计成交金额): cannot read as a number (got '八万')",
        ]
    ]
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert (rows["ZH-1"]["stage"], rows["ZH-1"]["status"], rows["ZH-1"]["amount"]) == (
        "proposal",
        "open",
        250_000.0,
    )
    assert str(rows["ZH-1"]["expected_close_date"]) == "2024-07-15"
    assert (rows["ZH-2"]["stage"], rows["ZH-2"]["status"], rows["ZH-2"]["amount"]) == (
        "won",
        "won",
        1_200_000.0,
    )
    assert rows["ZH-2"]["closed_at"].isoformat() == "2024-06-17T16:00:00+00:00"  # +08:00
    assert (rows["ZH-3"]["status"], rows["ZH-3"]["stage"]) == ("lost", "qualified")
    # contact details are never read into the tables (no figure needs them): the file's
    # 联系人 column is left out, and read again only for a quarantined row
    assert "联系人" in inputs.files[0].source.unread
    assert "联系人" not in inputs.files[0].source.rows.columns
    assert rows["ZH-1"]["contact_name"] is None
    followups = validated["followups"]
    assert (followups.rows_valid, followups.rows_quarantined) == (2, 1)
    assert followups.valid["channel"].to_list() == ["phone", "visit"]


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-16"])
def test_chinese_template_in_excel_encodings(tmp_path, encoding):
    delimiter = "\t" if encoding == "utf-16" else ","  # Excel's "Unicode text" is tab-separated
    (tmp_path / "销售漏斗.csv").write_bytes(
        csv_text(TEMPLATE_HEADER, TEMPLATE_ROWS, delimiter).encode(encoding)
    )
    (tmp_path / "跟进记录.csv").write_bytes(
        csv_text(FOLLOWUP_HEADER, FOLLOWUP_ROWS, delimiter).encode(encoding)
    )
    inputs, validated = read(tmp_path)
    check_template(inputs, validated)
    assert {f.source.encoding for f in inputs.files} == {
        "utf-16" if encoding == "utf-16" else "utf-8-sig" if encoding == "utf-8-sig" else "gb18030"
    }
    assert {f.source.delimiter for f in inputs.files} == {delimiter}


def test_gbk_text_after_a_first_megabyte_of_plain_ascii_is_still_read(tmp_path):
    """The encoding is guessed from the first MiB; GBK bytes further down make polars refuse
    the file as UTF-8, and the whole file is then decoded as GB18030, line numbers intact."""
    filler = [[f"PAD-{i:06d}", "lead", "2024-06-01", "x" * 40] for i in range(25_000)]
    text = csv_text(["opportunity_id", "stage", "created_at", "note"], filler)
    assert len(text) > 1 << 20
    tail = csv_text(
        ["opportunity_id", "stage", "created_at", "note"],
        [["GBK-1", "线索获取", "2024-06-02", "客户"]],
    )
    path = tmp_path / "opportunities.csv"
    path.write_bytes(text.encode("ascii") + tail.split("\n", 1)[1].encode("gbk"))
    inputs, validated = read(tmp_path)
    assert inputs.files[0].source.encoding == "gb18030"
    last = as_read(inputs).tail(1).row(0, named=True)
    assert (last["opportunity_id"], last["stage"], last["_line"]) == ("GBK-1", "线索获取", 25_002)
    assert validated["opportunities"].rows_valid == 25_001


def test_chinese_template_as_a_workbook(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "funnel.xlsx"))
    for name, header, rows in (
        ("商机", TEMPLATE_HEADER, TEMPLATE_ROWS),
        ("跟进记录", FOLLOWUP_HEADER, FOLLOWUP_ROWS),
    ):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, header)
        for i, row in enumerate(rows, start=1):
            sheet.write_row(i, 0, row)
    book.close()
    inputs, validated = read(tmp_path)
    check_template(inputs, validated)
    assert [f.name for f in inputs.files] == ["funnel.xlsx[商机]", "funnel.xlsx[跟进记录]"]
    lines = (
        validated["opportunities"]
        .quarantined.join(as_read(inputs).select("_row", "_line"), on="_row")["_line"]
        .to_list()
    )
    assert lines == [5]  # the sheet row of ZH-4


def test_a_file_changed_before_its_quarantine_is_read_again_stops_the_run(tmp_path):
    """A quarantined row is read again from its file: a file that changed since it was read
    could give another row's values, so the run stops naming it."""
    path = tmp_path / "opportunities.csv"
    path.write_text(
        "opportunity_id,stage,created_at,amount\nA,lead,2024-06-01,100\nB,lead,soon,5\n",
        encoding="utf-8",
    )
    inputs, _ = read(tmp_path)
    checked = check_inputs(inputs)
    path.write_text(
        "opportunity_id,stage,created_at,amount\nX,lead,2024-06-01,100\nY,lead,soon,5\n",
        encoding="utf-8",
    )
    os.utime(path, ns=(1, 1))  # whatever its clock says, the bytes differ
    with pytest.raises(UnusableInputError, match="changed while it was read"):
        whole_quarantine(checked, inputs.files)


def test_semicolons_and_quoted_line_breaks_keep_true_line_numbers(tmp_path):
    text = (
        "opportunity_id;stage;created_at;need_description;amount\n"
        'A;lead;2024-06-01;"two\nlines";100\n'
        'B;lead;2024-06-02;"three\nline\nnote";-5\n'
        "C;lead;not a date;;7\n"
    )
    (tmp_path / "opportunities.csv").write_text(text, encoding="utf-8")
    inputs, validated = read(tmp_path)
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (1, 2)
    # need_description is read for the quarantined rows only, again, with its line breaks
    assert "need_description" in inputs.files[0].source.unread
    quarantine = whole_quarantine(check_inputs(inputs), inputs.files).quarantine
    assert quarantine["opportunities"].select("opportunity_id", "need_description").rows() == [
        ("B", "three\nline\nnote"),
        ("C", None),
    ]
    lines = (
        opps.quarantined.join(as_read(inputs).select("_row", "_line"), on="_row")
        .sort("_line")["_line"]
        .to_list()
    )
    assert lines == [4, 7]  # B starts on line 4, C on line 7


DESIGN_MAPPING = """
[source]
preset = "custom"
timezone = "UTC"
currency = "USD"

[source.parse]
date_order = "DMY"
decimal = "."
thousands = ","

[source.files]
opportunities = "deals.csv"

[source.columns.opportunities]
opportunity_id = "Deal No"
owner = "Rep"
customer_name = "Account"
stage = "Pipeline Stage"
created_at = "Opened"
closed_at = "Closed On"
amount = "Deal Value"

[source.stages]
"New" = "lead"
"Discovery" = "qualified"
"Quote Sent" = "proposal"
"Closed - Won" = "won"
"Closed - Lost" = "lost"
"""


def test_custom_layout_described_in_funnel_toml(tmp_path):
    """The README's example mapping, on a layout no preset knows, through the whole run."""
    from funnel_reports.flows.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "Deal No,Rep,Account,Pipeline Stage,Opened,Closed On,Deal Value\n"
        'D1,Ann,Acme,New,03/06/2024,,"1,000"\n'
        "D2,Ann,Beta,Quote Sent,01/05/2024,,2500\n"
        "D3,Bob,Gamma,Closed - Won,01/05/2024,28/06/2024,4000\n"
        "D4,Bob,Delta,Closed - Lost,01/05/2024,10/06/2024,900\n"
        "D5,Bob,Eps,Closed - Lost,01/05/2024,,900\n"
        "D6,Cy,Zeta,Won-ish,01/05/2024,,1\n",
        encoding="utf-8",
    )
    (folder / "notes.csv").write_text("whatever\nx\n", encoding="utf-8")
    config = tmp_path / "funnel.toml"
    config.write_text(DESIGN_MAPPING, encoding="utf-8")
    assert (
        main(
            [
                "run",
                "--input",
                str(folder),
                "--config",
                str(config),
                "--period",
                "2024-06",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "out" / "2024-06" / "metrics.json").read_text(encoding="utf-8"))
    assert m["source"]["preset"] == "custom"
    assert m["source"]["ignored"] == ["notes.csv"]
    dq = m["data_quality"]["opportunities"]
    assert (dq["rows_read"], dq["rows_valid"], dq["rows_quarantined"]) == (6, 4, 2)
    assert {r["reason"] for r in dq["reasons"]} == {
        "closed_at: missing for a lost deal",
        "stage (Pipeline Stage): cannot read as a stage",
    }
    k = m["kpis"]
    # June: D3 won (4000), D4 lost; D1 (created 3 June) and D2 open (1000 + 2500)
    assert (k["won_count"], k["won_amount"], k["lost_count"], k["win_rate"]) == (1, 4000.0, 1, 0.5)
    assert (k["open_count"], k["open_amount"]) == (2, 3500.0)
    assert {r["stage"]: r["count"] for r in m["funnel"]}["proposal"] == 1
    quarantine = pl.read_csv(
        tmp_path / "out" / "2024-06" / "quarantine" / "opportunities.csv", infer_schema=False
    )
    assert quarantine.columns[:3] == ["_file", "_line", "_reasons"]
    assert quarantine["Deal No"].to_list() == ["D5", "D6"]
    assert quarantine["_line"].to_list() == ["6", "7"]


def test_hubspot_date_entered_columns_become_stage_history(tmp_path):
    (tmp_path / "hubspot-deals.csv").write_text(
        "Record ID,Deal Name,Deal Stage,Amount,Create Date,Close Date,Deal owner,"
        '"Date entered ""Appointment Scheduled (Sales Pipeline)""",'
        '"Date entered ""Contract Sent (Sales Pipeline)""",'
        '"Date entered ""Closed Won (Sales Pipeline)"""\n'
        "11,Big deal,Closed Won,5000,2024-06-01 09:00,2024-06-20 10:00,Ann,"
        "2024-06-01 09:00,2024-06-10 09:00,2024-06-20 10:00\n"
        "12,Small deal,Contract Sent,800,2024-06-05 09:00,2024-07-30,Bob,"
        "2024-06-05 09:00,2024-06-08 09:00,\n",
        encoding="utf-8",
    )
    inputs, validated = read(tmp_path, RunSettings())
    assert inputs.preset.name == "hubspot"
    history = validated["stage_history"]
    assert (history.rows_read, history.rows_valid) == (5, 5)
    entries = history.valid.sort("opportunity_id", "entered_at")
    assert entries.select("opportunity_id", "stage").rows() == [
        ("11", "lead"),
        ("11", "negotiation"),
        ("11", "won"),
        ("12", "lead"),
        ("12", "negotiation"),
    ]
    opps = {r["opportunity_id"]: r for r in validated["opportunities"].valid.to_dicts()}
    assert (opps["11"]["status"], opps["12"]["status"]) == ("won", "open")
    assert opps["12"]["closed_at"] is None  # an open deal's close date is only expected
    # the deals' text went once typed; the history made from their columns is in no file,
    # so it keeps its values for the quarantine
    assert inputs.raw["opportunities"].columns == ["_source_row", "_line", "_file", "stage"]
    assert {"opportunity_id", "stage", "entered_at"} <= set(inputs.raw["stage_history"].columns)


def test_pipedrive_status_and_won_lost_times(tmp_path):
    (tmp_path / "deals.csv").write_text(
        "Deal - ID,Deal - Title,Deal - Organization,Deal - Value,Deal - Currency,Deal - Stage,"
        "Deal - Status,Deal - Deal created,Deal - Won time,Deal - Lost time,Deal - Lost reason\n"
        "1,A,Org A,1000,EUR,Negotiations Started,won,2024-05-01 10:00:00,2024-06-02 10:00:00,,\n"
        "2,B,Org B,500,EUR,Proposal Made,lost,2024-05-01 10:00:00,,2024-06-03 10:00:00,Price\n"
        "3,C,Org C,700,EUR,Demo Scheduled,open,2024-05-01 10:00:00,,,\n"
        "4,D,Org D,300,EUR,Proposal Made,deleted,2024-05-01 10:00:00,,,\n",
        encoding="utf-8",
    )
    inputs, validated = read(tmp_path, RunSettings())
    assert inputs.preset.name == "pipedrive"
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (3, 1)
    assert opps.quarantined["reasons"].to_list() == [
        ["status (Deal - Status): cannot read as a status (open, won or lost) (got 'deleted')"]
    ]
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert (rows["1"]["status"], rows["1"]["closed_at"].isoformat()) == (
        "won",
        "2024-06-02T10:00:00+00:00",
    )
    assert (rows["2"]["status"], rows["2"]["lost_reason"]) == ("lost", "Price")
    assert rows["3"]["stage"] == "proposal"


def test_flags_and_unknown_layouts(tmp_path):
    (tmp_path / "Opportunity.csv").write_text(
        "Id,StageName,CreatedDate,CloseDate,IsWon,IsClosed,Amount\n"
        "a,Closed Won,2024-06-01,2024-06-05,TRUE,TRUE,10\n"
        "b,Prospecting,2024-06-01,2024-09-01,0,0,20\n"
        "c,Closed Lost,2024-06-01,2024-06-09,否,是,30\n"
        "d,Qualification,2024-06-01,2024-09-01,perhaps,0,40\n",
        encoding="utf-8",
    )
    _, validated = read(tmp_path, RunSettings())
    opps = validated["opportunities"]
    assert {r["opportunity_id"]: r["status"] for r in opps.valid.to_dicts()} == {
        "a": "won",
        "b": "open",
        "c": "lost",
    }
    assert opps.quarantined["reasons"].to_list() == [
        ["status: cannot read as a status (open, won or lost) (got 'is_won=perhaps')"]
    ]
    (tmp_path / "Task.csv").write_text(
        "Id,WhoId,WhatId,Subject,ActivityDate,Status,OwnerId,TaskSubtype,Description\n"
        "t1,w,a,Intro call,2024-06-02,Completed,u1,Call,Liked it\n"
        "t2,w,b,Sent quote,2024-06-03,Completed,u1,Email,\n"
        "t3,w,zz,Orphan,2024-06-03,Completed,u1,Email,\n"
        "t4,w,b,Carrier pigeon,2024-06-04,Completed,u1,Pigeon,\n",
        encoding="utf-8",
    )
    inputs, validated = read(tmp_path, RunSettings())
    assert [(f.name, f.table) for f in inputs.files] == [
        ("Opportunity.csv", "opportunities"),
        ("Task.csv", "followups"),
    ]
    tasks = validated["followups"]
    assert tasks.valid.select("opportunity_id", "channel", "occurred_at").rows() == [
        ("a", "phone", datetime(2024, 6, 2, tzinfo=UTC)),
        ("b", "email", datetime(2024, 6, 3, tzinfo=UTC)),
    ]
    # the free text is mapped but not read: no figure needs it; a quarantined row has it
    match = inputs.files[1].match.columns
    assert (match["followup_id"], match["summary"]) == (["Id"], ["Subject"])
    quarantine = whole_quarantine(check_inputs(inputs), inputs.files).quarantine["followups"]
    assert quarantine.select("Id", "Subject", "Description").rows() == [
        ("t3", "Orphan", None),
        ("t4", "Carrier pigeon", None),
    ]
    assert tasks.quarantined["reasons"].to_list() == [
        ["opportunity_id: 'zz' is not in opportunities"],
        [
            "channel (TaskSubtype): cannot read as a channel (phone, meeting, email, visit, "
            "message or other) "
            "(got 'Pigeon')"
        ],
    ]
    # each table's text went once it was typed: a quarantined row is read again whole
    for file in inputs.files:
        assert file.source.rows.columns == ["_line"]
        assert file.source.unread == tuple(file.source.header)
    assert inputs.raw["followups"].columns == ["_source_row", "_line", "_file"]
    assert inputs.raw["opportunities"].columns == ["_source_row", "_line", "_file", "stage"]
    deals = whole_quarantine(check_inputs(inputs), inputs.files).quarantine["opportunities"]
    assert deals.columns[:3] == ["_file", "_line", "_reasons"]
    assert deals.columns[3:] == inputs.files[0].source.header
    (tmp_path / "Task.csv").unlink()
    (tmp_path / "Opportunity.csv").unlink()
    (tmp_path / "export.csv").write_text(
        "Deal,Phase,Opened On\nx,New,2024-01-01\n", encoding="utf-8"
    )
    with pytest.raises(
        UnusableInputError,
        match=r"export.csv: no known export layout.*"
        r"Expected at least: opportunity_id, stage, created_at",
    ):
        read(tmp_path, RunSettings())


def test_dated_snapshots_give_stage_history(tmp_path):
    """Three exports of the same CRM; history is what changed between them."""
    header = "opportunity_id,stage,status,created_at,stage_entered_at,closed_at,amount\n"
    snapshots = {
        "2024-05-31": [
            "A,lead,open,2024-05-20,,,100",
            "B,qualified,open,2024-05-01,2024-05-10,,50",
        ],
        "2024-06-15": [
            "A,proposal,open,2024-05-20,,,100",
            "B,qualified,open,2024-05-01,,,80",
            "C,lead,open,2024-06-10,2024-06-10,,10",
        ],
        "2024-06-30": [
            "A,negotiation,open,2024-05-20,,,120",
            "B,qualified,lost,2024-05-01,,2024-06-20,80",
            "C,lead,open,2024-06-10,,,10",
        ],
    }
    for day, rows in snapshots.items():
        (tmp_path / "exports" / day).mkdir(parents=True)
        (tmp_path / "exports" / day / "opportunities.csv").write_text(
            header + "\n".join(rows) + "\n", encoding="utf-8"
        )
    inputs, validated = read(tmp_path / "exports", RunSettings())
    assert "3 dated snapshots (2024-05-31 … 2024-06-30)" in inputs.reason
    opps, history = validated["opportunities"], validated["stage_history"]
    assert (opps.rows_read, opps.rows_valid, history.rows_read, history.rows_valid) == (3, 3, 8, 8)
    latest = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert (latest["A"]["stage"], latest["A"]["amount"]) == ("negotiation", 120.0)
    assert latest["B"]["status"] == "lost"
    from tests.helpers import by_key, metrics_for, step

    m = metrics_for(opps.valid.drop("_row"), history.valid.drop("_row"), period="2024-06")
    assert step(m, "qualified", "proposal")["entries_to"] == 1  # A, on 06-15
    assert step(m, "proposal", "negotiation")["entries_to"] == 1  # A, on 06-30
    assert (m["kpis"]["lost_count"], m["kpis"]["open_count"]) == (1, 2)
    dwell = by_key(m["dwell"])
    # B stayed in qualified from 05-10 until it was lost on 06-20: one visit of 41 days
    assert (dwell["qualified"]["completed_visits"], dwell["qualified"]["mean_days"]) == (1, 41.0)
    assert dwell["proposal"]["mean_days"] == 15.0  # A: 06-15 .. 06-30
    assert dwell["lead"]["mean_days"] == 15.0  # A: first seen 05-31, proposal on 06-15
    assert dwell["lead"]["open_median_age_days"] == 21.0  # C since 06-10
    assert m["kpis"]["open_amount"] == 130.0  # A's amount as of the last snapshot + C


SAO_PAULO = RunSettings(timezone="America/Sao_Paulo")
SKIPPED_MIDNIGHTS = {  # clocks jumped from 00:00 to 01:00 (-03:00 -> -02:00) on these days
    "2017-10-15": datetime(2017, 10, 15, 3, tzinfo=UTC),
    "2018-11-04": datetime(2018, 11, 4, 3, tzinfo=UTC),
}


def test_bare_dates_on_skipped_midnights_are_read_from_csv(tmp_path):
    (tmp_path / "opportunities.csv").write_text(
        "opportunity_id,stage,status,created_at,closed_at,amount\n"
        "A,won,won,2017-10-15,2018-11-04,100\n"
        "B,lead,open,15/10/2017,,50\n",
        encoding="utf-8",
    )
    _, validated = read(tmp_path, SAO_PAULO)
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (2, 2, 0)
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert rows["A"]["created_at"] == rows["B"]["created_at"] == SKIPPED_MIDNIGHTS["2017-10-15"]
    assert (rows["A"]["closed_at"], rows["B"]["closed_at"]) == (
        SKIPPED_MIDNIGHTS["2018-11-04"],
        None,
    )


def test_bare_dates_on_skipped_midnights_are_read_from_workbook_dates(tmp_path):
    book = xlsxwriter.Workbook(str(tmp_path / "deals.xlsx"))
    sheet, as_date = (
        book.add_worksheet("opportunities"),
        book.add_format({"num_format": "yyyy-mm-dd"}),
    )
    sheet.write_row(
        0, 0, ["opportunity_id", "stage", "status", "created_at", "closed_at", "amount"]
    )
    sheet.write_row(1, 0, ["A", "won", "won"])
    sheet.write_datetime(1, 3, datetime(2017, 10, 15), as_date)
    sheet.write_datetime(1, 4, datetime(2018, 11, 4), as_date)
    sheet.write_number(1, 5, 100)
    sheet.write_row(2, 0, ["B", "lead", "open"])
    sheet.write_number(2, 3, 43023)  # the serial number itself, no date format
    sheet.write_number(2, 5, 50)
    book.close()
    _, validated = read(tmp_path, SAO_PAULO)
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (2, 0)
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert rows["A"]["created_at"] == rows["B"]["created_at"] == SKIPPED_MIDNIGHTS["2017-10-15"]
    assert rows["A"]["closed_at"] == SKIPPED_MIDNIGHTS["2018-11-04"]


def test_a_snapshot_taken_on_a_skipped_midnight_dates_its_history(tmp_path):
    header = "opportunity_id,stage,status,created_at,amount\n"
    for day, stage in (("2018-11-03", "lead"), ("2018-11-04", "qualified")):
        (tmp_path / "exports" / day).mkdir(parents=True)
        (tmp_path / "exports" / day / "opportunities.csv").write_text(
            header + f"A,{stage},open,2017-10-15,100\n", encoding="utf-8"
        )
    _, validated = read(tmp_path / "exports", SAO_PAULO)
    history = validated["stage_history"]
    assert (history.rows_read, history.rows_valid) == (2, 2)
    entered = dict(zip(history.valid["stage"], history.valid["entered_at"], strict=True))
    assert entered["qualified"] == SKIPPED_MIDNIGHTS["2018-11-04"]


RAGGED = (
    "opportunity_id,stage,status,created_at,amount\n"
    "A,lead,open,2024-06-01,100\n"
    "B,lead,open,2024-06-02,ACME, Inc,200\n"  # an unquoted comma and a stray value: 7
    "C,lead,open\n"  # 3 fields
    "D,qualified,open,2024-06-03,300\n"
)


def ragged_reasons(inputs, validated) -> dict[str, list[str]]:
    """The reader's reasons of each quarantined opportunity, by id."""
    ids = as_read(inputs).select("_row", "opportunity_id")
    quarantined = validated["opportunities"].quarantined.join(ids, on="_row")
    return {
        row["opportunity_id"]: [r for r in row["reasons"] if r.startswith("row:")]
        for row in quarantined.to_dicts()
    }


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_rows_with_too_many_or_too_few_fields_are_quarantined_and_the_rest_read(tmp_path, encoding):
    (tmp_path / "opportunities.csv").write_bytes(RAGGED.replace("Inc", "公司").encode(encoding))
    inputs, validated = read(tmp_path)
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (4, 2, 2)
    assert sorted(opps.valid["opportunity_id"]) == ["A", "D"]
    assert ragged_reasons(inputs, validated) == {
        "B": ["row: wrong number of fields (got '7 fields where the header has 5')"],
        "C": ["row: wrong number of fields (got '3 fields where the header has 5')"],
    }
    lines = dict(as_read(inputs).select("opportunity_id", "_line").iter_rows())
    assert (lines["B"], lines["C"]) == (3, 4)


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_short_rows_of_a_file_without_wide_ones_are_quarantined(tmp_path, encoding):
    """A file with no row wider than its header is read in one strict pass: a row ending in
    an empty value is whole, one that stops short is not, whether or not a quote is in it."""
    (tmp_path / "opportunities.csv").write_bytes(
        (
            "opportunity_id,stage,status,created_at,amount\n"
            "A,lead,open,2024-06-01,\n"  # 5 fields, the last one empty
            'B,lead,"open",2024-06-02\n'  # 4
            "C,lead,open,2024-06-03,300\n"
            "D,线索\n"  # 2
            'E,lead,open,2024-06-05,"1,000"\n'
        ).encode(encoding)
    )
    inputs, validated = read(tmp_path)
    opps = validated["opportunities"]
    assert (opps.rows_read, opps.rows_valid, opps.rows_quarantined) == (5, 3, 2)
    assert ragged_reasons(inputs, validated) == {
        "B": ["row: wrong number of fields (got '4 fields where the header has 5')"],
        "D": ["row: wrong number of fields (got '2 fields where the header has 5')"],
    }
    lines = dict(as_read(inputs).select("opportunity_id", "_line").iter_rows())
    assert (lines["B"], lines["D"], lines["E"]) == (3, 5, 6)


def test_ragged_rows_beside_quoted_line_breaks_keep_their_lines(tmp_path):
    (tmp_path / "opportunities.csv").write_text(
        "opportunity_id,stage,status,created_at,amount,customer_name\n"
        'A,lead,open,2024-06-01,100,"Two\nlines, one value"\n'
        'B,lead,open,2024-06-02,200,"5"" screens",extra\n'
        "C,lead,open,2024-06-03,300,Gamma\n",
        encoding="utf-8",
    )
    inputs, validated = read(tmp_path)
    assert ragged_reasons(inputs, validated) == {
        "B": ["row: wrong number of fields (got '7 fields where the header has 6')"]
    }
    lines = dict(as_read(inputs).select("opportunity_id", "_line").iter_rows())
    assert lines == {"A": 2, "B": 4, "C": 5}
    assert validated["opportunities"].rows_valid == 2


def test_a_file_where_no_row_fits_is_refused(tmp_path):
    (tmp_path / "opportunities.csv").write_text(
        "opportunity_id;stage;status;created_at\nA,lead,open,2024-06-01\nB,lead,open,2024-06-02\n",
        encoding="utf-8",
    )
    with pytest.raises(UnusableInputError) as error:
        read(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / 'opportunities.csv'}: no row has the header's 4 fields (rows have 1); "
        "expected one value per column in every row"
    )


DEALS = "opportunity_id,stage,status,created_at,amount\nA,lead,open,2024-06-01,100\n"
ACTIVITY = "opportunity_id,occurred,channel,summary\nA,2024-06-02,phone,Intro call\n"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("followups.csv", "is named like followups"),
        ("calls.csv", "looks like followups by its headers"),
    ],
)
def test_a_file_a_table_needs_but_cannot_use_stops_the_run(tmp_path, name, why):
    (tmp_path / "opportunities.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / name).write_text(ACTIVITY, encoding="utf-8")
    with pytest.raises(UnusableInputError) as error:
        read(tmp_path, RunSettings())
    assert str(error.value) == (
        f"{tmp_path / name}: {why} but has no column for occurred_at (expected 'occurred_at'; "
        "nearest header: 'occurred'). Found: opportunity_id, occurred, channel, summary. To use "
        'it, map it in funnel.toml: [source.columns.followups] occurred_at = "occurred".'
    )
    # the line it gives, added to funnel.toml, is all it takes
    mapped = RunSettings(
        source=SourceSettings(columns={"followups": {"occurred_at": ("occurred",)}})
    )
    inputs, validated = read(tmp_path, mapped)
    assert [(f.name, f.table) for f in inputs.files] == [
        ("opportunities.csv", "opportunities"),
        (name, "followups"),
    ]
    assert validated["followups"].rows_valid == 1


def test_a_file_named_in_source_files_that_lacks_a_column_says_how_to_map_it(tmp_path):
    (tmp_path / "opportunities.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / "log.csv").write_text(ACTIVITY, encoding="utf-8")
    named = RunSettings(source=SourceSettings(files={"followups": "log.csv"}))
    with pytest.raises(
        UnusableInputError, match=r"log.csv: is set as followups in \[source.files\]"
    ) as error:
        read(tmp_path, named)
    assert str(error.value).endswith('[source.columns.followups] occurred_at = "occurred".')


def test_a_lookalike_that_is_not_needed_is_a_warning(tmp_path):
    (tmp_path / "opportunities.csv").write_text(DEALS, encoding="utf-8")
    (tmp_path / "followups.csv").write_text(
        "opportunity_id,occurred_at,channel\nA,2024-06-02,phone\n", encoding="utf-8"
    )
    (tmp_path / "calls.csv").write_text(ACTIVITY, encoding="utf-8")
    (tmp_path / "notes.csv").write_text("id,text\n1,hello\n", encoding="utf-8")
    inputs, _ = read(tmp_path, RunSettings())
    assert inputs.ignored == ["calls.csv", "notes.csv"]
    assert [lookalike.as_dict() for lookalike in inputs.lookalikes] == [
        {
            "file": "calls.csv",
            "table": "followups",
            "by": "headers",
            "missing": ["occurred_at"],
            "used_instead": "followups.csv",
        }
    ]


def test_pipedrive_default_stages_reach_the_win_rate(tmp_path):
    (tmp_path / "deals.csv").write_text(
        "Deal - ID,Deal - Organization,Deal - Stage,Deal - Status,Deal - Value,"
        "Deal - Deal created,Deal - Won time,Deal - Lost time\n"
        "1,Acme,Needs Defined,won,100,2024-06-01,2024-06-20,\n"
        "2,Beta,Needs Defined,lost,50,2024-06-02,,2024-06-21\n"
        "3,Gamma,Lead In,won,60,2024-06-03,2024-06-22,\n"
        "4,Delta,Negotiations Started,open,70,2024-06-03,,\n",
        encoding="utf-8",
    )
    inputs, validated = read(tmp_path, RunSettings())
    assert inputs.preset.name == "pipedrive"
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (4, 0)
    from tests.helpers import metrics_for

    m = metrics_for(opps.valid.drop("_row"), None, period="2024-06")
    assert (m["kpis"]["won_count"], m["kpis"]["lost_count"], m["kpis"]["win_rate"]) == (2, 1, 2 / 3)
