"""The real flow on the sample data: outputs, the metrics.json contract, the rendered reports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.commands import funnel_demo
from funnel_reports.flows.io.exports import latest_full_month
from funnel_reports.flows.io.readers import sha256_of
from funnel_reports.flows.io.resources import SAMPLE_DIR
from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.context import report_context
from funnel_reports.report_templates.render import render_html
from funnel_reports.transforms.forecast import MIN_ORIGINS_TO_CHOOSE
from funnel_reports.transforms.funnel_model import RunSettings
from tests.helpers import bridged

OPEN_STAGES = ["lead", "qualified", "proposal", "negotiation"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, prefect_server):
    out = tmp_path_factory.mktemp("demo")
    manifests = funnel_demo(str(out))
    return out, manifests


def pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


def test_demo_writes_the_latest_full_month_and_its_quarter(demo):
    out, manifests = demo
    assert latest_full_month(SAMPLE_DIR, "Asia/Shanghai") == "2026-09"
    assert [m["period"]["label"] for m in manifests] == ["2026-09", "2026-Q3"]
    for label in ("2026-09", "2026-Q3"):
        folder = out / label
        for name in ("report.html", "report.pdf", "metrics.json", "manifest.json"):
            assert (folder / name).stat().st_size > 0, name
        assert (folder / "quarantine").is_dir()


def test_metrics_json_holds_the_contract_keys(demo):
    out, _ = demo
    m = json.loads((out / "2026-09" / "metrics.json").read_text(encoding="utf-8"))
    assert m["period"] == {
        "grain": "month",
        "label": "2026-09",
        "start": "2026-09-01",
        "end": "2026-10-01",
        "as_of": "2026-10-01",
        "timezone": "Asia/Shanghai",
    }
    assert [r["stage"] for r in m["funnel"]] == OPEN_STAGES
    assert all({"count", "amount"} <= set(r) for r in m["funnel"])
    assert [(r["from"], r["to"]) for r in m["conversion"]] == [
        ("lead", "qualified"),
        ("qualified", "proposal"),
        ("proposal", "negotiation"),
        ("negotiation", "won"),
        ("won", "retention"),
    ]
    for row in m["conversion"]:
        assert {
            "flow_rate",
            "cohort_rate",
            "resolved_rate",
            "cohort_size",
            "advanced",
            "lost",
            "open",
        } <= set(row)
    assert [r["stage"] for r in m["dwell"]] == OPEN_STAGES
    for row in m["dwell"]:
        assert {
            "completed_visits",
            "mean_days",
            "median_days",
            "p25_days",
            "p75_days",
            "p90_days",
            "open_visits",
            "open_median_age_days",
            "km_median_days",
        } <= set(row)
    assert {
        "stalled_count",
        "stalled_amount",
        "missing_reason_count",
        "compliance_rate",
        "reasons",
    } <= set(m["stalls"])
    assert {
        "open_count",
        "open_amount",
        "won_count",
        "won_amount",
        "lost_count",
        "win_rate",
        "avg_won_amount",
        "median_cycle_days",
        "pipeline_velocity",
    } <= set(m["kpis"])
    forecast = m["forecast"]
    assert {
        "weighted_pipeline",
        "unpriced_count",
        "next_period",
        "method",
        "next_period_components",
        "next_period_by_method",
        "imputed_amount_count",
        "imputed_amount",
        "new_deals",
        "monte_carlo",
        "backtest",
    } <= set(forecast)
    assert set(forecast["next_period_components"]) == {"open_deals", "new_deals"}
    assert forecast["next_period"] == forecast["next_period_by_method"][forecast["method"]]
    card = forecast["backtest"]
    assert {
        "periods",
        "wape",
        "bias",
        "mape",
        "brier",
        "coverage",
        "candidates",
        "baselines",
        "reliability",
        "method",
    } <= set(card)
    assert card["method"] == forecast["method"] and len(card["periods"]) == 12
    assert {r["method"] for r in card["baselines"]} == {
        "stage_weighted",
        "last_period",
        "mean_last_3",
    }
    assert [r["stage"] for r in forecast["stage_probabilities"]] == OPEN_STAGES
    for row in forecast["stage_probabilities"]:
        assert {"won", "lost", "p_win", "insufficient_history"} <= set(row)
    for table in ("opportunities", "stage_history", "followups"):
        dq = m["data_quality"][table]
        assert dq["rows_read"] == dq["rows_valid"] + dq["rows_quarantined"]
        assert set(dq) == {
            "rows_read",
            "rows_valid",
            "rows_quarantined",
            "reasons",
            "notes",
            "unknown_stages",
            "null_words",
            "files",
        }
        assert [f["file"] for f in dq["files"]] == [f"{table}.csv"]
        assert dq["files"][0]["rows_read"] == dq["rows_read"]
    assert set(m["segments"]) == {"owner", "source", "industry", "customer_size", "region"}
    assert {
        "touches_in_period",
        "touches_per_open_deal",
        "channel_mix",
        "silent_open_deals",
        "overdue_next_actions",
        "won_vs_lost",
    } <= set(m["followups"])
    assert m["followups"]["touches_in_period"] > 0
    mc = m["forecast"]["monte_carlo"]
    assert 0 <= mc["p10"] <= mc["p50"] <= mc["p90"]
    assert m["targets"] is None  # the sample's funnel.toml sets no target
    assert [r["stage"] for r in m["bottlenecks"]] != []
    # sentences are made when the report is rendered: one for each called-out step
    assert all("sentence" not in row for row in m["bottlenecks"])
    context = report_context(m, input_files=[], lang="en", settings=RunSettings().metrics)
    for row in context["bottlenecks"]["rows"]:
        assert (row["sentence"] is None) == (not row["is_called_out"])
    # the sample is realistic: there is something in every section
    assert m["kpis"]["won_count"] > 0 and m["stalls"]["stalled_count"] > 0
    assert m["stalls"]["missing_reason_count"] > 0
    assert m["forecast"]["weighted_pipeline"] > 0


def test_the_samples_pipeline_movement_reconciles_and_has_slipped_deals(demo):
    """The sample's September: its bridge adds up to the month's open pipeline, its reps
    moved close dates on (`--push-close-dates`), and the report's first page says so."""
    out, _ = demo
    m = json.loads((out / "2026-09" / "metrics.json").read_text(encoding="utf-8"))
    bridge, kpis = m["pipeline_movement"], m["kpis"]
    count, amount = bridged(bridge)
    assert count == bridge["open_end_count"] == kpis["open_count"]
    assert amount == pytest.approx(kpis["open_amount"])
    expected = bridge["expected"]
    assert expected["pushed_out_count"] > 0 and expected["slipped"]
    assert all(row["days_pushed"] > 0 for row in expected["slipped"])
    first_page = pdf_text(out / "2026-09" / "report.pdf").split("\f")[0]
    assert "Pipeline movement (CNY)" in first_page
    assert f"Of the {expected['expected_count']} deals" in first_page.replace("\n", " ")


