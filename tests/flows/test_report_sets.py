"""Report sets: one command reads the export once and writes a report per team, each the
same as a run on an export of that team's deals alone, each mailed to its own head."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from distributed import Client

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from tests.flows.mailbox import config, free_port

pytestmark = pytest.mark.heavy  # many reports, task runners and a Dask cluster

REPORTS = """
[[reports]]
name = "east"
title = "East China"
filter = { region = ["East China"] }
lang = "zh"
to = ["east-head@example.com"]

[[reports]]
name = "south"
title = "South China"
filter = { region = "South China" }
to = ["south-head@example.com"]

[[reports]]
name = "north"
filter = { region = ["North China"] }
"""
REGIONS = {"east": "East China", "south": "South China", "north": "North China"}


def with_reports(toml: Path) -> Path:
    toml.write_text(toml.read_text(encoding="utf-8") + REPORTS, encoding="utf-8")
    return toml


def run(out: Path, toml: Path, *extra: str, input_dir: Path = SAMPLE_DIR) -> int:
    argv = ["run", "--input", str(input_dir), "--config", str(toml), "--period", "2026-09"]
    return main([*argv, "--out", str(out), *extra])


EXPORT_KEYS = ("data_quality", "source", "report", "data_as_of")


def figures(folder: Path) -> dict:
    """metrics.json without what tells one report from another: the export's data quality,
    source and latest record (a team's report is as fresh as the export, not as its own
    latest deal), and the report's name."""
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    return {k: v for k, v in metrics.items() if k not in EXPORT_KEYS}


def run_on_deals_alone(tmp_path: Path, deals: pl.Expr) -> dict:
    """The figures of a plain `funnel run` on a copy of the sample holding only the deals
    that match `deals`, with their history and follow-ups."""
    exports = tmp_path / "alone-in"
    exports.mkdir()
    kept = pl.read_csv(SAMPLE_DIR / "opportunities.csv", infer_schema=False).filter(deals)
    kept.write_csv(exports / "opportunities.csv")
    for table in ("stage_history", "followups"):
        pl.read_csv(SAMPLE_DIR / f"{table}.csv", infer_schema=False).filter(
            pl.col("opportunity_id").is_in(kept["opportunity_id"].implode())
        ).write_csv(exports / f"{table}.csv")
    # a team's own deals may end before the period: the export they came from does not
    assert run(tmp_path / "alone", SAMPLE_CONFIG, "--allow-stale", input_dir=exports) == 0
    return figures(tmp_path / "alone" / "2026-09")


@pytest.fixture(scope="module")
def report_set(tmp_path_factory, prefect_server):
    folder = tmp_path_factory.mktemp("sets")
    toml = folder / "funnel.toml"
    toml.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    assert run(folder / "out", with_reports(toml), "--reports", "all") == 0
    return folder


def test_three_regions_and_the_roll_up_from_one_command(report_set):
    out = report_set / "out"
    assert sorted(p.name for p in out.iterdir()) == ["company", "east", "north", "south"]
    for name in ("company", *REGIONS):
        assert (out / name / "2026-09" / "manifest.json").is_file()
    east = json.loads((out / "east" / "2026-09" / "metrics.json").read_text(encoding="utf-8"))
    assert east["report"] == {
        "name": "east",
        "title": "East China",
        "filter": {"region": ["East China"]},
    }
    assert "East China" in (out / "east" / "2026-09" / "report.html").read_text(encoding="utf-8")
    assert "销售漏斗报告" in (out / "east" / "2026-09" / "report.html").read_text(encoding="utf-8")
    # every team's report is as fresh as the export: its latest record, not the team's
    fresh = {
        name: json.loads((out / name / "2026-09" / "metrics.json").read_text("utf-8"))[
            "data_as_of"
        ]["at"]
        for name in ("company", *REGIONS)
    }
    assert set(fresh.values()) == {"2026-09-30T08:34:57+00:00"}


def test_the_roll_up_is_the_plain_report(report_set, tmp_path):
    assert run(tmp_path, SAMPLE_CONFIG) == 0
    assert figures(report_set / "out" / "company" / "2026-09") == figures(tmp_path / "2026-09")


@pytest.mark.parametrize("name", list(REGIONS))
def test_each_slice_is_a_run_on_an_export_of_its_deals_alone(report_set, tmp_path, name):
    alone = run_on_deals_alone(tmp_path, pl.col("region") == REGIONS[name])
    assert figures(report_set / "out" / name / "2026-09") == alone


def test_each_report_is_mailed_to_its_own_head(tmp_path, smtp, capsys):
    mailbox, port = smtp
    toml = with_reports(config(tmp_path, port))
    assert run(tmp_path / "out", toml, "--reports", "east,south,company", "--deliver") == 0
    sent = {
        tuple(sorted(envelope)): message
        for envelope, message in zip(mailbox.envelopes, mailbox.messages, strict=True)
    }
    assert set(sent) == {
        ("east-head@example.com",),
        ("south-head@example.com",),
        ("ceo@example.com", "cfo@example.com"),
    }
    east = sent[("east-head@example.com",)]
    assert east["Subject"] == "销售漏斗报告 · East China · 月度报告 · 2026-09"
    assert next(east.iter_attachments()).get_filename() == "销售漏斗报告 East China 2026-09.pdf"
    # the same command again sends nothing; north was not asked for
    assert run(tmp_path / "out", toml, "--reports", "east,south,company", "--deliver") == 0
    assert len(mailbox.messages) == 3
    assert not (tmp_path / "out" / "north").exists()


