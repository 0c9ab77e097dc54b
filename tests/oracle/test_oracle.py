"""An independent implementation of the main figures, in plain Python over the CSV rows.

It shares nothing with transforms/ but the definitions of DESIGN §5; the pipeline's figures
must equal it on generated exports for several periods.
"""

from __future__ import annotations

import csv
import statistics
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from flows.generate import GenerateSpec, generate_exports
from flows.ingest import read_inputs, validate_inputs
from tests.helpers import by_key, step
from transforms.funnel_model import RunSettings
from transforms.periods import parse_period
from transforms.report_metrics import derive_tables, funnel_metrics

TZ = "Asia/Shanghai"
STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "retention"]
OPEN = STAGES[:4]
WON = 4


def ts(text: str) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC) if text else None


def oracle(folder: Path, period_label: str) -> dict:
    period = parse_period(period_label, TZ)
    start, end, w_start = period.start, period.end, period.window_start(12)
    with (folder / "opportunities.csv").open(encoding="utf-8") as f:
        opps = [o for o in csv.DictReader(f) if ts(o["created_at"]) < end]
    with (folder / "stage_history.csv").open(encoding="utf-8") as f:
        history = list(csv.DictReader(f))
    entries: dict[str, list[tuple[datetime, int, str]]] = {}
    for h in history:
        at = ts(h["entered_at"])
        if at < end:
            entries.setdefault(h["opportunity_id"], []).append(
                (at, STAGES.index(h["stage"]), h["amount"])
            )
    deals = []
    for o in opps:
        mine = sorted(entries.get(o["opportunity_id"], []))
        reach = [min((at for at, s, _ in mine if s >= k), default=None) for k in range(6)]
        closed = ts(o["closed_at"])
        if reach[WON] is not None:
            state = "won"
        elif o["status"] == "lost" and closed < end:
            state = "lost"
        else:
            state = "open"
        amounts = [a for _, _, a in mine if a]
        amount = float(amounts[-1]) if amounts else (float(o["amount"]) if o["amount"] else None)
        last_at, last_stage, _ = mine[-1] if mine else (ts(o["created_at"]), 0, None)
        deals.append(
            {
                "id": o["opportunity_id"],
                "state": state,
                "reach": reach,
                "amount": amount,
                "closed": closed,
                "stage": STAGES[last_stage],
                "since": last_at,
                "created": ts(o["created_at"]),
                "reason": (o["stall_reason"] or "").strip(),
                "expected": date.fromisoformat(o["expected_close_date"]),
            }
        )

    def in_p(t):
        return t is not None and start <= t < end

    def in_w(t):
        return t is not None and w_start <= t < end

    result: dict = {"conversion": {}, "p_win": {}}
    for k in range(5):
        entered = sum(in_p(d["reach"][k]) for d in deals)
        entered_next = sum(in_p(d["reach"][k + 1]) for d in deals)
        cohort = [d for d in deals if in_w(d["reach"][k])]
        advanced = sum(d["reach"][k + 1] is not None for d in cohort)
        lost = sum(d["reach"][k + 1] is None and d["state"] == "lost" for d in cohort)
        result["conversion"][STAGES[k]] = {
            "flow_rate": entered_next / entered if entered else None,
            "cohort_size": len(cohort),
            "advanced": advanced,
            "lost": lost,
        }
    resolved = [
        d
        for d in deals
        if (d["state"] == "won" and in_w(d["reach"][WON]))
        or (d["state"] == "lost" and in_w(d["closed"]))
    ]
    won_all = sum(d["state"] == "won" for d in resolved)
    p_bar = won_all / len(resolved)
    for k, stage in enumerate(OPEN):
        won = sum(d["state"] == "won" and d["reach"][k] is not None for d in resolved)
        lost = sum(d["state"] == "lost" and d["reach"][k] is not None for d in resolved)
        result["p_win"][stage] = (won + 5 * p_bar) / (won + lost + 5)
    open_deals = [d for d in deals if d["state"] == "open"]
    won_p = [d for d in deals if d["state"] == "won" and in_p(d["reach"][WON])]
    lost_p = [d for d in deals if d["state"] == "lost" and in_p(d["closed"])]
    priced_won = [d["amount"] for d in won_p if d["amount"] is not None]
    result["kpis"] = {
        "open_count": len(open_deals),
        "open_amount": sum(d["amount"] or 0 for d in open_deals),
        "won_count": len(won_p),
        "won_amount": sum(priced_won),
        "lost_count": len(lost_p),
        "win_rate": len(won_p) / (len(won_p) + len(lost_p)) if won_p or lost_p else None,
        "avg_won_amount": statistics.mean(priced_won) if priced_won else None,
        "median_cycle_days": statistics.median(
            (d["reach"][WON] - d["created"]).total_seconds() / 86400 for d in won_p
        )
        if won_p
        else None,
    }
    result["funnel"] = {s: sum(d["stage"] == s for d in open_deals) for s in OPEN}
    stalled = [d for d in open_deals if (end - d["since"]).total_seconds() / 86400 > 7]
    result["stalls"] = (len(stalled), sum(not d["reason"] for d in stalled))
    result["weighted"] = sum((d["amount"] or 0) * result["p_win"][d["stage"]] for d in open_deals)
    nxt = period.shifted(1)
    result["next_period"] = sum(
        (d["amount"] or 0) * result["p_win"][d["stage"]]
        for d in open_deals
        if nxt.start_date <= d["expected"] < nxt.end_date
    )
    return result


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle")
    generate_exports(folder, GenerateSpec(opportunities=600, seed=11))
    return folder


