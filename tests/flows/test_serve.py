"""`funnel serve` for real: a `prefect server start` on 127.0.0.1, the served deployments
triggered through it, the report written and mailed, a failed run mailed to ops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.benchmark import local_server
from funnel_reports.flows.io.resources import SAMPLE_DIR
from funnel_reports.flows.serve import SCHEDULES
from tests.flows.mailbox import config

pytestmark = pytest.mark.heavy  # a real Prefect server, served deployments, mail

BIN = Path(sys.executable).parent


def wait_for(check, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real Prefect server on 127.0.0.1 with its own empty home, started as the benchmark
    starts one; the environment to use it."""
    with local_server(tmp_path_factory.mktemp("prefect")) as env:
        yield {**env, "PREFECT_LOGGING_LEVEL": "WARNING"}


def prefect(env: dict[str, str], *arguments: str) -> str:
    """What the `prefect` command prints (it fails the test if the command fails)."""
    return subprocess.run(
        [BIN / "prefect", *arguments],
        env={**env, "COLUMNS": "1000"},  # long lines unwrapped
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def deployments(env: dict[str, str]) -> set[str]:
    """The names of the report flow's deployments the server knows."""
    listed = prefect(env, "deployment", "ls")
    return {name for name in SCHEDULES if f"funnel-report/{name}" in listed}


def deployment_run(env: dict[str, str], name: str, *params: str) -> subprocess.CompletedProcess:
    """`prefect deployment run NAME --param ... --watch`, as an operator triggers a run."""
    arguments = [a for p in params for a in ("--param", p)]
    return subprocess.run(
        [BIN / "prefect", "deployment", "run", f"funnel-report/{name}", *arguments, "--watch"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_served_deployments_run_through_a_real_server_and_mail_the_report(
    prefect_api, tmp_path, smtp
):
    mailbox, port = smtp
    out, toml = tmp_path / "out", config(tmp_path, port)
    log = (tmp_path / "serve.log").open("w")  # a file: a pipe nobody reads could fill and block
    serve = subprocess.Popen(
        [
            BIN / "funnel",
            "serve",
            "--input",
            SAMPLE_DIR,
            "--out",
            out,
            "--config",
            toml,
            "--deliver",
        ],
        # the service's own logging (a test that ran the CLI in this process set the quiet
        # console's levels in os.environ)
        env={k: v for k, v in prefect_api.items() if not k.startswith("PREFECT_LOGGING")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: deployments(prefect_api) == set(SCHEDULES), "the deployments")
        for name in SCHEDULES:
            shown = prefect(prefect_api, "deployment", "inspect", f"funnel-report/{name}")
            assert SCHEDULES[name][1] in shown and "Asia/Shanghai" in shown
            assert "'deliver': True" in shown
        # the monthly deployment, for a month of the sample (its schedule says last-month)
        done = deployment_run(prefect_api, "monthly", "period=2026-09")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "funnel-report 2026-09" in done.stdout  # the run is named after its period
        report = out / "2026-09"
        assert json.loads((report / "metrics.json").read_text("utf-8"))["period"]["label"] == (
            "2026-09"
        )
        [message] = mailbox.messages
        assert "2026-09" in message["Subject"]
        attachment = next(message.iter_attachments())
        assert attachment.get_content() == (report / "report.pdf").read_bytes()
        [sent] = json.loads((report / "delivery.json").read_text("utf-8"))["sends"]
        assert sent["to"] == ["ceo@example.com"]
        # the run's artifacts: headline figures with where the report is, and the conversion
        artifacts = {
            key: prefect(prefect_api, "artifact", "inspect", key)
            for key in ("funnel-report-2026-09", "funnel-conversion-2026-09")
        }
        assert "Won amount" in artifacts["funnel-report-2026-09"]
        assert str(report) in artifacts["funnel-report-2026-09"]
        conversion = artifacts["funnel-conversion-2026-09"]
        assert "Negotiation" in conversion and "cohort_rate" in conversion

        # a run that fails mails its one line to ops, and nobody else
        failed = deployment_run(
            prefect_api, "monthly", "period=2026-08", f"input_dir={tmp_path}/gone"
        )
        assert failed.returncode != 0
        wait_for(lambda: len(mailbox.messages) == 2, "the ops mail", 60)
        alert = mailbox.messages[1]
        assert mailbox.envelopes[1] == ["ops@example.com"]
        assert alert["Subject"] == "funnel-report 2026-08 failed"
        first_line = alert.get_content().splitlines()[0]
        assert (
            first_line
            == f"{tmp_path}/gone: is not a folder; expected a folder of exports (CSV or XLSX)."
        )
        assert not (out / "2026-08").exists()
        # a month the export does not reach (its latest record is from 2026-09-30) is not
        # mailed to the readers as a month of zero wins: ops hear of it instead
        stale = deployment_run(prefect_api, "monthly", "period=2026-11")
        assert stale.returncode != 0
        wait_for(lambda: len(mailbox.messages) == 3, "the stale-export mail", 60)
        assert mailbox.envelopes[2] == ["ops@example.com"]
        assert mailbox.messages[2].get_content().splitlines()[0] == (
            "the export's latest record is from 2026-09-30, but 2026-11 runs to 2026-11-30, "
            "61 days later (more than stale_after_days = 7): export again, or run with "
            "--allow-stale to report it anyway"
        )
        assert not (out / "2026-11").exists()
        assert serve.poll() is None  # a failed run leaves the deployments served
    finally:
        stop(serve)
        log.close()
    said = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "funnel-report 2026-09" in said and "Completed" in said, said


def test_serve_without_a_server_says_what_it_needs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    done = subprocess.run(
        [BIN / "funnel", "serve", "--input", SAMPLE_DIR, "--out", tmp_path],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "funnel: funnel serve needs a running Prefect server: start one with `prefect server "
        "start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)"
    ]


def test_prefect_yaml_deploys_to_a_process_work_pool_and_its_worker_runs_the_report(
    prefect_api, tmp_path
):
    repo = Path(__file__).resolve().parents[2]
    env = {**prefect_api, "FUNNEL_REPORTS_HOME": str(repo)}
    prefect(env, "work-pool", "create", "funnel-reports", "--type", "process")
    subprocess.run(
        [BIN / "prefect", "--no-prompt", "deploy", "--all"],
        cwd=repo,
        env=env,
        capture_output=True,
        check=True,
        timeout=180,
    )
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [BIN / "prefect", "worker", "start", "--pool", "funnel-reports"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        out = tmp_path / "out"
        done = deployment_run(env, "quarterly", "period=2026-Q3", f"out_dir={out}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "funnel-report 2026-Q3" in done.stdout
        assert (out / "2026-Q3" / "manifest.json").is_file()
    finally:
        stop(worker)
        log.close()


def test_served_runs_from_a_project_with_its_own_flows_and_schemas_packages(tmp_path):
    """A Prefect project folder often holds its own `flows` (and `schemas`) package; a served
    run, started in that folder, imports the report flow by its installed name
    (`funnel_reports.flows.report_flow`), which those packages cannot shadow. A server of its
    own: the module's server holds prefect.yaml's deployments of the same names."""
    project = tmp_path / "project"
    for package in ("flows", "schemas"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text('"""The project\'s own."""\n')
    out, home = tmp_path / "out", tmp_path / "prefect"
    home.mkdir()
    with local_server(home) as env, (tmp_path / "serve.log").open("w") as log:
        serve = subprocess.Popen(
            [BIN / "funnel", "serve", "--input", SAMPLE_DIR, "--out", out],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: deployments(env) == set(SCHEDULES), "the deployments")
            done = deployment_run(env, "monthly", "period=2026-09")
            assert done.returncode == 0, done.stdout + done.stderr
            assert (out / "2026-09" / "report.pdf").read_bytes().startswith(b"%PDF")
        finally:
            stop(serve)