def test_a_filter_that_matches_no_deal_is_a_clear_failure_not_an_empty_report(tmp_path, capsys):
    toml = tmp_path / "funnel.toml"
    toml.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8")
        + '[[reports]]\nname = "mars"\nfilter = { region = "Mars" }\n',
        encoding="utf-8",
    )
    assert run(tmp_path / "out", toml, "--reports", "mars") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "funnel: mars 2026-09: report mars: its filter (region = Mars) matches none of the 400 "
        "deals of the export; check the values in [[reports]]"
    ]
    assert not (tmp_path / "out" / "mars").exists()


def test_an_unknown_report_name_is_refused(tmp_path, capsys):
    assert run(tmp_path / "out", SAMPLE_CONFIG, "--reports", "east") == 2
    assert "--reports east: east is not a report; expected all, or names among company" in (
        capsys.readouterr().err
    )


def test_a_backfill_runs_through_the_same_fan_out(report_set, capsys):
    out = report_set / "out"
    toml = report_set / "funnel.toml"
    argv = ["backfill", "--input", str(SAMPLE_DIR), "--config", str(toml), "--out", str(out)]
    capsys.readouterr()
    assert main([*argv, "--from", "2026-08", "--to", "2026-09", "--reports", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    statuses = {tuple(line.split()[:2]): line.split()[2] for line in lines[1:-1]}
    assert statuses == {
        **{(name, "2026-08"): "written" for name in ("company", *REGIONS)},
        **{(name, "2026-09"): "current" for name in ("company", *REGIONS)},
    }


def test_a_slice_too_thin_for_its_own_rates_borrows_the_companys_and_says_so(tmp_path):
    toml = tmp_path / "funnel.toml"
    toml.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8")
        + '[[reports]]\nname = "wang-east"\nfilter = { owner = "王芳", region = "East China" }\n',
        encoding="utf-8",
    )
    assert run(tmp_path / "out", toml, "--reports", "wang-east,company") == 0
    folder, company = (tmp_path / "out" / n / "2026-09" for n in ("wang-east", "company"))
    thin, whole = (json.loads((f / "metrics.json").read_text("utf-8")) for f in (folder, company))
    assert thin["forecast"]["resolved_in_window"] < 20 <= whole["forecast"]["resolved_in_window"]
    assert (thin["forecast"]["rates_from"], whole["forecast"]["rates_from"]) == ("company", "own")
    assert thin["forecast"]["stage_probabilities"] == whole["forecast"]["stage_probabilities"]
    assert thin["forecast"]["p_bar"] == whole["forecast"]["p_bar"]
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "its win probabilities by stage, its overall win rate and the baselines" in html
    baselines = [
        {r["stage"]: (r["baseline_left"], r["baseline_conversion"]) for r in m["bottlenecks"]}
        for m in (thin, whole)
    ]
    assert baselines[0] == baselines[1]
    # everything it does not borrow is its own: the same as a run on its deals alone
    alone = run_on_deals_alone(
        tmp_path, (pl.col("owner") == "王芳") & (pl.col("region") == "East China")
    )
    for key in ("kpis", "totals", "funnel", "conversion", "dwell", "stalls", "segments"):
        assert figures(folder)[key] == alone[key], key
    assert alone["forecast"]["rates_from"] == "own"


@pytest.fixture
def dask_cluster(tmp_path) -> Iterator[str]:
    """A real distributed cluster on 127.0.0.1: a scheduler and two single-threaded workers,
    each its own process with this environment (so they import the project)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).parent / "dask")
    worker = [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    log = (tmp_path / "dask.log").open("w")
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ]
    try:
        with Client(address, timeout=60) as client:
            for _ in range(2):
                processes.append(subprocess.Popen(worker, stdout=log, stderr=subprocess.STDOUT))
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
        log.close()


def test_a_dask_cluster_writes_the_same_files(report_set, tmp_path, dask_cluster):
    toml = report_set / "funnel.toml"
    out = tmp_path / "out"
    assert run(out, toml, "--reports", "all", "--runner", "dask", "--address", dask_cluster) == 0
    for name in ("company", *REGIONS):
        for file in ("metrics.json", "report.html", "report.pdf"):
            made = (out / name / "2026-09" / file).read_bytes()
            assert made == (report_set / "out" / name / "2026-09" / file).read_bytes(), (name, file)
    with Client(dask_cluster) as client:  # the two workers did the work
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    assert len(executed) == 2 and sum(executed.values()) == 4 and all(executed.values())