@pytest.mark.parametrize("label", ["2026-09", "2026-Q3"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_sample_report_gives_each_figure_one_number(demo, label, lang):
    """The forecast, its error and the weakest step are one number each wherever the
    sample's report gives them: the tile, the headline, the range chart, the sentences and
    the tables."""
    out, _ = demo
    m = json.loads((out / label / "metrics.json").read_text(encoding="utf-8"))
    context = report_context(m, input_files=[], lang=lang, settings=RunSettings().metrics)
    forecast, html = context["forecast"], render_html(context)
    figure = fmt.compact_amount(m["forecast"]["next_period"], lang)
    tile = next(t for t in context["summary"]["tiles"] if t["value"] == figure)
    assert m["forecast"]["next_period_label"] in tile["title"]
    assert forecast["range_chart"]["point"] == m["forecast"]["next_period"]
    assert f"{m['currency']} {figure}</strong>" in html
    assert f"{context['t']['forecast_marker']} {figure}</text>" in html
    # the forecast's error: the sentence's WAPE is the report card's "as used" row
    as_used = fmt.percent(m["forecast"]["backtest"]["wape"], 1)
    quoted = re.findall(r"\d+\.\d%", forecast["method_sentence"])
    enough = len(m["forecast"]["backtest"]["periods"]) >= MIN_ORIGINS_TO_CHOOSE
    assert quoted[:1] == ([as_used] if enough else [])
    card_row = re.search(r'<tr class="as-used">(.*?)</tr>', html, re.S).group(1)
    assert f'<td class="num">{as_used}</td>' in card_row
    # the weakest step: the summary's rate is the lowest of the conversion table's open steps
    rows = [r for r in context["funnel"]["conversion"] if r["from_is_open"]]
    weakest = min(rows, key=lambda r: r["resolved_rate"])
    leak = next(s for s in context["summary"]["sentences"] if weakest["to_label"] in s)
    assert fmt.percent(weakest["resolved_rate"]) in leak and weakest["from_label"] in leak


def test_quarterly_metrics_add_the_months(demo):
    out, _ = demo
    m = json.loads((out / "2026-Q3" / "metrics.json").read_text(encoding="utf-8"))
    assert m["period"]["grain"] == "quarter"
    assert [month["period"]["label"] for month in m["months"]] == ["2026-07", "2026-08", "2026-09"]
    # the quarter's wins are the sum of its months'
    assert m["kpis"]["won_count"] == sum(month["kpis"]["won_count"] for month in m["months"])
    assert m["comparison"]["previous"]["period"]["label"] == "2026-Q2"
    assert [t["label"] for t in m["trend"]] == [
        "2025-Q2",
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
    ]
    assert m["trend"][-1]["won_amount"] == m["kpis"]["won_amount"]
    assert m["trend"][-2]["won_amount"] == m["comparison"]["previous"]["kpis"]["won_amount"]
    assert m["comparison"]["year_ago"]["period"]["label"] == "2025-Q3"


def test_manifest_records_inputs_versions_and_timings(demo):
    out, _ = demo
    manifest = json.loads((out / "2026-09" / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["inputs"]:
        path = SAMPLE_DIR / entry["name"]
        assert entry["sha256"] == sha256_of(path)
        assert entry["rows"] == pl.read_csv(path, infer_schema=False).height
        assert entry["rows"] == entry["rows_valid"] + entry["rows_quarantined"]
        assert (entry["encoding"], entry["delimiter"]) == ("utf-8", ",")
    assert manifest["source"]["preset"] == "canonical"
    assert set(manifest["timings_seconds"]["steps"]) == {
        "load",
        "validate",
        "derive",
        "compute",
        "tables",
        "render_html",
        "render_pdf",
        "write",
    }
    assert manifest["versions"]["polars"].startswith("2.")


def test_pdf_reads_as_a_report_with_embedded_fonts(demo):
    out, _ = demo
    pdf = out / "2026-09" / "report.pdf"
    pages = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    page_count = int(
        next(line.split()[-1] for line in pages.splitlines() if line.startswith("Pages:"))
    )
    assert 3 <= page_count <= 8
    text = pdf_text(pdf)
    for heading in (
        "Team and segments",
        "Bottlenecks",
        "Follow-up activity",
        "Sales funnel report",
        "Executive summary",
        "Stage conversion",
        "Forecast",
        "Time in stage",
        "Stalled deals",
        "Appendix: data quality",
        "Next period: 2026-10",
        "Forecast report card",
        "As used at each period end",
    ):
        assert heading in text
    # page numbers on every page; the running header from page 2 on
    assert all(re.search(rf"\b{n}\s*/\s*{page_count}\b", text) for n in range(1, page_count + 1))
    assert text.count("Monthly report · 2026-09") == page_count
    fonts = subprocess.run(
        ["pdffonts", str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if "WenQuanYi" in line or "CJK" in line]
    assert cjk and all(" yes " in line for line in cjk), fonts  # embedded, not just extracted
    quarterly = pdf_text(out / "2026-Q3" / "report.pdf")
    assert "The quarter month by month" in quarterly and "Forecast report card" in quarterly


def test_reports_carry_no_contact_details(demo):
    out, _ = demo
    contacts = pl.read_csv(SAMPLE_DIR / "opportunities.csv", infer_schema=False).select(
        "contact_name", "contact_phone", "contact_email"
    )
    values = {v for column in contacts.iter_columns() for v in column.drop_nulls().to_list()}
    assert values
    for label in ("2026-09", "2026-Q3"):
        text = pdf_text(out / label / "report.pdf") + (out / label / "report.html").read_text(
            encoding="utf-8"
        )
        leaked = [v for v in values if v in text]
        assert not leaked, leaked[:5]


def test_rerun_gives_identical_metrics(demo, tmp_path):
    out, _ = demo
    funnel_demo(str(tmp_path))
    for label in ("2026-09", "2026-Q3"):
        assert (tmp_path / label / "metrics.json").read_bytes() == (
            out / label / "metrics.json"
        ).read_bytes()


def test_metrics_are_the_same_bytes_in_either_language(demo, tmp_path):
    out, _ = demo
    funnel_demo(str(tmp_path), lang="zh")
    for label in ("2026-09", "2026-Q3"):
        assert "销售漏斗报告" in (tmp_path / label / "report.html").read_text(encoding="utf-8")
        assert (tmp_path / label / "metrics.json").read_bytes() == (
            out / label / "metrics.json"
        ).read_bytes()


def test_the_benchmark_times_the_steps_the_flow_runs():
    """`python -m benchmarks.benchmark` measures the functions the flow calls (a
    smoke test: the figures it prints are not tested)."""
    from benchmarks.benchmark import pipeline_steps

    steps = pipeline_steps(str(SAMPLE_DIR))
    assert list(steps) == ["read_validate", "derive", "compute", "render"]
    assert all(step["seconds"] > 0 for step in steps.values())


def test_the_forecast_benchmark_prints_every_export_and_the_goals(capsys):
    """`python -m benchmarks.forecast` on one small seed (a smoke
    test: the backtest figures themselves are tested in tests/transforms and tests/oracle)."""
    from benchmarks.forecast import main as forecast_benchmark

    assert forecast_benchmark(["--seeds", "7", "--opportunities", "2000"]) == 0
    out = capsys.readouterr().out
    for name in (
        "generated, 2,000 deals, seed 7",
        "seed 7 without open-deal amounts or close dates",
        "the sample (data/sample)",
    ):
        assert out.count(name) == 2  # its backtest table, and its line among the goals
    assert "used at each month end" in out and "mean_last_3" in out
