"""Outputs are written whole or not at all: real folders, real processes, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.io.outputs import (
    exchange,
    publish_folder,
    staging_folder,
    write_json,
    write_quarantine,
)
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR


def report(folder: Path, mark: str) -> None:
    """A stand-in report set: three files that all carry `mark`."""
    for name in ("metrics.json", "report.html", "manifest.json"):
        (folder / name).write_text(mark, encoding="utf-8")


def marks(folder: Path) -> set[str]:
    return {p.read_text(encoding="utf-8") for p in folder.iterdir()}


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_a_first_publish_and_a_replacement_leave_one_complete_set(tmp_path):
    final = tmp_path / "2024-06"
    first = staging_folder(final)
    report(first, "first")
    publish_folder(first, final)
    assert marks(final) == {"first"} and leftovers(tmp_path) == []
    second = staging_folder(final)
    report(second, "second")
    assert marks(final) == {"first"}  # nothing changes until the swap
    publish_folder(second, final)
    assert marks(final) == {"second"} and leftovers(tmp_path) == []
    assert oct(final.stat().st_mode & 0o777) == oct(0o777 & ~current_umask())


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_folders_are_exchanged_in_one_step_here(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    assert exchange(a, b) is True
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("b", "a")


WRITER = """
import sys, time
from pathlib import Path
from funnel_reports.flows.io.outputs import staging_folder
staging = staging_folder(Path(sys.argv[1]))
(staging / "metrics.json").write_text("new")
print(staging, flush=True)
time.sleep(600)
"""


def test_a_writer_killed_mid_run_leaves_the_old_report_and_its_rest_is_cleared(tmp_path):
    final = tmp_path / "2024-06"
    old = staging_folder(final)
    report(old, "old")
    publish_folder(old, final)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(final)], stdout=subprocess.PIPE, text=True
    )
    partial = Path(writer.stdout.readline().strip())
    assert partial.is_dir() and partial.name.startswith(".2024-06.partial-")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert marks(final) == {"old"}
    # the next run removes what the dead one left
    staging_folder(final).rmdir()
    assert leftovers(tmp_path) == []


def test_json_is_replaced_in_one_step(tmp_path):
    path = tmp_path / "manifest.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2.0000001})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def funnel_run(out: Path, lang: str) -> subprocess.Popen[str]:
    """`funnel run` of the sample's September in its own process, against the tests' server."""
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "funnel"),
            "run",
            "--input",
            str(SAMPLE_DIR),
            "--config",
            str(SAMPLE_CONFIG),
            "--period",
            "2026-09",
            "--lang",
            lang,
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )


def complete_set(folder: Path) -> str:
    """The language of a complete report folder; fails on a missing or mixed set."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    for name in manifest["outputs"]:
        assert (folder / name).is_file(), name
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert html.rstrip().endswith("</html>")
    assert ('lang="zh-CN"' in html) == (manifest["lang"] == "zh")
    assert (folder / "report.pdf").read_bytes().rstrip().endswith(b"%%EOF")
    return manifest["lang"]


@pytest.mark.heavy  # whole runs in processes
def test_a_report_run_killed_at_any_moment_leaves_a_complete_old_or_new_set(tmp_path):
    out = tmp_path / "out"
    started = time.perf_counter()
    assert funnel_run(out, "zh").wait(timeout=300) == 0
    seconds = time.perf_counter() - started
    assert complete_set(out / "2026-09") == "zh"
    seen = set()
    for share in (0.3, 0.6, 0.8, 0.9, 0.95, 0.99):
        run = funnel_run(out, "en")
        time.sleep(seconds * share)
        run.send_signal(signal.SIGKILL)
        run.wait()
        seen.add(complete_set(out / "2026-09"))
        assert [p for p in (out).iterdir() if not p.name.startswith(".")] == [out / "2026-09"]
    # and a run that is not killed replaces the report, clearing what killed runs left
    assert funnel_run(out, "en").wait(timeout=300) == 0
    assert complete_set(out / "2026-09") == "en"
    assert leftovers(out) == []
    assert "zh" in seen


@pytest.mark.heavy  # whole runs in processes
def test_two_runs_of_one_period_at_once_end_with_one_complete_set(tmp_path):
    out = tmp_path / "out"
    runs = [funnel_run(out, lang) for lang in ("zh", "en")]
    assert [run.wait(timeout=300) for run in runs] == [0, 0]
    assert complete_set(out / "2026-09") in ("zh", "en")
    assert leftovers(out) == []


def test_json_outputs_follow_the_umask_like_the_reports(tmp_path):
    # metrics.json, manifest.json and delivery.json were 0600 (a temporary file's mode) while
    # report.pdf was 0644: the team could read the report but not its figures
    from funnel_reports.flows.io.ledger import write_ledger
    from funnel_reports.flows.io.outputs import UMASK, write_json

    write_json(tmp_path / "metrics.json", {"a": 1})
    write_ledger(tmp_path / "delivery.json", {"sends": []})
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == dict.fromkeys(("metrics.json", "delivery.json", "report.pdf"), 0o666 & ~UMASK)


def test_quarantine_csvs_are_formula_safe_in_categorical_columns_too(tmp_path):
    """The reader keeps each row's file name as a categorical: a file named like a formula
    is written behind an apostrophe, as a value is."""
    rows = pl.DataFrame(
        {
            "_file": pl.Series(["=cmd.csv", "deals.csv"], dtype=pl.Categorical),
            "amount": ["+1", "100"],
            "_row": [2, 3],
        }
    )
    assert write_quarantine(tmp_path, {"opportunities": rows}) == ["quarantine/opportunities.csv"]
    written = (tmp_path / "quarantine" / "opportunities.csv").read_text(encoding="utf-8")
    assert written.splitlines() == ["_file,amount,_row", "'=cmd.csv,'+1,2", "deals.csv,100,3"]
