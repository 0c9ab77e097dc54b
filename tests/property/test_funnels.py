"""Every funnel the README allows runs: hypothesis draws funnel.toml files (2 to 10 stages,
ending at won or with stages after it, stall thresholds on none, some or all stages, any
window, both languages, both grains) and small exports of deals through that funnel, and runs
the real flow of `funnel run` on them: settings read from the file, the folder read and
validated, then derive, compute, render HTML and PDF, write. A report every time, and the
counts reconcile."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.report_flow import funnel_report

pytestmark = pytest.mark.heavy  # each example runs the whole report flow, PDF included

START = datetime(2023, 1, 1, tzinfo=UTC)
PERIODS = {"month": "2024-03", "quarter": "2024-Q1"}


@st.composite
def funnel_toml(draw) -> dict:
    """A funnel.toml's settings: stages with their stall days, the won stage, window, lang."""
    n = draw(st.integers(2, 10))
    won = draw(st.integers(1, n - 1))  # the won stage is never the first
    stall = draw(st.sampled_from(["none", "some", "all"]))
    days = [
        None
        if stall == "none" or i >= won or (stall == "some" and draw(st.booleans()))
        else draw(st.integers(1, 30))
        for i in range(n)
    ]
    return {
        "stages": [f"s{i}" for i in range(n)],
        "won": won,
        "stall_days": days,
        "window_months": draw(st.integers(1, 24)),
        "lang": draw(st.sampled_from(["en", "zh"])),
        "grain": draw(st.sampled_from(list(PERIODS))),
    }


def toml_text(funnel: dict) -> str:
    lines = [
        f"[funnel]\nwindow_months = {funnel['window_months']}\n"
        f'won_stage = "s{funnel["won"]}"\n\n[report]\nlang = "{funnel["lang"]}"\n'
    ]
    for stage, days in zip(funnel["stages"], funnel["stall_days"], strict=True):
        lines.append(
            f'\n[[funnel.stages]]\nid = "{stage}"\nlabel_en = "Stage {stage}"\n'
            f'label_zh = "阶段{stage[1:]}"\n' + (f"stall_days = {days}\n" if days else "")
        )
    return "".join(lines)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def deal(draw, oid: str, stages: list[str], won: int) -> tuple[dict, list[dict]]:
    """A deal's path through the funnel: forward steps (maybe skipping one), a fallback now
    and then, on into post-sale stages once won; then won, lost or still open."""
    t = START + timedelta(hours=draw(st.integers(0, 24 * 450)))
    created, stage, entries = t, 0, [(0, t)]
    for _ in range(draw(st.integers(0, 8))):
        t += timedelta(hours=draw(st.integers(1, 24 * 40)))
        stage = min(max(stage + draw(st.sampled_from([1, 1, 1, 2, -1])), 0), len(stages) - 1)
        if entries[-1][0] >= won and stage < won:
            break  # a won deal does not fall back before won
        entries.append((stage, t))
    reached_won = any(s >= won for s, _ in entries)
    outcome = "won" if reached_won else draw(st.sampled_from(["open", "lost"]))
    closed = None
    if outcome == "won":
        closed = next(at for s, at in entries if s >= won)
    elif outcome == "lost":
        closed = t + timedelta(hours=draw(st.integers(1, 24 * 30)))
    opportunity = {
        "opportunity_id": oid,
        "stage": stages[entries[-1][0]],
        "created_at": stamp(created),
        "status": outcome,
        "closed_at": stamp(closed) if closed else "",
        "amount": draw(st.sampled_from(["", "0", "1500", "250000"])),
        "stall_reason": draw(st.sampled_from(["", "budget", "legal"])),
        "owner": draw(st.sampled_from(["A", "B"])),
        "expected_close_date": (created + timedelta(days=60)).date().isoformat(),
    }
    history = [
        {"opportunity_id": oid, "stage": stages[s], "entered_at": stamp(at)} for s, at in entries
    ]
    return opportunity, history


@st.composite
def export(draw, funnel: dict) -> dict:
    deals = [
        draw(deal(f"D{i}", funnel["stages"], funnel["won"]))
        for i in range(draw(st.integers(1, 15)))
    ]
    with_history = draw(st.booleans())
    touches = [
        {"opportunity_id": o["opportunity_id"], "occurred_at": o["created_at"], "channel": "phone"}
        for o, _ in deals
        if draw(st.booleans())
    ]
    return {
        "opportunities": [o for o, _ in deals],
        "stage_history": [h for _, rows in deals for h in rows] if with_history else None,
        "followups": touches or None,
    }


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@st.composite
def case(draw) -> tuple[dict, dict]:
    funnel = draw(funnel_toml())
    return funnel, draw(export(funnel))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case())
def test_every_funnel_shape_gives_a_report_with_reconciled_counts(prefect_server, drawn):
    funnel, tables = drawn
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "in").mkdir()
        for table, rows in tables.items():
            if rows:
                write_csv(root / "in" / f"{table}.csv", rows)
        (root / "funnel.toml").write_text(toml_text(funnel), encoding="utf-8")
        run_settings = settings_from_toml(root / "funnel.toml")
        assert [s.stall_days for s in run_settings.funnel.stages] == funnel["stall_days"]
        # the real flow of `funnel run`; the exports end long before the period, and
        # freshness is not what this test is about
        manifest = funnel_report(
            input_dir=root / "in",
            period=PERIODS[funnel["grain"]],
            out_dir=root / "out",
            config=root / "funnel.toml",
            allow_stale=True,
        )
        report = Path(manifest["out_dir"])
        assert (report / "report.pdf").read_bytes().startswith(b"%PDF")
        assert "</html>" in (report / "report.html").read_text(encoding="utf-8")
        metrics = json.loads((report / "metrics.json").read_text(encoding="utf-8"))
    n, won = len(funnel["stages"]), funnel["won"]
    assert [s["id"] for s in metrics["stages"]] == funnel["stages"]
    assert [(r["from"], r["to"]) for r in metrics["conversion"]] == [
        (f"s{i}", f"s{i + 1}") for i in range(n - 1)
    ]
    assert [r["stage"] for r in metrics["funnel"]] == funnel["stages"][:won]
    assert metrics["window"]["months"] == funnel["window_months"]
    for table, rows in tables.items():
        quality = metrics["data_quality"][table]
        read = len(rows) if rows else 0
        assert quality["rows_read"] == read
        assert quality["rows_valid"] + quality["rows_quarantined"] == read
    # every deal drawn is a valid one: nothing is quarantined
    assert metrics["data_quality"]["opportunities"]["rows_quarantined"] == 0
    assert sum(r["count"] for r in metrics["funnel"]) == metrics["kpis"]["open_count"]
