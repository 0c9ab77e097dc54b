"""The backfill's parts that run without Prefect (flows/backfill_flow.py): the plan, each
job's folder and label, a current report found by its manifest, the summary row, each
report's slice of the validated tables (and where it is stored for the workers), its
recipients, a report set whose slices match nothing, and a mail that fails one row.

Literal tables built with tests.helpers; files in tmp_path. The flow itself (reports made
through the task runner) is tests/flows/test_backfill.py's and test_report_sets.py's."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.backfill_flow import (
    Job,
    backfill_plan,
    current_manifest,
    delivered,
    made_reports,
    recipients_of,
    sliced,
    stored_slice,
    summary_row,
)
from funnel_reports.flows.io.config import ConfigError
from funnel_reports.flows.io.mail import DeliverySettings
from funnel_reports.flows.io.outputs import stored_tables
from funnel_reports.flows.report_flow import compute_metrics, read_and_check
from funnel_reports.flows.requests import BackfillRequest
from funnel_reports.transforms.funnel_model import COMPANY, ReportSpec, RunSettings
from funnel_reports.transforms.periods import PeriodError, parse_period
from funnel_reports.transforms.slices import EmptySliceError
from funnel_reports.transforms.staging.checks import CheckedInputs
from tests.flows.io.folders import deals_folder
from tests.helpers import history, opp, opportunities, path, touches

JUNE = parse_period("2024-06", "UTC")
HEADER = "opportunity_id,stage,status,created_at,closed_at,amount,owner,region\n"
EAST = ReportSpec("east", filter={"region": ("East",)}, lang="zh", to=("east@example.com",))
WEST = ReportSpec("west", filter={"region": ("West",)})
BASE = {"inputs_sha256": "abc", "lang": "en", "version": "0.1.0"}
DELIVERY = DeliverySettings(
    smtp_host="127.0.0.1",
    sender="Reports <reports@example.com>",
    to=("ceo@example.com",),
    cc=("cfo@example.com",),
    security="none",
)


@pytest.fixture(autouse=True)
def _prefect():
    """Pure functions and files: no Prefect flow runs here, so no test server is started."""
    yield


def request(**asked) -> BackfillRequest:
    return BackfillRequest(input_dir=Path("in"), out_dir=Path("out"), **asked)


def plan_labels(**asked) -> list[str]:
    settings = RunSettings(reports=(EAST, WEST))
    return [
        job.label for job in backfill_plan(request(**asked), settings, BASE, date(2024, 12, 1)).jobs
    ]


def checked() -> CheckedInputs:
    """Two deals, A in the East and B in the West, with A's history and a follow-up of B;
    one quarantined row."""
    deals = opportunities(
        opp("A", "qualified", "2024-05-02", region="East", amount=100),
        opp("B", "lead", "2024-05-03", region="West", amount=200),
    )
    return CheckedInputs(
        tables={
            "opportunities": deals,
            "stage_history": history(
                *path("A", ("lead", "2024-05-02"), ("qualified", "2024-06-03"))
            ),
            "followups": touches(
                {"opportunity_id": "B", "occurred_at": "2024-06-04", "channel": "phone"}
            ),
        },
        quality={},
        quarantine={"opportunities": pl.DataFrame({"opportunity_id": ["C"], "stage": ["?"]})},
        files=[],
        source={},
        settings=RunSettings(),
        history_available=True,
    )


# backfill_plan (test_requests.py has months, both grains, last-month and the report set)


def test_the_plan_of_quarters_holds_each_quarter_the_range_touches():
    assert plan_labels(first="2024-02", last="2024-08", grain="quarter") == [
        "2024-Q1",
        "2024-Q2",
        "2024-Q3",
    ]


def test_the_plan_without_a_grain_takes_the_grain_of_first():
    assert plan_labels(first="2024-Q1", last="2024-Q2", grain=None) == ["2024-Q1", "2024-Q2"]


def test_the_plan_resolves_last_quarter_as_of_today():
    settings = RunSettings()
    plan = backfill_plan(
        request(first="last-quarter", last="last-quarter", grain=None),
        settings,
        BASE,
        date(2024, 7, 1),
    )
    assert [job.label for job in plan.jobs] == ["2024-Q2"]


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(PeriodError, match="periods 2024-06 to 2024-03: 2024-03 ends before"):
        plan_labels(first="2024-06", last="2024-03")


def test_the_plan_keeps_the_reports_in_the_order_named():
    assert plan_labels(first="2024-06", last="2024-06", reports="west, company") == [
        "west 2024-06",
        "company 2024-06",
    ]


def test_a_report_the_config_does_not_name_is_refused():
    with pytest.raises(ConfigError, match="--reports north: north is not a report"):
        plan_labels(first="2024-06", last="2024-06", reports="north")


def test_the_expected_fingerprint_is_the_base_in_the_reports_language():
    settings = RunSettings(reports=(EAST, WEST))
    plan = backfill_plan(
        request(first="2024-06", last="2024-06", reports="all"),
        settings,
        {"inputs_sha256": "abc", "lang": "xx"},
        date(2024, 12, 1),
    )
    assert plan.expected == {
        "company 2024-06": {"inputs_sha256": "abc", "lang": "en"},
        "east 2024-06": {"inputs_sha256": "abc", "lang": "zh"},
        "west 2024-06": {"inputs_sha256": "abc", "lang": "en"},
    }


# Job


def test_the_plain_reports_folder_is_its_period_under_out():
    job = Job(JUNE, None)
    assert (job.folder(Path("out")), job.label) == (Path("out/2024-06"), "2024-06")


def test_a_report_of_the_sets_folder_is_its_period_under_its_name():
    job = Job(JUNE, EAST)
    assert (job.folder(Path("out")), job.label) == (Path("out/east/2024-06"), "east 2024-06")


# current_manifest


def manifest_in(folder: Path, document) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(document), encoding="utf-8")
    return folder


def test_a_report_made_with_the_same_fingerprint_is_current(tmp_path):
    manifest = {"fingerprint": BASE, "period": "2024-06"}
    assert current_manifest(manifest_in(tmp_path / "2024-06", manifest), BASE) == manifest


def test_a_report_made_with_another_fingerprint_is_not_current(tmp_path):
    folder = manifest_in(tmp_path / "2024-06", {"fingerprint": {**BASE, "lang": "zh"}})
    assert current_manifest(folder, BASE) is None


def test_no_report_is_not_current(tmp_path):
    assert current_manifest(tmp_path / "2024-06", BASE) is None


@pytest.mark.parametrize("text", ['["fingerprint"]', '{"fingerprint": '], ids=["list", "cut"])
def test_a_manifest_that_is_no_json_object_is_not_current(tmp_path, text):
    folder = tmp_path / "2024-06"
    folder.mkdir()
    (folder / "manifest.json").write_text(text, encoding="utf-8")
    assert current_manifest(folder, BASE) is None


# summary_row


def test_a_written_reports_row_has_its_headline_figures(tmp_path):
    folder = tmp_path / "east" / "2024-06"
    folder.mkdir(parents=True)
    kpis = {"won_amount": 1200.0, "win_rate": 0.25, "open_pipeline": 9}
    (folder / "metrics.json").write_text(json.dumps({"kpis": kpis}), encoding="utf-8")
    assert summary_row(Job(JUNE, EAST), "written", folder, 3.14159) == {
        "report": "east",
        "period": "2024-06",
        "status": "written",
        "won_amount": 1200.0,
        "win_rate": 0.25,
        "seconds": 3.1,
        "out_dir": str(folder),
        "error": None,
    }


def test_a_failed_reports_row_reads_no_figures(tmp_path):
    """Its folder may not exist at all."""
    folder = tmp_path / "2024-06"
    row = summary_row(Job(JUNE, None), "failed", folder, 0.04, "failed: OSError: disk full")
    assert row == {
        "report": None,
        "period": "2024-06",
        "status": "failed",
        "won_amount": None,
        "win_rate": None,
        "seconds": 0.0,
        "out_dir": str(folder),
        "error": "failed: OSError: disk full",
    }


# sliced and recipients_of


def test_the_plain_report_takes_the_inputs_as_they_are():
    inputs = checked()
    assert sliced(inputs, Job(JUNE, None), "zh") is inputs


def test_the_company_report_takes_every_table_in_its_own_language():
    inputs = checked()
    company = sliced(inputs, Job(JUNE, ReportSpec(COMPANY, lang="zh")), None)
    assert company.tables is inputs.tables and company.quarantine is inputs.quarantine
    assert (inputs.settings.lang, company.settings.lang) == ("en", "zh")


def test_a_teams_report_takes_its_deals_rows_and_no_quarantine():
    east = sliced(checked(), Job(JUNE, EAST), None)
    assert east.tables["opportunities"]["opportunity_id"].to_list() == ["A"]
    assert east.tables["stage_history"]["opportunity_id"].to_list() == ["A", "A"]
    assert east.tables["followups"].height == 0  # B's
    assert east.quarantine == {}
    assert east.settings.lang == "zh"


def test_the_language_given_wins_over_the_teams_own():
    assert sliced(checked(), Job(JUNE, EAST), "en").settings.lang == "en"


def test_a_team_that_matches_no_deal_is_an_empty_slice():
    north = ReportSpec("north", filter={"region": ("North",)})
    with pytest.raises(EmptySliceError, match="report north: its filter"):
        sliced(checked(), Job(JUNE, north), None)


def test_the_plain_and_the_company_report_go_to_delivery_to_and_cc():
    assert recipients_of(Job(JUNE, None), DELIVERY) is DELIVERY
    assert recipients_of(Job(JUNE, ReportSpec(COMPANY)), DELIVERY) is DELIVERY


def test_a_teams_report_goes_to_its_own_to_without_cc():
    found = recipients_of(Job(JUNE, EAST), DELIVERY)
    assert (found.to, found.cc) == (("east@example.com",), ())
    assert found.smtp_host == DELIVERY.smtp_host


def test_a_team_naming_no_recipient_goes_to_delivery_to_without_cc():
    found = recipients_of(Job(JUNE, WEST), DELIVERY)
    assert (found.to, found.cc) == (("ceo@example.com",), ())


# stored_slice


def test_a_teams_slice_is_stored_for_the_workers_and_sent_without_tables(tmp_path):
    inputs, folder = stored_slice(checked(), Job(JUNE, EAST), None, tmp_path / "east")
    assert folder == tmp_path / "east"
    assert (inputs.tables, inputs.quarantine, inputs.settings.lang) == ({}, {}, "zh")
    tables = stored_tables(folder / "tables")
    assert sorted(tables) == ["followups", "opportunities", "stage_history"]
    assert tables["opportunities"]["opportunity_id"].to_list() == ["A"]
    assert stored_tables(folder / "quarantine") == {}


def test_the_plain_reports_slice_stores_the_quarantine_too(tmp_path):
    _, folder = stored_slice(checked(), Job(JUNE, None), None, tmp_path / "company")
    quarantine = stored_tables(folder / "quarantine")
    assert quarantine["opportunities"].to_dicts() == [{"opportunity_id": "C", "stage": "?"}]


def test_an_empty_slice_is_returned_not_raised_and_nothing_is_stored(tmp_path):
    north = ReportSpec("north", filter={"region": ("North",)})
    found = stored_slice(checked(), Job(JUNE, north), None, tmp_path / "north")
    assert isinstance(found, EmptySliceError)
    assert not (tmp_path / "north").exists()


# made_reports: reports whose slice is empty fail alone, with no task submitted


def test_reports_whose_filter_matches_nothing_fail_each_with_its_reason(tmp_path):
    north = ReportSpec("north", filter={"region": ("North",)})
    plan = backfill_plan(
        request(first="2024-06", last="2024-07", reports="north"),
        RunSettings(reports=(north,)),
        BASE,
        date(2024, 12, 1),
    )
    out = tmp_path / "out"
    asked = BackfillRequest(input_dir=Path("in"), out_dir=out, first="2024-06", last="2024-07")
    rows = made_reports(checked(), plan.jobs, plan, asked, {})
    reason = (
        "report north: its filter (region = North) matches none of the 2 deals of the export; "
        "check the values in [[reports]]"
    )
    assert {label: (r["status"], r["error"]) for label, r in rows.items()} == {
        "north 2024-06": ("failed", reason),
        "north 2024-07": ("failed", reason),
    }
    assert [p.name for p in out.iterdir()] == []  # the work folder is gone


# delivered: the summary row once the report is mailed


def test_a_report_that_is_not_on_disk_fails_its_row_in_one_line(tmp_path):
    row = {"report": None, "period": "2024-06", "status": "written", "error": None}
    asked = BackfillRequest(
        input_dir=Path("in"), out_dir=tmp_path / "out", first="2024-06", last="2024-06"
    )
    found = delivered(row, Job(JUNE, None), asked, DELIVERY, RunSettings())
    folder = tmp_path / "out" / "2024-06"
    assert found == {
        **row,
        "status": "failed",
        "error": f"{folder}: holds no finished report (metrics.json is missing); write it "
        "with funnel run first",
    }


def finished(tmp_path: Path, folder: Path, recipients: list[str]) -> None:
    """The east report of a one-deal export (its metrics computed as a run computes them,
    a stand-in PDF), already mailed to `recipients`."""
    export = deals_folder(tmp_path, HEADER + "A,won,won,2024-05-02,2024-06-10,100,Ann,East\n")
    settings = RunSettings(allow_stale=True)
    inputs, _ = read_and_check.fn(export, settings)
    metrics = compute_metrics.fn(
        sliced(inputs, Job(JUNE, EAST), None),
        JUNE,
        target_override=None,
        report=EAST,
        company_rates=None,
        timings={},
    ).metrics
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(metrics, default=str), encoding="utf-8")
    (folder / "manifest.json").write_text('{"lang": "zh"}', encoding="utf-8")
    pdf = b"%PDF-1.7 stand-in"
    (folder / "report.pdf").write_bytes(pdf)
    sent = {
        "state": "delivered",
        "to": recipients,
        "cc": [],
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "message_id": "<1@example.com>",
    }
    (folder / "delivery.json").write_text(json.dumps({"sends": [sent]}), encoding="utf-8")


def test_a_teams_report_already_mailed_to_its_own_recipients_keeps_its_row(tmp_path, capsys):
    """The team's recipients only: [delivery] to and cc are not the team's."""
    out = tmp_path / "out"
    finished(tmp_path, out / "east" / "2024-06", ["east@example.com"])
    row = {"report": "east", "period": "2024-06", "status": "written", "error": None}
    asked = BackfillRequest(input_dir=Path("in"), out_dir=out, first="2024-06", last="2024-06")
    assert delivered(row, Job(JUNE, EAST), asked, DELIVERY, RunSettings()) == row
    assert "already sent to every recipient; nothing sent" in capsys.readouterr().out
    # the skip is recorded after the send it found, for this very PDF
    record = json.loads((out / "east" / "2024-06" / "delivery.json").read_text(encoding="utf-8"))
    states = [(entry["state"], entry.get("recipients")) for entry in record["sends"]]
    assert states == [("delivered", None), ("skipped", ["east@example.com"])]
    # the ledger written before the content key keyed the PDF alone: the same key
    assert record["sends"][1]["content_sha256"] == record["sends"][0]["pdf_sha256"]
