"""The CLI's commands as flows (flows/commands.py): `generate`, called as its function (no
Prefect run). `funnel_demo` makes two whole reports: tests/flows/test_report_flow.py runs it."""

from __future__ import annotations

import polars as pl
import pytest

from funnel_reports.flows.commands import generate_flow

TABLES = ("opportunities", "stage_history", "followups")


@pytest.fixture(autouse=True)
def _prefect():
    """The flows' functions called as functions: no Prefect test server is started."""
    yield


def rows_in(folder, table: str) -> int:
    return pl.read_csv(folder / f"{table}.csv", infer_schema=False).height


def test_generate_writes_the_three_exports_and_returns_their_row_counts(tmp_path):
    counts = generate_flow.fn(str(tmp_path / "gen"), 20, seed=3)
    assert sorted(p.name for p in (tmp_path / "gen").iterdir()) == [
        "followups.csv",
        "opportunities.csv",
        "stage_history.csv",
    ]
    assert counts["opportunities"] == 20
    assert counts == {table: rows_in(tmp_path / "gen", table) for table in TABLES}


def test_generate_with_the_same_seed_writes_the_same_bytes(tmp_path):
    generate_flow.fn(str(tmp_path / "a"), 20, seed=3)
    generate_flow.fn(str(tmp_path / "b"), 20, seed=3)
    generate_flow.fn(str(tmp_path / "c"), 20, seed=4)
    same = [(tmp_path / "a" / f"{t}.csv").read_bytes() for t in TABLES]
    assert same == [(tmp_path / "b" / f"{t}.csv").read_bytes() for t in TABLES]
    other = (tmp_path / "c" / "opportunities.csv").read_bytes()
    assert other != same[0]


def test_generate_without_follow_ups_writes_their_header_only(tmp_path):
    counts = generate_flow.fn(str(tmp_path / "gen"), 20, followups_per_opportunity=0.0)
    assert counts["followups"] == 0
    [header] = (tmp_path / "gen" / "followups.csv").read_text(encoding="utf-8").splitlines()
    assert {"opportunity_id", "occurred_at", "channel"} <= set(header.split(","))
