"""An independent implementation of the figures, in plain Python over the CSV rows.

It shares nothing with transforms/ but the definitions of docs/metrics.md; the pipeline's figures
must equal it on generated exports for several periods.
"""

from __future__ import annotations

import csv
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from funnel_reports.flows.generate import GenerateSpec, generate_exports
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.forecast.backtest import MIN_ORIGINS_TO_CHOOSE
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.metrics_document import period_metrics
from funnel_reports.transforms.periods import parse_period
from funnel_reports.transforms.staging.checks import validate_inputs
from tests.helpers import by_key, step

TZ = "Asia/Shanghai"
DIMENSIONS = ("owner", "source", "industry", "customer_size", "region")
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
                (at, STAGES.index(h["stage"]), h["amount"], h["expected_close_date"])
            )
    deals = []
    for o in opps:
        mine = sorted(entries.get(o["opportunity_id"], []), key=lambda e: e[:2])
        # a row that repeats the stage the deal is in restates it: not a new entry
        changes = [e[:2] for i, e in enumerate(mine) if i == 0 or e[1] != mine[i - 1][1]]
        reach = [min((at for at, s, *_ in mine if s >= k), default=None) for k in range(6)]
        closed = ts(o["closed_at"])
        if reach[WON] is not None:
            state = "won"
        elif o["status"] == "lost" and closed < end:
            state = "lost"
        else:
            state = "open"
        amounts = [a for _, _, a, _ in mine if a]
        # the expected close date as known at the end: the latest the history records
        dates = [e for *_, e in mine if e] or [o["expected_close_date"]]
        amount = float(amounts[-1]) if amounts else (float(o["amount"]) if o["amount"] else None)
        last_at, last_stage = changes[-1] if changes else (ts(o["created_at"]), 0)
        deals.append(
            {
                **{d: (o[d] or "").strip() or "—" for d in DIMENSIONS},
                "changes": changes,
                "id": o["opportunity_id"],
                "state": state,
                "reach": reach,
                "amount": amount,
                "closed": closed,
                "stage": STAGES[last_stage],
                "since": last_at,
                "created": ts(o["created_at"]),
                "reason": (o["stall_reason"] or "").strip(),
                "expected": date.fromisoformat(dates[-1]),
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
    result["kpis"] = headline(deals, start, end)
    window = headline(deals, w_start, end)
    parts = (window["win_rate"], window["avg_won_amount"], window["median_cycle_days"])
    result["kpis"]["pipeline_velocity"] = (
        len(open_deals) * parts[0] * parts[1] / parts[2] if None not in parts else None
    )
    result["segments"] = {
        dim: {
            value: headline([d for d in deals if d[dim] == value], start, end)
            for value in {d[dim] for d in deals}
        }
        for dim in DIMENSIONS
    }
    visits = [v for d in deals for v in stage_visits(d, end)]
    result["dwell"] = dwell(visits, w_start)
    result["bottlenecks"] = bottlenecks(visits, open_deals, result["p_win"], start, w_start)
    result["followups"] = followup_figures(folder, deals, period, w_start)
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
    result["components"] = next_period_components(deals, period, w_start)
    result["deals"] = deals
    return result


def month_ends(first: date, last_end: date) -> list[datetime]:
    """Local month starts after `first`'s month up to `last_end`, as instants."""
    marks, d = [], first
    while d < last_end:
        d = date(d.year + d.month // 12, d.month % 12 + 1, 1)
        marks.append(datetime.fromisoformat(d.isoformat()).replace(tzinfo=ZoneInfo(TZ)))
    return marks


def landmark(d: dict, t: datetime) -> tuple[str, int] | None:
    """The deal's stage and age bin at t when it is open then, else None."""
    if d["created"] >= t or (d["reach"][WON] is not None and d["reach"][WON] < t):
        return None
    if d["closed"] is not None and d["state"] == "lost" and d["closed"] < t:
        return None
    since, stage = max(((at, s) for at, s in d["changes"] if at < t), default=(None, None))
    if since is None or stage >= WON:
        return None
    age = (t - since).total_seconds() / 86400
    return OPEN[stage], sum(age >= edge for edge in (7, 14, 30, 60))


def next_period_components(deals: list[dict], period, w_start: datetime) -> dict:
    """The landmark method's two parts, from the definitions in README § Forecast."""
    first = min(d["created"] for d in deals).astimezone(ZoneInfo(TZ)).date().replace(day=1)
    end, months = period.end, period.months
    marks = month_ends(first, period.end_date)
    rows = []  # (stage, bin, won within the horizon)
    for i, t in enumerate(marks):
        if i + months >= len(marks) or t < w_start:
            continue
        horizon_end = marks[i + months]
        for d in deals:
            cell = landmark(d, t)
            if cell is not None:
                won = d["reach"][WON] is not None and t <= d["reach"][WON] < horizon_end
                rows.append((*cell, won))
    p0 = sum(r[2] for r in rows) / len(rows)

    def shrunk(selected: list, parent: float) -> float:
        return (sum(r[2] for r in selected) + 5 * parent) / (len(selected) + 5)

    won_in_w = [d for d in deals if d["state"] == "won" and d["reach"][WON] >= w_start]
    priced_won = [d for d in won_in_w if d["amount"] is not None]
    overall = statistics.fmean(d["amount"] for d in priced_won)

    def expected_amount(d: dict) -> float:
        """The mean won amount of the deals of its product, shrunk toward all's by 5 deals,
        then of its product and size, shrunk toward the product's."""
        estimate = overall
        alike = priced_won
        for key in ("product", "customer_size"):
            alike = [x for x in alike if x.get(key) == d.get(key)]
            if alike:
                estimate = (sum(x["amount"] for x in alike) + 5 * estimate) / (len(alike) + 5)
        return estimate

    open_part, chances = 0.0, []
    for d in deals:
        cell = landmark(d, end)
        if cell is None:
            continue
        stage_rows = [r for r in rows if r[0] == cell[0]]
        p = p0
        if stage_rows:
            p = shrunk(stage_rows, p0)
            cell_rows = [r for r in stage_rows if r[1] == cell[1]]
            if cell_rows:
                p = shrunk(cell_rows, p)
        amount = d["amount"]
        if amount is None:
            amount = expected_amount(d)
        open_part += p * amount
        chances.append((p, amount))
    totals, new_amounts = [], []
    for back in range(12 // months):
        p = period.shifted(-back)
        if p.start_date < first:
            break
        amounts = [
            d["amount"] or 0
            for d in deals
            if p.start <= d["created"]
            and d["reach"][WON] is not None
            and p.start <= d["reach"][WON] < p.end
        ]
        totals.append(sum(amounts))
        new_amounts += amounts
    return {
        "open_deals": open_part,
        "new_deals": sum(totals) / len(totals),
        "chances": chances,
        "new_count": len(new_amounts) / len(totals),
        "new_amounts": new_amounts,
    }


def in_interval(t: datetime | None, lo: datetime, hi: datetime) -> bool:
    return t is not None and lo <= t < hi


def headline(deals: list[dict], lo: datetime, hi: datetime) -> dict:
    """Open deals at the end; deals won and lost in [lo, hi)."""
    open_deals = [d for d in deals if d["state"] == "open"]
    won = [d for d in deals if d["state"] == "won" and in_interval(d["reach"][WON], lo, hi)]
    lost = [d for d in deals if d["state"] == "lost" and in_interval(d["closed"], lo, hi)]
    priced_won = [d["amount"] for d in won if d["amount"] is not None]
    return {
        "open_count": len(open_deals),
        "open_amount": sum(d["amount"] or 0 for d in open_deals),
        "won_count": len(won),
        "won_amount": sum(priced_won),
        "lost_count": len(lost),
        "win_rate": len(won) / (len(won) + len(lost)) if won or lost else None,
        "avg_won_amount": statistics.mean(priced_won) if priced_won else None,
        "median_cycle_days": statistics.median(days(d["created"], d["reach"][WON]) for d in won)
        if won
        else None,
    }


def days(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400


def stage_visits(deal: dict, end: datetime) -> list[dict]:
    """Each stay in a stage: it ends at the next stage change, or when the deal was lost."""
    visits = []
    changes = deal["changes"]
    for i, (at, stage) in enumerate(changes):
        if i + 1 < len(changes):
            ended, nxt = changes[i + 1][0], changes[i + 1][1]
            outcome = "forward" if nxt > stage else "back"
        elif deal["state"] == "lost":
            ended, outcome = max(deal["closed"], at), "lost"
        else:
            ended, outcome = None, "open"
        visits.append(
            {
                "stage": STAGES[stage],
                "ended": ended,
                "outcome": outcome,
                "days": days(at, ended or end),
            }
        )
    return visits


def linear_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def kaplan_meier_median(visits: list[dict]) -> float | None:
    """Product-limit estimate; open visits leave the risk set without an event."""
    survival, at_risk = 1.0, len(visits)
    lengths = sorted((v["days"], v["ended"] is not None) for v in visits)
    i = 0
    while i < len(lengths):
        t, events, leaving = lengths[i][0], 0, 0
        while i < len(lengths) and lengths[i][0] == t:
            events += lengths[i][1]
            leaving += 1
            i += 1
        if events:
            survival *= 1 - events / at_risk
            if survival <= 0.5:
                return t
        at_risk -= leaving
    return None


def dwell(visits: list[dict], w_start: datetime) -> dict:
    figures = {}
    for stage in OPEN:
        mine = [
            v
            for v in visits
            if v["stage"] == stage and (v["ended"] is None or v["ended"] >= w_start)
        ]
        done = [v["days"] for v in mine if v["ended"] is not None]
        still = [v["days"] for v in mine if v["ended"] is None]
        figures[stage] = {
            "completed_visits": len(done),
            "mean_days": statistics.mean(done) if done else None,
            "median_days": statistics.median(done) if done else None,
            "p25_days": linear_quantile(done, 0.25) if done else None,
            "p75_days": linear_quantile(done, 0.75) if done else None,
            "p90_days": linear_quantile(done, 0.9) if done else None,
            "open_visits": len(still),
            "open_median_age_days": statistics.median(still) if still else None,
            "km_median_days": kaplan_meier_median(mine),
        }
    return figures


def bottlenecks(
    visits: list[dict], open_deals: list[dict], p_win: dict, start: datetime, w_start: datetime
) -> dict:
    """Per open stage: forward / (forward + lost) of the visits that ended in the period
    against those that ended earlier in W, the median lengths, and revenue at risk."""
    figures = {}
    for i, stage in enumerate(OPEN):
        ended = [v for v in visits if v["stage"] == stage and v["ended"] and v["ended"] >= w_start]
        period = [v for v in ended if v["ended"] >= start]
        base = [v for v in ended if v["ended"] < start]

        def rate(vs):
            left = [v for v in vs if v["outcome"] in ("forward", "lost")]
            return (sum(v["outcome"] == "forward" for v in left) / len(left)) if left else None

        conversion, baseline = rate(period), rate(base)
        next_p = 1.0 if i + 1 == len(OPEN) else p_win[OPEN[i + 1]]
        open_amount = sum(d["amount"] or 0 for d in open_deals if d["stage"] == stage)
        figures[stage] = {
            "conversion": conversion,
            "baseline_conversion": baseline,
            "median_days": statistics.median(v["days"] for v in period) if period else None,
            "baseline_median_days": statistics.median(v["days"] for v in base) if base else None,
            "revenue_at_risk": open_amount * max(baseline - conversion, 0) * next_p
            if conversion is not None and baseline is not None
            else None,
        }
    return figures


def followup_figures(folder: Path, deals: list[dict], period, w_start: datetime) -> dict:
    start, end = period.start, period.end
    with (folder / "followups.csv").open(encoding="utf-8") as f:
        known = [r for r in csv.DictReader(f) if ts(r["occurred_at"]) < end]
    state = {d["id"]: d["state"] for d in deals}
    in_period = [r for r in known if ts(r["occurred_at"]) >= start]
    open_deals = [d for d in deals if d["state"] == "open"]
    latest: dict[str, dict] = {}
    for r in known:
        if r["opportunity_id"] not in latest or ts(r["occurred_at"]) > ts(
            latest[r["opportunity_id"]]["occurred_at"]
        ):
            latest[r["opportunity_id"]] = r
    silent = [
        d
        for d in open_deals
        if days(ts(latest[d["id"]]["occurred_at"]) if d["id"] in latest else d["created"], end) > 14
    ]
    overdue = [
        d
        for d in open_deals
        if d["id"] in latest
        and latest[d["id"]]["next_action_due"]
        and date.fromisoformat(latest[d["id"]]["next_action_due"]) < period.end_date
    ]
    channels: dict[str, int] = {}
    for r in in_period:
        channels[r["channel"]] = channels.get(r["channel"], 0) + 1
    touches: dict[str, int] = {}
    for r in known:
        touches[r["opportunity_id"]] = touches.get(r["opportunity_id"], 0) + 1
    resolved_in_w = [
        d
        for d in deals
        if (d["state"] == "won" and d["reach"][WON] >= w_start)
        or (d["state"] == "lost" and d["closed"] >= w_start)
    ]
    return {
        "touches_in_period": len(in_period),
        "touches_per_open_deal": sum(state.get(r["opportunity_id"]) == "open" for r in in_period)
        / len(open_deals),
        "channels": {c: (n, n / len(in_period)) for c, n in channels.items()},
        "silent_open_deals": len(silent),
        "silent_open_amount": sum(d["amount"] or 0 for d in silent),
        "overdue_next_actions": len(overdue),
        "touches_per_deal": {
            outcome: statistics.mean(
                touches.get(d["id"], 0) for d in resolved_in_w if d["state"] == outcome
            )
            for outcome in ("won", "lost")
        },
    }


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oracle")
    # with update rows that restate a deal's stage, as CRM change logs have them
    generate_exports(folder, GenerateSpec(opportunities=2000, seed=11, updates_per_opportunity=1.5))
    return folder


@pytest.fixture(scope="module")
def pushed_exports(tmp_path_factory):
    """The same deals with their reps moving expected close dates on (`close_date_pushes`)."""
    folder = tmp_path_factory.mktemp("oracle-pushed")
    spec = GenerateSpec(
        opportunities=2000, seed=11, updates_per_opportunity=1.5, close_date_pushes=True
    )
    generate_exports(folder, spec)
    return folder


def run_pipeline(
    exports: Path, label: str, target: float | None = None, next_target: float | None = None
) -> dict:
    settings = RunSettings(timezone=TZ, currency="CNY")
    validated = validate_inputs(read_inputs(exports, settings))
    assert all(t.rows_quarantined == 0 for t in validated.values())
    opps, history = validated["opportunities"].valid, validated["stage_history"].valid
    period = parse_period(label, TZ)
    return period_metrics(
        opps,
        history,
        validated["followups"].valid,
        period=period,
        settings=settings.metrics,
        history_available=True,
        target=target,
        next_target=next_target,
    )


@pytest.mark.parametrize(
    ("folder", "period_label"),
    [
        ("exports", "2026-09"),
        ("exports", "2026-03"),
        ("exports", "2025-12"),
        ("exports", "2026-Q2"),
        ("pushed_exports", "2026-06"),  # expected close dates as known at the period end
    ],
)
def test_pipeline_equals_the_oracle(request, folder, period_label):
    exports = request.getfixturevalue(folder)
    m = run_pipeline(exports, period_label)
    expected = oracle(exports, period_label)

    for key, value in expected["kpis"].items():
        assert same(m["kpis"][key], value), key
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
    by_method = m["forecast"]["next_period_by_method"]
    assert by_method["stage_weighted"] == pytest.approx(expected["next_period"])
    for part in ("open_deals", "new_deals"):  # the landmark method's two parts
        value = expected["components"][part]
        assert by_method[part] == pytest.approx(value, rel=1e-9), part
    assert by_method["landmark"] == pytest.approx(value + expected["components"]["open_deals"])
    method = m["forecast"]["method"]
    assert m["forecast"]["next_period"] == pytest.approx(by_method[method])
    # the two parts are the model's; a learned method changes the model's figure
    model = "landmark_close_date" if method.startswith("landmark_close_date") else "landmark"
    components = m["forecast"]["next_period_components"]
    assert sum(components.values()) == pytest.approx(by_method[model])
    learned = m["forecast"]["learned"]
    if learned is not None:
        assert by_method[method] == pytest.approx(
            learned["scale"] * by_method[model] + learned["shift"]
        )
    assert m["kpis"]["won_count"] > 0 and expected["stalls"][0] > 0  # the periods are not empty

    for stage, want in expected["dwell"].items():
        row = by_key(m["dwell"])[stage]
        assert all(same(row[k], v) for k, v in want.items()), (stage, row, want)
    for stage, want in expected["bottlenecks"].items():
        row = by_key(m["bottlenecks"])[stage]
        assert all(same(row[k], v) for k, v in want.items()), (stage, row, want)
    for dimension, values in expected["segments"].items():
        rows = by_key(m["segments"][dimension], "value")
        assert set(rows) == set(values), dimension
        for value, want in values.items():
            assert all(same(rows[value][k], v) for k, v in want.items()), (dimension, value)
    f, want = m["followups"], expected["followups"]
    for key in ("touches_in_period", "silent_open_deals", "overdue_next_actions"):
        assert f[key] == want[key], key
    assert same(f["touches_per_open_deal"], want["touches_per_open_deal"])
    assert same(f["silent_open_amount"], want["silent_open_amount"])
    assert {r["channel"]: (r["touches"], r["share"]) for r in f["channel_mix"]} == {
        c: (n, pytest.approx(share)) for c, (n, share) in want["channels"].items()
    }
    assert {r["state"]: r["touches_per_deal"] for r in f["won_vs_lost"]} == pytest.approx(
        want["touches_per_deal"]
    )
    assert f["silent_open_deals"] > 0 and f["overdue_next_actions"] > 0


def same(actual: object, expected: object) -> bool:
    """Equal, floats to a relative 1e-9; None only equals None."""
    if expected is None or actual is None:
        return actual is expected
    return actual == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_backtest_rows_are_the_forecasts_each_earlier_run_made(exports):
    """Each backtest row holds every candidate's forecast as a run as of that earlier period's
    end made it, and the won amount a run for the following period reports; the learned
    candidates follow from the rows before; the row's method is the blend unless another did
    clearly better over the rows before it; the scores follow."""
    card = run_pipeline(exports, "2026-09")["forecast"]["backtest"]
    rows = card["periods"]
    # the generated deals start in 2025-04: the first origin with six months behind it is
    # 2025-09's end, forecasting 2025-10
    assert [r["period"] for r in rows][:2] == ["2025-10", "2025-11"]
    assert rows[-1]["period"] == "2026-09" and len(rows) == 12
    for row in rows[-4:]:
        earlier = parse_period(row["period"], TZ).shifted(-1)
        assert row["forecast_at"] == earlier.end_date.isoformat()
        then, following = run_pipeline(exports, earlier.label), run_pipeline(exports, row["period"])
        assert row["forecasts"] == pytest.approx(then["forecast"]["next_period_by_method"])
        assert row["actual"] == pytest.approx(following["kpis"]["won_amount"])
    parts = ("open_deals", "new_deals")
    for i, row in enumerate(rows):
        before, forecasts = rows[:i], row["forecasts"]
        # the model corrected by its record: its ratio of actual to forecast over the rows
        # before, shrunk toward 1 by one origin; the blend: half that, half the mean of three
        landmark = [(r["forecasts"]["landmark"], r["actual"]) for r in before]
        ratio = 1.0
        if landmark:
            raw = sum(a for _, a in landmark) / sum(f for f, _ in landmark)
            ratio = 1 + (raw - 1) * len(landmark) / (len(landmark) + 1)
        assert forecasts["landmark_corrected"] == pytest.approx(forecasts["landmark"] * ratio)
        blend = (forecasts["landmark"] * ratio + forecasts["mean_last_3"]) / 2
        assert forecasts["blend"] == pytest.approx(blend)

        def cost(method: str, before=before) -> float:
            errors = [r["forecasts"][method] - r["actual"] for r in before]
            won = sum(r["actual"] for r in before)
            return (sum(abs(e) for e in errors) + abs(sum(errors))) / won

        # the blend unless a method's WAPE + |bias| over the i rows before is lower by
        # 0.6 / √i of it; of the baselines only the mean of the last three may be picked
        expected = "blend"
        if i >= MIN_ORIGINS_TO_CHOOSE:
            unpicked = (*parts, "last_period", "stage_weighted")
            scored = [m for m in forecasts if m not in unpicked]
            best = min(scored, key=cost)
            expected = best if cost(best) <= (1 - 0.6 / math.sqrt(i)) * cost("blend") else "blend"
        assert row["method"] == expected, i
        assert row["forecast"] == row["forecasts"][row["method"]]
    assert card["wape"] == pytest.approx(
        sum(abs(r["forecast"] - r["actual"]) for r in rows) / sum(r["actual"] for r in rows)
    )
    assert card["bias"] == pytest.approx(
        sum(r["forecast"] for r in rows) / sum(r["actual"] for r in rows) - 1
    )
    assert card["coverage"] == pytest.approx(
        sum(r["p10"] <= r["actual"] <= r["p90"] for r in rows) / len(rows)
    )
    assert 0 <= card["brier"] <= 1 and card["scored_deals"] > 0
    reliability = card["reliability"]
    assert sum(b["deals"] for b in reliability) == card["scored_deals"]
    assert all(b["from"] <= b["mean_p"] < b["to"] or b["mean_p"] == 1 for b in reliability)


UNIT = 500  # generated amounts are whole thousands


def exact_totals(components: dict) -> tuple[np.ndarray, np.ndarray]:
    """The exact distribution of the amount won in the next period under the landmark method:
    each open deal won independently with its chance, plus a Poisson number of new deals
    (mean `new_count`) each bringing one of `new_amounts` at random. Support in steps of
    UNIT, and probabilities."""
    probabilities = np.ones(1)
    # an open deal without an amount is priced at a mean, off the grid: drawn apart below
    off_grid = [(p, a) for p, a in components["chances"] if round(a / UNIT) * UNIT != a]
    for p, amount in components["chances"]:
        if (p, amount) in off_grid:
            continue
        steps = round(amount / UNIT)
        grown = np.zeros(probabilities.size + steps)
        grown[: probabilities.size] += probabilities * (1 - p)
        grown[steps:] += probabilities * p
        probabilities = grown
    one = np.zeros(round(max(components["new_amounts"]) / UNIT) + 1)
    for amount in components["new_amounts"]:
        one[round(amount / UNIT)] += 1 / len(components["new_amounts"])
    lam = components["new_count"]
    new, power = np.zeros(1), np.ones(1)
    for k in range(int(lam + 12 * math.sqrt(lam) + 12)):  # Poisson tail beyond is negligible
        weight = math.exp(-lam) * lam**k / math.factorial(k)
        if new.size < power.size:
            new = np.pad(new, (0, power.size - new.size))
        new[: power.size] += weight * power
        power = np.convolve(power, one)
    total = np.convolve(probabilities, new)
    values = np.arange(total.size) * float(UNIT)
    for p, amount in off_grid:  # the mixture of the grid's distribution without it and with it
        values = np.concatenate([values, values + amount])
        total = np.concatenate([total * (1 - p), total * p])
    order = np.argsort(values, kind="stable")
    return values[order], total[order]


def test_monte_carlo_and_target_decomposition_match_exact_figures(exports):
    """The Monte Carlo quantiles lie where 5,000 draws from the exact distribution put them
    (within four standard errors of the quantile's level); the target decomposition follows
    its definitions over the oracle's deals."""
    label = "2026-09"
    expected = oracle(exports, label)
    values, probabilities = exact_totals(expected["components"])
    cdf = np.cumsum(probabilities)
    assert cdf[-1] == pytest.approx(1.0, abs=1e-9)

    def quantile(q: float) -> float:
        return float(values[min(np.searchsorted(cdf, q - 1e-12), values.size - 1)])

    probe = run_pipeline(exports, label)["forecast"]["monte_carlo"]
    assert probe["model"] == "landmark" and probe["scale"] > 0
    # a next-period target the model reaches 40 % of the time, on the method's scale
    target = round(probe["scale"] * quantile(0.6) + probe["shift"], -3)
    m = run_pipeline(exports, label, next_target=target)
    mc = m["forecast"]["monte_carlo"]
    assert mc["target"] == target
    assert mc["draws"] == 5000
    # the range is the simulation's, widened `spread` times around its P50 (the backtest's
    # calibration), then mapped to the method's figure (scale × it + shift): undo both to
    # compare the draws with the exact distribution of the model
    spread = mc["spread"]
    assert spread == m["forecast"]["backtest"]["spread_factor"] >= 1

    def model_scale(value: float) -> float:
        return (value - mc["shift"]) / mc["scale"]

    middle = model_scale(mc["p50"])

    def drawn(value: float) -> float:
        return middle + (model_scale(value) - middle) / spread

    for q, key in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90")):
        slack = 4 * math.sqrt(q * (1 - q) / 5000)
        assert quantile(q - slack) <= drawn(mc[key]) <= quantile(q + slack), key
    hit = float(probabilities[values >= drawn(target)].sum())
    assert abs(mc["p_hit_target"] - hit) <= 4 * math.sqrt(hit * (1 - hit) / 5000) + 1e-12
    assert 0.01 < hit < 0.99  # the target is neither sure nor hopeless: the check has teeth

    # a target above what was won, so that some remains to be won
    target = round(expected["kpis"]["won_amount"] + expected["weighted"] * 1.2, -3)
    m = run_pipeline(exports, label, target=target)
    period = parse_period(label, TZ)
    w_start = period.window_start(12)
    window = headline(expected["deals"], w_start, period.end)
    won_in_w = [d for d in expected["deals"] if d["state"] == "won" and d["reach"][WON] >= w_start]
    t = m["targets"]
    won_needed = target / window["avg_won_amount"]
    assert t["won_needed"] == pytest.approx(won_needed)
    remaining = max(target - expected["kpis"]["won_amount"], 0)
    assert t["remaining"] == pytest.approx(remaining)
    assert t["gap"] == pytest.approx(remaining - expected["weighted"])
    assert t["coverage"] == pytest.approx(expected["weighted"] / remaining)
    for k, stage in enumerate(OPEN):
        row = by_key(t["stages"])[stage]
        to_won = [
            days(d["reach"][k], d["reach"][WON]) for d in won_in_w if d["reach"][k] is not None
        ]
        median = statistics.median(to_won)
        assert row["entries_needed"] == pytest.approx(won_needed / expected["p_win"][stage])
        assert row["median_days_to_won"] == pytest.approx(median)
        assert row["latest_entry_date"] == (period.end_date - timedelta(days=median)).isoformat()


def states_at(folder: Path, t: datetime) -> dict[str, dict]:
    """Every deal created before `t` as known at `t`, from the CSV rows: its state (won once
    it entered the won stage, lost once closed lost, else open), and its amount and expected
    close date as the latest history row before `t` records them (else the deal's own)."""
    with (folder / "opportunities.csv").open(encoding="utf-8") as f:
        opps = [o for o in csv.DictReader(f) if ts(o["created_at"]) < t]
    rows: dict[str, list[dict]] = {}
    with (folder / "stage_history.csv").open(encoding="utf-8") as f:
        for h in csv.DictReader(f):
            if ts(h["entered_at"]) < t:
                rows.setdefault(h["opportunity_id"], []).append(h)
    deals = {}
    for o in opps:
        mine = sorted(
            rows.get(o["opportunity_id"], []),
            key=lambda h: (ts(h["entered_at"]), STAGES.index(h["stage"])),
        )
        amounts = [h["amount"] for h in mine if h["amount"]] or [o["amount"]]
        dates = [h["expected_close_date"] for h in mine if h["expected_close_date"]] or [
            o["expected_close_date"]
        ]
        closed = ts(o["closed_at"])
        if any(STAGES.index(h["stage"]) >= WON for h in mine):
            state = "won"
        elif o["status"] == "lost" and closed < t:
            state = "lost"
        else:
            state = "open"
        categories = [h.get("forecast_category") for h in mine if h.get("forecast_category")]
        deals[o["opportunity_id"]] = {
            "state": state,
            "created": ts(o["created_at"]),
            "amount": float(amounts[-1]) if amounts[-1] else 0.0,
            "expected": date.fromisoformat(dates[-1]) if dates[-1] else None,
            "history_category": categories[-1] if categories else None,
            "category": (categories or [o.get("forecast_category") or None])[-1],
        }
    return deals


def movement_oracle(folder: Path, period_label: str) -> dict:
    """docs/metrics.md `pipeline_movement`, read literally: each deal open at the start or created
    in the period in one step, and the deals expected (as of the start) to close in it."""
    period = parse_period(period_label, TZ)
    start, end = states_at(folder, period.start), states_at(folder, period.end)
    steps: dict[str, list[float]] = {
        k: [] for k in ("open_start", "created", "increased", "decreased", "won", "lost")
    }
    steps["open_end"] = [d["amount"] for d in end.values() if d["state"] == "open"]
    expected = {k: 0 for k in ("expected", "won", "lost", "pushed_out", "overdue", "pulled_in")}
    for oid, now in end.items():
        before = start.get(oid)
        if before is not None and before["state"] == "open":
            steps["open_start"].append(before["amount"])
            was_expected = before["expected"] is not None and (
                period.start_date <= before["expected"] < period.end_date
            )
            if now["state"] == "open":
                change = now["amount"] - before["amount"]
                if change:
                    steps["increased" if change > 0 else "decreased"].append(abs(change))
                outcome = "pushed_out" if now["expected"] >= period.end_date else "overdue"
            else:
                steps[now["state"]].append(before["amount"])
                outcome = now["state"]
            if was_expected:
                expected["expected"] += 1
                expected[outcome] += 1
            elif now["state"] == "won":
                expected["pulled_in"] += 1
        elif before is None and now["state"] == "open":
            steps["created"].append(now["amount"])
    return {"steps": steps, "expected": expected}


@pytest.mark.parametrize("period_label", ["2026-09", "2026-03", "2026-Q2"])
def test_pipeline_movement_equals_the_oracle(pushed_exports, period_label):
    movement = run_pipeline(pushed_exports, period_label)["pipeline_movement"]
    want = movement_oracle(pushed_exports, period_label)
    for name, amounts in want["steps"].items():
        assert movement[f"{name}_count"] == len(amounts), name
        assert movement[f"{name}_amount"] == pytest.approx(sum(amounts), rel=1e-9), name
    counts = {k: movement["expected"][f"{k}_count"] for k in want["expected"]}
    assert counts == want["expected"]
    assert movement["open_start_count"] > 0 and movement["won_count"] > 0  # not empty
    assert (
        counts["pushed_out"] > 0 and movement["increased_count"] + movement["decreased_count"] > 0
    )


@pytest.fixture(scope="module")
def categorized_exports(tmp_path_factory):
    """The oracle's deals with the forecast category reps give them by stage."""
    folder = tmp_path_factory.mktemp("oracle-categories")
    spec = GenerateSpec(opportunities=2000, seed=11, forecast_categories=True)
    generate_exports(folder, spec)
    return folder


CATEGORY_WORDS = {"Commit": "commit", "Best Case": "best_case", "Pipeline": "pipeline"}


def test_forecast_categories_equal_the_oracle(categorized_exports):
    """The roll-up: the deals open at 2026-09's end expected in October, summed by the
    category known then; the record: at each backtest origin, the deals the history held
    in a category and expected in the following month, and the share of them won in it."""
    folder, label = categorized_exports, "2026-09"
    m = run_pipeline(folder, label)["forecast"]
    period = parse_period(label, TZ)
    nxt = period.shifted(1)
    end = states_at(folder, period.end)
    rollup: dict[str, list[float]] = {}
    for d in end.values():
        if (
            d["state"] == "open"
            and d["expected"]
            and nxt.start_date <= d["expected"] < nxt.end_date
        ):
            rollup.setdefault(CATEGORY_WORDS[d["category"]], []).append(d["amount"])
    rows = {r["category"]: r for r in m["categories"]["rows"]}
    for category, amounts in rollup.items():
        assert rows[category]["count"] == len(amounts), category
        assert rows[category]["amount"] == pytest.approx(sum(amounts)), category
    assert sum(r["count"] for r in rows.values()) == sum(map(len, rollup.values()))
    record: dict[str, list[tuple[float, bool]]] = {}
    for row in m["backtest"]["periods"]:
        following = parse_period(row["period"], TZ)
        then, after = states_at(folder, following.start), states_at(folder, following.end)
        for oid, d in then.items():
            category = d["history_category"]
            if d["state"] != "open" or category is None or d["expected"] is None:
                continue
            if following.start_date <= d["expected"] < following.end_date:
                won = after[oid]["state"] == "won" and then[oid]["state"] != "won"
                record.setdefault(CATEGORY_WORDS[category], []).append((d["amount"], won))
    for r in m["categories"]["record"]:
        held = record.get(r["category"], [])
        assert r["deals"] == len(held), r["category"]
        assert r["won_deals"] == sum(won for _, won in held), r["category"]
        assert r["amount"] == pytest.approx(sum(a for a, _ in held)), r["category"]
    assert m["categories"]["record"][0]["deals"] > 0  # the check has teeth