@pytest.mark.parametrize("period_label", ["2026-09", "2026-03", "2025-12", "2026-Q2"])
def test_pipeline_equals_the_oracle(exports, period_label):
    settings = RunSettings(timezone=TZ, currency="CNY")
    validated = validate_inputs(read_inputs(exports, settings))
    assert all(t.rows_quarantined == 0 for t in validated.values())
    period = parse_period(period_label, TZ)
    derived = derive_tables(
        validated["opportunities"].valid,
        validated["stage_history"].valid,
        period=period,
        settings=settings,
    )
    m = funnel_metrics(
        validated["opportunities"].valid,
        derived,
        validated["followups"].valid,
        period=period,
        settings=settings,
        history_available=True,
    )
    expected = oracle(exports, period_label)

    for key, value in expected["kpis"].items():
        assert m["kpis"][key] == pytest.approx(value), key
    for stage, count in expected["funnel"].items():
        assert by_key(m["funnel"])[stage]["count"] == count
    for a, b in pairwise(STAGES):
        row, want = step(m, a, b), expected["conversion"][a]
        assert row["flow_rate"] == pytest.approx(want["flow_rate"]), (a, b)
        assert (row["cohort_size"], row["advanced"], row["lost"]) == (
            want["cohort_size"],
            want["advanced"],
            want["lost"],
        ), (a, b)
    p_win = by_key(m["forecast"]["stage_probabilities"])
    for stage, value in expected["p_win"].items():
        assert p_win[stage]["p_win"] == pytest.approx(value), stage
    assert (m["stalls"]["stalled_count"], m["stalls"]["missing_reason_count"]) == expected["stalls"]
    assert m["forecast"]["weighted_pipeline"] == pytest.approx(expected["weighted"])
    assert m["forecast"]["next_period"] == pytest.approx(expected["next_period"])
    assert m["kpis"]["won_count"] > 0 and expected["stalls"][0] > 0  # the periods are not empty


def test_backtest_rows_are_the_forecasts_each_earlier_run_made(exports):
    """Each backtest row equals the next-period forecast of a run as of that earlier period's
    end, and the won amount a run for the following period reports; MAPE and bias follow."""
    settings = RunSettings(timezone=TZ, currency="CNY")
    validated = validate_inputs(read_inputs(exports, settings))
    opps, history = validated["opportunities"].valid, validated["stage_history"].valid

    def run(label: str) -> dict:
        period = parse_period(label, TZ)
        derived = derive_tables(opps, history, period=period, settings=settings)
        return funnel_metrics(
            opps,
            derived,
            validated["followups"].valid,
            period=period,
            settings=settings,
            history_available=True,
        )

    card = run("2026-09")["forecast"]["backtest"]
    assert [r["period"] for r in card["periods"]] == [
        "2026-04",
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
    ]
    for row in card["periods"]:
        earlier = parse_period(row["period"], TZ).shifted(-1)
        assert row["forecast_at"] == earlier.end_date.isoformat()
        assert row["forecast"] == pytest.approx(run(earlier.label)["forecast"]["next_period"])
        assert row["actual"] == pytest.approx(run(row["period"])["kpis"]["won_amount"])
    rows = card["periods"]
    assert card["mape"] == pytest.approx(
        sum(abs(r["forecast"] - r["actual"]) / r["actual"] for r in rows) / len(rows)
    )
    assert card["bias"] == pytest.approx(
        (sum(r["forecast"] for r in rows) - sum(r["actual"] for r in rows))
        / sum(r["actual"] for r in rows)
    )
    assert 0 <= card["brier"] <= 1 and card["scored_deals"] > 0
