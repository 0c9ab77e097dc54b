"""The funnel command as a user runs it: exit status, one clear line on error, outputs."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR

HEADER = "opportunity_id,stage,created_at,status,closed_at,customer_name,amount,stage_entered_at"


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def run_on(
    tmp_path: Path, period: str = "2024-06", *extra: str, input_dir: Path | None = None
) -> int:
    """`funnel run` on tmp_path/in (or `input_dir`), writing to tmp_path/out."""
    return main(
        [
            "run",
            "--input",
            str(input_dir or tmp_path / "in"),
            "--period",
            period,
            "--out",
            str(tmp_path / "out"),
            *extra,
        ]
    )


def sample_run(out: Path, period: str, *extra: str, config: Path = SAMPLE_CONFIG) -> list[str]:
    """The arguments of `funnel run` on the sample data in data/sample."""
    return [
        "run",
        "--input",
        str(SAMPLE_DIR),
        "--config",
        str(config),
        "--period",
        period,
        "--out",
        str(out),
        *extra,
    ]


def run_sample(out: Path, period: str, *extra: str, config: Path = SAMPLE_CONFIG) -> int:
    """`funnel run` on the sample data in data/sample."""
    return main(sample_run(out, period, *extra, config=config))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_missing_required_column_stops_with_status_2(tmp_path, capsys):
    write(
        tmp_path / "in", "opportunities.csv", "opportunity_id,stage,create_at\nA,lead,2024-06-01\n"
    )
    status = run_on(tmp_path)
    assert status == 2
    line = one_error_line(capsys)
    assert "opportunities.csv" in line
    assert "lacks created_at (expected 'created_at'; nearest header: 'create_at')" in line
    assert "Found: opportunity_id, stage, create_at" in line
    assert "Expected at least: opportunity_id, stage, created_at" in line
    assert not (tmp_path / "out").exists()


def test_the_installed_command_prints_one_line_and_no_traceback(tmp_path):
    """The real `funnel` executable in a fresh process, as a user runs it."""
    write(tmp_path / "in", "opportunities.csv", "opportunity_id,stage\nA,lead\n")
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "funnel"),
            "run",
            "--input",
            str(tmp_path / "in"),
            "--period",
            "2024-06",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"},
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("funnel: "), done.stderr
    assert "lacks created_at" in done.stderr


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda d: (
                d.mkdir(parents=True),
                (d / "opportunities.csv").write_bytes(HEADER.encode() + b"\nA,\x80\xff,x\n"),
            ),
            # bytes that read as Windows-1252 text ("€ÿ"): a file of one short row
            "no row has the header's 8 fields (rows have 3)",
        ),
        (
            lambda d: (
                d.mkdir(parents=True),
                (d / "opportunities.csv").write_bytes(
                    b"\xef\xbb\xbf" + HEADER.encode().replace(b"stage", b"st\x80ge") + b"\n"
                ),
            ),
            # a byte that is not UTF-8 in a row quarantines the row; in the header, the file
            "its header holds bytes that are not utf-8 text",
        ),
        (lambda d: write(d, "opportunities.csv", ""), "is empty"),
        (lambda d: write(d, "deals.csv", "x\n"), "deals.csv: no known export layout"),
        (lambda d: d.mkdir(parents=True), "holds no CSV or XLSX file"),
        (
            lambda d: write(d, "opportunities.csv", "opportunity_id,stage,stage,created_at\n"),
            "repeats column(s) stage",
        ),
    ],
)
def test_unusable_inputs_give_status_2_and_a_message(tmp_path, capsys, setup, expected):
    setup(tmp_path / "in")
    status = run_on(tmp_path)
    assert status == 2
    assert expected in one_error_line(capsys)


@pytest.mark.parametrize("count", ["0", "-3"])
def test_generating_no_deals_is_refused(tmp_path, capsys, count):
    """Zero deals would write three empty files that no run can read."""
    with pytest.raises(SystemExit) as refused:  # argparse's own exit, before any work
        main(["generate", "--out", str(tmp_path / "g"), "--opportunities", count])
    assert refused.value.code == 2
    assert "expected 1 or more" in one_error_line(capsys)
    assert not (tmp_path / "g").exists()


def test_bad_period_gives_status_2(tmp_path, capsys):
    status = main(["run", "--input", str(SAMPLE_DIR), "--period", "June", "--out", str(tmp_path)])
    assert status == 2
    assert "expected a month like 2024-06" in one_error_line(capsys)


def test_quarantine_headers_are_formula_safe_too(tmp_path):
    write(
        tmp_path / "in",
        "opportunities.csv",
        f"{HEADER},=cmd|' /C calc'!A0,@SUM(1),-2\nA,lead,2024-06-01,open,,Acme,abc,,x,y,z\n",
    )
    assert run_on(tmp_path) == 0
    written = (tmp_path / "out" / "2024-06" / "quarantine" / "opportunities.csv").read_text("utf-8")
    header = pl.read_csv(io.StringIO(written), infer_schema=False).columns
    assert header[-3:] == ["'=cmd|' /C calc'!A0", "'@SUM(1)", "'-2"]
    assert not any(name.startswith(("=", "+", "-", "@")) for name in header)


def test_run_quarantines_bad_rows_and_keeps_counts(tmp_path, capsys):
    rows = [
        "A,lead,2024-06-01,,,Acme,100,",
        'B,proposal,2024-06-02,,,=HYPERLINK("http://x"),abc,',
        "C,qualified,not a date,,,Beta,50,",
        "D,won,2024-05-01,won,2024-06-15,Gamma,300,",
    ]
    folder = tmp_path / "in"
    write(folder, "opportunities.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    write(
        folder,
        "followups.csv",
        "opportunity_id,occurred_at,channel\nA,2024-06-03,email\nZ,2024-06-03,email\n",
    )
    assert (
        # the export ends before the period does: freshness is not what this test is about
        run_on(tmp_path, "2024-06", "--allow-stale", input_dir=folder) == 0
    )
    out = tmp_path / "out" / "2024-06"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    dq = metrics["data_quality"]
    assert (
        dq["opportunities"]["rows_read"],
        dq["opportunities"]["rows_valid"],
        dq["opportunities"]["rows_quarantined"],
    ) == (4, 2, 2)
    assert (dq["followups"]["rows_valid"], dq["followups"]["rows_quarantined"]) == (1, 1)
    assert metrics["kpis"]["won_count"] == 1 and metrics["kpis"]["open_count"] == 1
    quarantine = pl.read_csv(out / "quarantine" / "opportunities.csv", infer_schema=False)
    assert quarantine["_line"].to_list() == ["3", "4"]
    assert quarantine["_reasons"].to_list() == [
        "amount: cannot read as a number (got 'abc')",
        "created_at: cannot read as a timestamp (got 'not a date')",
    ]
    assert quarantine["customer_name"].to_list()[0] == '\'=HYPERLINK("http://x")'
    assert pl.read_csv(out / "quarantine" / "followups.csv", infer_schema=False)[
        "_reasons"
    ].to_list() == ["opportunity_id: 'Z' is not in opportunities"]
    assert "dwell_unavailable" not in metrics  # no history: figures are null, and said so
    assert all(row["median_days"] is None for row in metrics["dwell"])
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Dwell times are unavailable" in html
    assert "wrote" in capsys.readouterr().out


def test_input_is_escaped_in_the_report(tmp_path):
    evil = '<script>alert(1)</script><img src="http://127.0.0.1:9/x">'
    quoted = evil.replace('"', '""')
    folder = tmp_path / "in"
    write(
        folder,
        "opportunities.csv",
        "opportunity_id,stage,created_at,customer_name,stall_reason,owner\n"
        f'A,negotiation,2024-05-01,"{quoted}","{quoted}",<b>rep</b>\n',
    )
    assert (
        # the export ends before the period does: freshness is not what this test is about
        run_on(tmp_path, "2024-06", "--allow-stale", input_dir=folder) == 0
    )
    html = (tmp_path / "out" / "2024-06" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "<img" not in html and "<b>rep" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;rep&lt;/b&gt;" in html


def test_chinese_report_renders_with_an_embedded_cjk_font(tmp_path):
    assert run_sample(tmp_path, "2026-08", "--lang", "zh") == 0
    pdf = tmp_path / "2026-08" / "report.pdf"
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for heading in ("销售漏斗报告", "管理摘要", "阶段转化", "停滞商机", "附录：数据质量"):
        assert heading in text
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
    ).stdout
    assert any("WenQuanYi" in line and " yes " in line for line in fonts.splitlines()), fonts


def test_validate_prints_a_summary_per_file(tmp_path, capsys):
    folder = tmp_path / "in"
    write(
        folder,
        "opportunities.csv",
        "opportunity_id,stage,created_at\nA,lead,2024-06-01\n"
        "B,lead,someday\nC,lead,later\nD,nowhere,2024-06-01\n",
    )
    assert main(["validate", "--input", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "opportunities.csv (opportunities): read 4, valid 1, quarantined 3" in out
    assert "2 × created_at: cannot read as a timestamp" in out
    assert "line 3: created_at: cannot read as a timestamp (got 'someday')" in out
    assert "1 × stage: cannot read as a stage" in out


def test_generate_writes_valid_canonical_exports(tmp_path, capsys):
    assert (
        main(["generate", "--out", str(tmp_path / "gen"), "--opportunities", "120", "--seed", "3"])
        == 0
    )
    assert "120 opportunities rows" in capsys.readouterr().out
    assert main(["validate", "--input", str(tmp_path / "gen")]) == 0
    out = capsys.readouterr().out
    assert "read 120, valid 120, quarantined 0" in out
    assert out.count("quarantined 0") == 3


def test_target_from_the_command_line_and_from_funnel_toml(tmp_path):
    config = tmp_path / "funnel.toml"
    config.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8") + '\n[targets]\n"2026-08" = 900000\n',
        encoding="utf-8",
    )
    # the forecast's chance is against the next period's target: 2026-08's when 2026-07 is
    # reported (whatever --target says of 2026-07), none when 2026-08 is (2026-09 has none)
    for period, extra, target, next_target in (
        ("2026-08", [], 900_000, None),
        ("2026-07", ["--target", "5e5"], 500_000, 900_000),
    ):
        assert run_sample(tmp_path / "out", period, *extra, config=config) == 0
        m = json.loads((tmp_path / "out" / period / "metrics.json").read_text(encoding="utf-8"))
        assert m["targets"]["target"] == target
        assert m["targets"]["remaining"] == max(target - m["kpis"]["won_amount"], 0)
        mc = m["forecast"]["monte_carlo"]
        assert mc["target"] == next_target
        assert (mc["p_hit_target"] is None) == (next_target is None)
        html = (tmp_path / "out" / period / "report.html").read_text(encoding="utf-8")
        assert "What the target asks" in html and "Range of outcomes" in html
        chance = f"Chance that {m['forecast']['next_period_label']} brings at least its target"
        assert (f"{chance} of CNY 900,000" in html) == (next_target is not None)


def test_a_called_out_bottleneck_gets_its_sentence(tmp_path):
    """Negotiation converted 9 of 10 deals in the months before June, 1 of 10 in June."""
    opps = ["opportunity_id,stage,status,created_at,closed_at,amount,stage_entered_at"]
    history = ["opportunity_id,stage,entered_at"]
    for i in range(20):
        june = i >= 10
        month = "06" if june else "03"
        won = (i < 9) or i == 10
        oid = f"D{i}"
        closed = f"2024-{month}-20"
        opps.append(
            f"{oid},{'won' if won else 'negotiation'},{'won' if won else 'lost'},"
            f"2024-{month}-01,{closed},100,"
        )
        history += [f"{oid},lead,2024-{month}-01", f"{oid},negotiation,2024-{month}-05"]
        if won:
            history.append(f"{oid},won,{closed}")
    opps.append("OPEN,negotiation,open,2024-06-01,,1000,2024-06-02")
    history += ["OPEN,lead,2024-06-01", "OPEN,negotiation,2024-06-02"]
    write(tmp_path / "in", "opportunities.csv", "\n".join(opps) + "\n")
    write(tmp_path / "in", "stage_history.csv", "\n".join(history) + "\n")
    assert run_on(tmp_path, "2024-06", "--allow-stale") == 0  # the export ends in June
    m = json.loads((tmp_path / "out" / "2024-06" / "metrics.json").read_text(encoding="utf-8"))
    top = m["bottlenecks"][0]
    assert (top["stage"], top["conversion"], top["baseline_conversion"]) == (
        "negotiation",
        0.1,
        0.9,
    )
    assert top["is_called_out"] is True
    assert top["revenue_at_risk"] == 800.0  # 1000 open × drop 0.8 × p_win(won) 1
    # the sentence is made when the report is rendered, in its language; metrics.json has none
    assert "sentence" not in top
    html = (tmp_path / "out" / "2024-06" / "report.html").read_text(encoding="utf-8")
    assert (
        "Negotiation → Signed converted 10% of the 10 deals that left it in 2024-06, against "
        "90% before. About USD 800 of open pipeline is at risk."
    ) in html


def test_a_megabyte_cell_is_cut_in_the_report(tmp_path):
    reason = "waiting " * 250_000  # 2 MB in one cell
    write(
        tmp_path / "in",
        "opportunities.csv",
        f"opportunity_id,stage,created_at,stall_reason\nA,proposal,2024-05-01,{reason}\n",
    )
    assert run_on(tmp_path, "2024-06", "--allow-stale") == 0  # the export ends in May
    out = tmp_path / "out" / "2024-06"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert len(html) < 200_000 and "waiting waiting" in html and "…" in html
    assert (out / "report.pdf").stat().st_size < 500_000


def test_progress_says_each_step_with_its_counts_on_standard_error(tmp_path, capsys):
    assert main(["--progress", *sample_run(tmp_path, "2026-09")]) == 0
    captured = capsys.readouterr()
    steps = [
        re.match(r"funnel: (?:2026-09 )?([\w-]+)", line)[1] for line in captured.err.splitlines()
    ]
    assert steps == [
        "load",
        "validate",
        "derive",
        "compute",
        "tables",
        "render_html",
        "render_pdf",
        "write",
        "2026-09",
    ]
    assert "funnel: load: opportunities.csv 400 rows, stage_history.csv 1078 rows" in captured.err
    assert captured.out.splitlines() == [
        f"wrote {tmp_path / '2026-09'}: metrics.json, report.html, report.pdf, report.xlsx, "
        "tables/ (6 Parquet files), manifest.json"
    ]
    # without --progress (and not on a terminal) standard error stays empty
    assert run_sample(tmp_path, "2026-09") == 0
    assert capsys.readouterr().err == ""


def test_a_followup_file_without_its_time_column_stops_the_run_with_the_fix(tmp_path, capsys):
    write(tmp_path / "in", "opportunities.csv", f"{HEADER}\nA,lead,2024-06-01,open,,Acme,100,\n")
    followups = "opportunity_id,{},channel\nA,2024-06-02,phone\n"
    write(tmp_path / "in", "followups.csv", followups.format("occurred_on"))
    assert run_on(tmp_path) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"funnel: {tmp_path / 'in' / 'followups.csv'}: is named like followups")
    assert "no column for occurred_at" in line and "nearest header: 'occurred_on'" in line
    assert line.endswith('[source.columns.followups] occurred_at = "occurred_on".')
    assert not (tmp_path / "out").exists()
    # no header is like it: the line to add says what to put there
    write(tmp_path / "in", "followups.csv", followups.format("date"))
    assert run_on(tmp_path) == 2
    assert one_error_line(capsys).endswith(
        '[source.columns.followups] occurred_at = "<the column that holds it>".'
    )


def test_validate_warns_of_a_file_that_looks_like_a_table_but_is_not_used(tmp_path, capsys):
    write(tmp_path / "in", "opportunities.csv", f"{HEADER}\nA,lead,2024-06-01,open,,Acme,100,\n")
    write(
        tmp_path / "in", "followups.csv", "opportunity_id,occurred_at,channel\nA,2024-06-02,phone\n"
    )
    # a better fit by its headers, but the file named after the table wins
    calls = "opportunity_id,occurred_at,channel,summary\nA,2024-06-03,phone,Intro\n"
    write(tmp_path / "in", "calls.csv", calls)
    assert main(["validate", "--input", str(tmp_path / "in")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "not used: calls.csv" in out
    assert "followups.csv (followups): read 1, valid 1, quarantined 0" in out
    assert (
        "warning: calls.csv looks like followups by its headers but is not used: followups come "
        "from followups.csv"
    ) in out


def test_validate_gives_the_line_that_maps_an_unknown_stage(tmp_path, capsys):
    write(
        tmp_path / "in",
        "opportunities.csv",
        f"{HEADER}\nA,Demo Done,2024-06-01,open,,Acme,100,\nB,Demo Done,2024-06-02,open,,Beta,5,\n"
        "C,lead,2024-06-03,open,,Gamma,7,\n",
    )
    assert main(["validate", "--input", str(tmp_path / "in")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        "unknown stage in opportunities: 'Demo Done' (2 rows quarantined); to map it, add under "
        '[source.stages] in funnel.toml: "Demo Done" = "<stage id, or lost>"'
    ) in out
    toml = write(tmp_path, "funnel.toml", '[source.stages]\n"Demo Done" = "proposal"\n')
    assert main(["validate", "--input", str(tmp_path / "in"), "--config", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "unknown stage" not in out and "read 3, valid 3, quarantined 0" in out


@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_typo_in_funnel_toml_stops_before_anything_runs(tmp_path, capsys, command):
    # `curency = "CNY"` used to give a report in USD with exit 0
    config = write(tmp_path, "funnel.toml", '[source]\ncurency = "CNY"\n')
    args = sample_run(tmp_path / "out", "2026-09", config=config)
    if command == "validate":
        args = ["validate", "--input", str(SAMPLE_DIR), "--config", str(config)]
    assert main(args) == 2
    assert one_error_line(capsys) == (
        f"funnel: {config}: [source] curency: unknown key; did you mean currency?"
    )
    assert not (tmp_path / "out").exists()


def test_validate_groups_reasons_whatever_the_values_hold(tmp_path, capsys):
    """One line per reason, with its count and two example lines, not one per value: ids and
    stage values with apostrophes and line breaks used to give a line each."""
    opportunities = [f"{HEADER}"]
    opportunities += [
        f"O'Brien {i},\"Won't\nbuy {i}\",2024-06-01,open,,Acme,100," for i in range(30)
    ]
    opportunities += ["Dup'd,lead,2024-06-01,open,,Acme,1,", "Dup'd,lead,2024-06-02,open,,Acme,2,"]
    followups = ["opportunity_id,occurred_at,channel"]
    followups += [f"O'Neil {i},2024-06-02,phone" for i in range(40)]
    write(tmp_path / "in", "opportunities.csv", "\n".join(opportunities) + "\n")
    write(tmp_path / "in", "followups.csv", "\n".join(followups) + "\n")
    assert main(["validate", "--input", str(tmp_path / "in")]) == 0
    out = capsys.readouterr().out.splitlines()
    counts = [line.strip() for line in out if re.match(r"^  \d+ × ", line)]
    assert counts == [
        "30 × stage: cannot read as a stage",
        "2 × opportunity_id: value appears more than once (every copy quarantined)",
        "40 × opportunity_id: value is not in opportunities",
    ]
    at = out.index("  40 × opportunity_id: value is not in opportunities")
    assert out[at + 1 : at + 3] == [
        "      line 2: opportunity_id: 'O'Neil 0' is not in opportunities",
        "      line 3: opportunity_id: 'O'Neil 1' is not in opportunities",
    ]
    # 30 stage values nobody maps: the ten with most rows, then how many more
    unknown = [line for line in out if line.startswith("unknown stage in opportunities")]
    assert len(unknown) == 10
    assert "… and 20 more unknown stage values in opportunities (20 rows quarantined)" in out
    assert len(out) < 40


def test_a_month_the_export_does_not_reach_is_refused_unless_allowed(tmp_path, capsys):
    # the sample's latest record is from 2026-09-30: November would read "won 0"
    assert run_sample(tmp_path / "out", "2026-11") == 2
    assert one_error_line(capsys) == (
        "funnel: the export's latest record is from 2026-09-30, but 2026-11 runs to 2026-11-30, "
        "61 days later (more than stale_after_days = 7): export again, or run with "
        "--allow-stale to report it anyway"
    )
    assert not (tmp_path / "out" / "2026-11").exists()
    assert run_sample(tmp_path / "out", "2026-11", "--allow-stale") == 0
    report = tmp_path / "out" / "2026-11"
    metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data_as_of"]["date"] == "2026-09-30"
    assert metrics["data_as_of"]["days_before_period_end"] > 61
    html = (report / "report.html").read_text(encoding="utf-8")
    assert "Data as of 2026-09-30, 61 days before the period ends" in html


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (("--target", "-5"), "funnel: run: argument --target: '-5': expected a positive amount"),
        (("--target", "nan"), "funnel: run: argument --target: 'nan': expected a positive amount"),
        (("--workers", "0"), "funnel: run: argument --workers: '0': expected 1 or more"),
    ],
)
def test_an_option_out_of_range_is_one_line_and_status_2(tmp_path, capsys, extra, line):
    with pytest.raises(SystemExit) as stop:
        main(sample_run(tmp_path / "out", "2026-09", *extra))
    assert stop.value.code == 2
    assert one_error_line(capsys) == line


def test_a_period_out_of_range_answers_before_anything_runs(tmp_path, capsys):
    # it was exit 1, "year 10000", after the Prefect server had started
    assert main(sample_run(tmp_path / "out", "9999-12")) == 2
    assert one_error_line(capsys) == "funnel: period '9999-12': the year must lie in 1900-2999"


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--input", str(SAMPLE_DIR)],  # a check, not a job
        ["run", "--input", "/nowhere", "--period", "2024-06", "--out", "/tmp/x"],
        ["run", "--input", str(SAMPLE_DIR), "--period", "2024-13", "--out", "/tmp/x"],
    ],
)
def test_validate_and_usage_errors_answer_without_prefect(args):
    # Prefect's import and server cost 10-25 s: none of these waits for them
    probe = (
        "import sys\nfrom flows.cli import main\nstatus = main(sys.argv[1:])\n"
        "print(status, 'prefect' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
    )
    status = "0" if args[0] == "validate" else "2"
    assert done.stdout.splitlines()[-1] == f"{status} False", done.stdout + done.stderr


def test_a_folder_no_layout_fits_answers_without_prefect(tmp_path):
    # the layout is chosen from the files' headers before Prefect starts
    write(tmp_path / "in", "opportunities.csv", "opportunity_id,stage\n1,lead\n")
    probe = (
        "import sys\nfrom flows.cli import main\nstatus = main(sys.argv[1:])\n"
        "print(status, 'prefect' in sys.modules)\n"
    )
    args = ["run", "--input", str(tmp_path / "in"), "--period", "2024-06", "--out", "/tmp/x"]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.splitlines()[-1] == "2 False", done.stdout + done.stderr
    assert "lacks created_at" in done.stderr and done.stderr.count("\n") == 1
