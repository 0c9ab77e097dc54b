"""The real CRM exports in tests/data/real-exports, end to end, against the figures of their
README.

Figures (tests/data/real-exports/README.md): win rate = Closed Won / (Closed Won + Closed Lost);
open pipeline = sum(Amount) over deals neither won nor lost; weighted by Probability / 100.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.staging.checks import check_inputs

DATASETS = Path(__file__).resolve().parents[1] / "data" / "real-exports"
FIGURES = {
    # folder: (won, lost, won amount, open deals, open deals with an amount, open pipeline,
    #          weighted by the CRM's probability)
    "salesforce-sample-org-dbt-duckdb": (18, 0, 3_645_000, 13, 13, 2_115_000, 1_094_500),
    "salesforce-sample-org-powerbi": (12, 8, 2_815_000, 16, 13, 2_115_000, 1_094_500),
}


@pytest.mark.parametrize("folder", sorted(FIGURES))
def test_real_salesforce_export_reproduces_its_figures(folder, tmp_path, capsys):
    won, lost, won_amount, open_count, priced, pipeline, weighted = FIGURES[folder]
    # a quarter after the export, so every deal's outcome is known (a period the export does
    # not reach: --allow-stale)
    assert (
        main(
            [
                "run",
                "--input",
                str(DATASETS / folder),
                "--period",
                "2026-Q4",
                "--out",
                str(tmp_path),
                "--allow-stale",
            ]
        )
        == 0
    )
    out = tmp_path / "2026-Q4"
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["source"]["preset"] == "salesforce"
    totals = m["totals"]
    assert (totals["won_count"], totals["lost_count"]) == (won, lost)
    assert totals["win_rate"] == pytest.approx(won / (won + lost))
    assert totals["won_amount"] == won_amount
    assert (totals["open_count"], totals["open_amount"]) == (open_count, pipeline)
    assert totals["crm_weighted_open_amount"] == pytest.approx(weighted)
    assert open_count - m["forecast"]["unpriced_count"] == priced
    # nothing lost: every row of every file is used or quarantined, and here all are used
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["inputs"]:
        source_rows = pl.read_csv(DATASETS / folder / entry["name"], infer_schema=False).height
        assert entry["rows"] == source_rows
        assert entry["rows_valid"] == source_rows and entry["rows_quarantined"] == 0
    assert {e["table"] for e in manifest["inputs"]} == {"opportunities", "stage_history"}
    assert (out / "report.pdf").stat().st_size > 0


def test_powerbi_history_has_real_stage_changes_and_reversed_wins(tmp_path):
    folder = DATASETS / "salesforce-sample-org-powerbi"
    assert main(["run", "--input", str(folder), "--period", "2026-03", "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "2026-03" / "metrics.json").read_text(encoding="utf-8"))
    # history is present, so dwell figures are computed (not null)
    assert m["history_available"] is True
    assert any(row["completed_visits"] for row in m["dwell"])
    # seven deals moved from Closed Won to Closed Lost: lost as of the end of March 2026
    assert m["totals"]["lost_count"] == 8


@pytest.mark.parametrize("folder", sorted(FIGURES))
def test_real_salesforce_export_takes_customer_names_from_its_account_file(folder):
    """Opportunity.csv holds AccountId only; the names and industries are in Account.csv."""
    checked = check_inputs(read_inputs(DATASETS / folder, settings_from_toml(None)))
    accounts = pl.read_csv(
        next((DATASETS / folder).glob("[Aa]ccount.csv")), infer_schema=False
    ).select("Id", "Name")
    opportunities = pl.read_csv(
        next((DATASETS / folder).glob("[Oo]pportunity.csv")), infer_schema=False
    ).select("Id", "AccountId")
    expected = dict(
        opportunities.join(accounts, left_on="AccountId", right_on="Id")
        .select("Id", "Name")
        .iter_rows()
    )
    names = dict(
        checked.tables["opportunities"].select("opportunity_id", "customer_name").iter_rows()
    )
    assert expected and names == {oid: expected.get(oid) for oid in names}
    (lookup,) = checked.source["lookups"]
    assert (lookup["matched"], lookup["unmatched"]) == (len(expected), 0)
    assert "opportunities.customer_name" not in checked.not_recorded
