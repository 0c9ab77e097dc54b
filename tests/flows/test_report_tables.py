"""A report folder's deal-level tables (issue 27): Parquet files and report.xlsx beside the
report, written by a real run; every headline figure reproduced by its rule from the files
read back, on the sample and on a generated export; formula-safe, masked cells; and
`[report] outputs` choosing what a folder holds."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.generate import GenerateSpec, generate_exports
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from funnel_reports.transforms.deal_tables import TABLES, figure_rules, metric
from tests.helpers import write_csv


def run(input_dir: Path, out: Path, period: str, *extra: str) -> Path:
    assert (
        main(["run", "--input", str(input_dir), "--period", period, "--out", str(out), *extra]) == 0
    )
    return out / period


def read_back(folder: Path) -> tuple[dict, dict[str, pl.DataFrame]]:
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    tables = {name: pl.read_parquet(folder / "tables" / f"{name}.parquet") for name in TABLES}
    return metrics, tables


def assert_every_figure_is_its_rule(folder: Path) -> int:
    """Each rule over the Parquet files gives the figure metrics.json holds (to its six
    decimals); returns how many figures were checked."""
    metrics, tables = read_back(folder)
    checked = 0
    for rule in figure_rules(metrics):
        expected = metric(metrics, rule.figure)
        if expected is None:
            continue
        assert rule.value(tables) == pytest.approx(expected, rel=1e-9, abs=1e-6), rule.text()
        checked += 1
    figures = tables["figures"]
    assert figures.height == checked
    return checked


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    return run(SAMPLE_DIR, out, "2026-09", "--config", str(SAMPLE_CONFIG))


def test_a_sample_report_folder_holds_the_tables_and_the_workbook(sample_folder):
    manifest = json.loads((sample_folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["outputs"] == [
        "metrics.json",
        "report.html",
        "report.pdf",
        *(f"tables/{name}.parquet" for name in TABLES),
        "report.xlsx",
        "manifest.json",
    ]
    sheets = pl.read_excel(sample_folder / "report.xlsx", sheet_id=0)
    assert list(sheets) == list(TABLES)
    _, tables = read_back(sample_folder)
    for name in TABLES:
        assert sheets[name].columns == tables[name].columns
        assert sheets[name].height == tables[name].height
    assert sheets["figures"]["value"].to_list() == pytest.approx(
        tables["figures"]["value"].to_list()
    )
    assert (
        sheets["deals"]["opportunity_id"].to_list() == tables["deals"]["opportunity_id"].to_list()
    )


def test_every_headline_figure_of_the_sample_is_its_rule_over_the_parquet_files(sample_folder):
    assert assert_every_figure_is_its_rule(sample_folder) >= 60


def test_every_headline_figure_of_a_generated_export_is_its_rule_over_the_parquet_files(
    tmp_path,
):
    export = tmp_path / "in"
    generate_exports(export, GenerateSpec(opportunities=1500, seed=27, forecast_categories=True))
    folder = run(export, tmp_path / "out", "2026-08", "--allow-stale")
    assert assert_every_figure_is_its_rule(folder) >= 60
    quarter = run(export, tmp_path / "out", "2026-Q2", "--allow-stale")
    assert assert_every_figure_is_its_rule(quarter) >= 60


def test_cells_are_formula_safe_and_contacts_masked_in_the_workbook(tmp_path):
    """A customer named like a formula is text in the workbook, behind an apostrophe as in
    the quarantine CSVs; the Parquet file keeps the name as exported. A phone number typed
    into a name is masked in both, as in the report."""
    write_csv(
        tmp_path / "in" / "opportunities.csv",
        [
            {
                "opportunity_id": "A",
                "stage": "proposal",
                "created_at": "2024-05-01",
                "amount": 100,
                "customer_name": '=HYPERLINK("http://x.example","y")',
                "owner": "Ann 13812345678",
            },
            {
                "opportunity_id": "B",
                "stage": "won",
                "created_at": "2024-05-02",
                "closed_at": "2024-06-03",
                "amount": 200,
                "customer_name": "@SUM(1)",
            },
        ],
    )
    folder = run(tmp_path / "in", tmp_path / "out", "2024-06", "--allow-stale")
    deals = pl.read_excel(folder / "report.xlsx", sheet_name="deals")
    names = dict(zip(deals["opportunity_id"], deals["customer_name"], strict=True))
    assert names == {"A": '\'=HYPERLINK("http://x.example","y")', "B": "'@SUM(1)"}
    assert dict(zip(deals["opportunity_id"], deals["owner"], strict=True))["A"] == "Ann 138****5678"
    parquet = pl.read_parquet(folder / "tables" / "deals.parquet")
    assert parquet["customer_name"].to_list() == ['=HYPERLINK("http://x.example","y")', "@SUM(1)"]
    assert "13812345678" not in parquet["owner"].to_list()[0]


@pytest.mark.parametrize(
    ("outputs", "files"),
    [
        ('["pdf"]', ["metrics.json", "report.pdf", "manifest.json"]),
        ('["html", "xlsx"]', ["metrics.json", "report.html", "report.xlsx", "manifest.json"]),
        ("[]", ["metrics.json", "manifest.json"]),
    ],
)
def test_report_outputs_choose_what_a_folder_holds(tmp_path, outputs, files):
    config = tmp_path / "funnel.toml"
    config.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8") + f"outputs = {outputs}\n", encoding="utf-8"
    )
    folder = run(SAMPLE_DIR, tmp_path / "out", "2026-09", "--config", str(config))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["outputs"] == files
    assert sorted(p.name for p in folder.iterdir() if p.name != "quarantine") == sorted(files)
    # what is not written is not made either: no PDF rendered for a folder without one
    steps = manifest["timings_seconds"]["steps"]
    assert ("render_pdf" in steps) == ("report.pdf" in files)
    assert ("render_html" in steps) == bool({"report.pdf", "report.html"} & set(files))
    assert ("tables" in steps) == ("report.xlsx" in files)


def test_a_rerun_writes_the_same_workbook_and_tables_byte_for_byte(tmp_path, sample_folder):
    """Analysts compare reruns, and a mail of the workbook is sent once: the same export and
    period make the same files."""
    again = run(SAMPLE_DIR, tmp_path, "2026-09", "--config", str(SAMPLE_CONFIG))
    for name in ["report.xlsx", *(f"tables/{table}.parquet" for table in TABLES)]:
        assert (again / name).read_bytes() == (sample_folder / name).read_bytes(), name
