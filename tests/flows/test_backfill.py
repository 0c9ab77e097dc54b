"""`funnel backfill` as a user runs it: one report per period, each the same as a single run,
current reports skipped, a failed period said in one line while the others are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR

LAST_SIX_MONTHS = ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]


def backfill(
    out: Path,
    *extra: str,
    first: str = "2026-04",
    last: str = "2026-09",
    config: Path = SAMPLE_CONFIG,
) -> int:
    return main(
        [
            "backfill",
            "--input",
            str(SAMPLE_DIR),
            "--config",
            str(config),
            "--from",
            first,
            "--to",
            last,
            "--out",
            str(out),
            *extra,
        ]
    )


def summary(capsys) -> dict[str, list[str]]:
    """The summary table's lines by period: status, won amount, win rate, seconds."""
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["period", "status", "won", "amount", "win", "rate", "seconds"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:-1]}


@pytest.fixture(scope="module")
def six_months(tmp_path_factory, prefect_server):
    out = tmp_path_factory.mktemp("backfill")
    assert backfill(out) == 0
    return out


def test_a_backfill_writes_one_report_per_month_as_of_its_own_end(six_months):
    assert sorted(p.name for p in six_months.iterdir()) == LAST_SIX_MONTHS
    for label in LAST_SIX_MONTHS:
        metrics = json.loads((six_months / label / "metrics.json").read_text(encoding="utf-8"))
        assert metrics["period"]["label"] == label
        assert (six_months / label / "report.pdf").stat().st_size > 0


@pytest.mark.parametrize("label", ["2026-04", "2026-09"])
def test_each_period_is_identical_to_a_single_run_of_it(six_months, tmp_path, label):
    single = tmp_path / "single"
    argv = ["run", "--input", str(SAMPLE_DIR), "--config", str(SAMPLE_CONFIG)]
    assert main([*argv, "--period", label, "--out", str(single)]) == 0
    for name in ("metrics.json", "report.html", "report.pdf"):
        assert (single / label / name).read_bytes() == (six_months / label / name).read_bytes()
    manifests = [
        json.loads((folder / label / "manifest.json").read_text(encoding="utf-8"))
        for folder in (single, six_months)
    ]
    assert manifests[0]["fingerprint"] == manifests[1]["fingerprint"]


@pytest.mark.heavy  # several backfills of many periods
def test_a_rerun_skips_current_reports_and_force_rewrites_them(six_months, capsys):
    before = {label: (six_months / label).stat().st_ino for label in LAST_SIX_MONTHS}
    capsys.readouterr()
    assert backfill(six_months) == 0
    table = summary(capsys)
    assert list(table) == LAST_SIX_MONTHS
    assert {row[0] for row in table.values()} == {"current"}
    assert table["2026-09"][1:3] == ["1,091,000", "16.0%"]  # headline figures of the report
    assert {label: (six_months / label).stat().st_ino for label in LAST_SIX_MONTHS} == before
    assert backfill(six_months, "--force") == 0
    assert {row[0] for row in summary(capsys).values()} == {"written"}
    assert all((six_months / label).stat().st_ino != before[label] for label in LAST_SIX_MONTHS)


@pytest.mark.heavy  # several backfills of many periods
def test_a_changed_configuration_makes_reports_stale(six_months, tmp_path, capsys):
    out = tmp_path / "out"
    for label in ("2026-08", "2026-09"):  # copies of two current reports
        (out / label).mkdir(parents=True)
        for file in (six_months / label).glob("*.*"):
            (out / label / file.name).write_bytes(file.read_bytes())
    changed = tmp_path / "funnel.toml"
    changed.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8") + "\n# edited\n", "utf-8")
    capsys.readouterr()
    for config, status in ((SAMPLE_CONFIG, "current"), (changed, "written")):
        assert backfill(out, first="2026-08", config=config) == 0
        assert [row[0] for row in summary(capsys).values()] == [status, status]


@pytest.mark.heavy  # several backfills of many periods
def test_quarters_and_months_together(tmp_path, capsys):
    assert backfill(tmp_path, "--grain", "both", first="2026-06", last="2026-07") == 0
    assert list(summary(capsys)) == ["2026-06", "2026-Q2", "2026-07", "2026-Q3"]


@pytest.mark.heavy  # several backfills of many periods
def test_a_period_that_cannot_be_written_fails_alone_with_one_line(tmp_path, capsys):
    tmp_path.joinpath("2026-08").write_text("a file where the report folder goes", "utf-8")
    assert backfill(tmp_path, first="2026-08") == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("funnel: 2026-08: failed:"), err
    assert "Traceback" not in captured.err
    lines = captured.out.splitlines()
    assert [line.split()[:2] for line in lines[1:-1]] == [
        ["2026-08", "failed"],
        ["2026-09", "written"],
    ]
    assert (tmp_path / "2026-09" / "manifest.json").is_file()
    assert lines[-1] == "1 written, 0 current, 1 failed"
