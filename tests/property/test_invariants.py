"""Invariants on random small funnels (hypothesis)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funnel_reports.flows.io.outputs import json_ready
from funnel_reports.schemas.derived import DERIVED_MODELS
from funnel_reports.transforms.intermediate.derived import derive_tables
from funnel_reports.transforms.metrics_document import FIGURES
from funnel_reports.transforms.periods import parse_period
from tests.helpers import SETTINGS, bridged, history, metrics_for, opportunities
from tests.helpers import world as world_of

STAGES = SETTINGS.funnel.ids
WON = SETTINGS.funnel.won_index
START = datetime(2023, 1, 1, tzinfo=UTC)
PERIOD = "2024-03"
END = parse_period(PERIOD).end


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def deal(draw, oid: str):
    """A deal's path: forward steps (maybe skipping), a possible fallback, then won/lost/open."""
    t = START + timedelta(hours=draw(st.integers(0, 24 * 500)))
    created = t
    stage = 0
    entries = [(stage, t)]
    for _ in range(draw(st.integers(0, 6))):
        t += timedelta(hours=draw(st.integers(0, 24 * 40)))
        move = draw(st.sampled_from([1, 1, 1, 2, -1]))
        stage = min(max(stage + move, 0), len(STAGES) - 1)
        entries.append((stage, t))
        if stage >= WON:
            break
    outcome = "won" if stage >= WON else draw(st.sampled_from(["open", "lost"]))
    closed = None
    if outcome == "won":
        closed = next(at for s, at in entries if s >= WON)
    elif outcome == "lost":
        closed = t + timedelta(hours=draw(st.integers(0, 24 * 30)))
    amount = draw(st.one_of(st.none(), st.integers(0, 10_000)))
    reason = draw(st.sampled_from([None, "", "budget", "legal"]))
    opp = {
        "opportunity_id": oid,
        "stage": STAGES[max(s for s, _ in entries[-1:])],
        "created_at": stamp(created),
        "status": outcome,
        "closed_at": stamp(closed) if closed else None,
        "amount": amount,
        "stall_reason": reason,
        "owner": draw(st.sampled_from(["A", "B"])),
        "expected_close_date": (created + timedelta(days=60)).date().isoformat(),
    }
    rows = [(oid, STAGES[s], stamp(at)) for s, at in entries]
    return opp, rows


@st.composite
def world(draw):
    n = draw(st.integers(1, 12))
    deals = [draw(deal(f"D{i}")) for i in range(n)]
    return [d[0] for d in deals], [r for d in deals for r in d[1]]


def run(opps, rows):
    return metrics_for(opportunities(*opps), history(*rows), period=PERIOD)


PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


CHEAP_FIGURES = ("conversion", "kpis", "stalls", "funnel", "dwell")


def cheap_run(opps, rows):
    """The figures the invariants below read, each from its own mart, and the stage win
    probabilities: none of them needs the forecast's backtest, which a whole document runs."""
    w = world_of(opportunities(*opps), history(*rows), period=PERIOD)
    m = {key: FIGURES[key](w) for key in CHEAP_FIGURES}
    return m | {"forecast": {"stage_probabilities": w.probabilities.to_dicts()}}


def rates(m):
    for row in m["conversion"]:
        yield row["cohort_rate"]
        yield row["resolved_rate"]
    yield m["kpis"]["win_rate"]
    yield m["stalls"]["compliance_rate"]
    for row in m["forecast"]["stage_probabilities"]:
        yield row["p_win"]


@PROPERTY
@given(world())
def test_rates_lie_in_zero_one_and_counts_add_up(w):
    m = cheap_run(*w)
    assert all(r is None or 0 <= r <= 1 for r in rates(m))
    for row in m["conversion"]:
        assert row["advanced"] + row["lost"] + row["open"] == row["cohort_size"]
        assert min(row["advanced"], row["lost"], row["open"]) >= 0
        assert row["flow_rate"] is None or row["flow_rate"] >= 0
    assert sum(r["count"] for r in m["funnel"]) == m["kpis"]["open_count"]
    assert m["stalls"]["missing_reason_count"] <= m["stalls"]["stalled_count"]


@PROPERTY
@given(world())
def test_reached_counts_never_grow_down_the_funnel_and_dwell_is_not_negative(w):
    opps, rows = w
    derived = derive_tables(opportunities(*opps), history(*rows), as_of=END, funnel=SETTINGS.funnel)
    reaches = {s: derived.reaches.filter(pl.col("stage") == s) for s in STAGES}
    reached = [reaches[s].height for s in STAGES]
    assert reached == sorted(reached, reverse=True)
    for a, b in pairwise(STAGES):
        # every deal that reached b reached a too, no later
        both = reaches[a].join(reaches[b], on="opportunity_id", suffix="_b")
        assert both.height == reaches[b].height
        assert (both["reached_at"] <= both["reached_at_b"]).all()
    assert (derived.visits["days"] >= 0).all()
    m = cheap_run(opps, rows)
    for row in m["dwell"]:
        for key in (
            "mean_days",
            "median_days",
            "p90_days",
            "open_median_age_days",
            "km_median_days",
        ):
            assert row[key] is None or row[key] >= 0
        if row["completed_visits"]:
            quartiles = [row[k] for k in ("p25_days", "median_days", "p75_days", "p90_days")]
            assert quartiles == sorted(quartiles)


@PROPERTY
@given(world())
def test_derived_tables_match_their_schemas(w):
    opps, rows = w
    derived = derive_tables(opportunities(*opps), history(*rows), as_of=END, funnel=SETTINGS.funnel)
    for name, model in DERIVED_MODELS.items():
        model.validate(getattr(derived, name), lazy=True)


@pytest.mark.heavy  # the whole document, backtest included, per example
@PROPERTY
@given(world(), st.randoms(use_true_random=False))
def test_row_order_changes_nothing(w, rnd: random.Random):
    opps, rows = w
    shuffled_opps, shuffled_rows = opps[:], rows[:]
    rnd.shuffle(shuffled_opps)
    rnd.shuffle(shuffled_rows)
    # compared as written to metrics.json: floats to 6 decimals (sums and divisions may
    # differ in the last bit with the order polars meets the rows in)
    assert json_ready(run(shuffled_opps, shuffled_rows)) == json_ready(run(opps, rows))


def as_exported_at_end(opps, rows, at=END):
    """What an export taken at `at` would have held: later deals, entries and closes unknown."""
    end = stamp(at)
    kept_opps = []
    for o in opps:
        if o["created_at"] >= end:
            continue
        if o["closed_at"] and o["closed_at"] >= end:
            o = {**o, "status": "open", "closed_at": None}
        kept_opps.append(o)
    ids = {o["opportunity_id"] for o in kept_opps}
    kept_rows = [r for r in rows if r[0] in ids and r[2] < end]
    return kept_opps, kept_rows


@pytest.mark.heavy  # the whole document, backtest included, per example
@PROPERTY
@given(world())
def test_a_run_as_of_the_period_end_ignores_later_events(w):
    opps, rows = w
    full = run(opps, rows)
    early = run(*as_exported_at_end(opps, rows))
    for m in (full, early):
        m.pop("point_in_time")
    assert json_ready(full) == json_ready(early)


@pytest.mark.heavy  # the whole document, backtest included, per example
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world())
def test_a_backtest_origin_sees_only_what_was_known_then(w):
    """Each of the last two backtest rows holds every method's forecast exactly as a run for
    its origin period, on the export as it stood at that origin, makes it."""
    opps, rows = w
    card = run(opps, rows)["forecast"]["backtest"]
    for row in card["periods"][-2:]:
        origin = parse_period(row["period"]).shifted(-1)
        then = metrics_for(
            opportunities(*as_exported_at_end(opps, rows, origin.end)[0]),
            history(*as_exported_at_end(opps, rows, origin.end)[1]),
            period=origin.label,
        )["forecast"]
        assert row["forecasts"] == then["next_period_by_method"]


@pytest.mark.heavy  # the whole document, backtest included, per example
@PROPERTY
@given(world(), st.floats(min_value=1, max_value=50_000))
def test_new_figures_stay_consistent(w, target):
    m = metrics_for(
        opportunities(*w[0]), history(*w[1]), period=PERIOD, target=target, next_target=target
    )
    k = m["kpis"]
    for rows in m["segments"].values():  # every deal falls in exactly one value
        assert sum(r["open_count"] for r in rows) == k["open_count"]
        assert sum(r["won_count"] for r in rows) == k["won_count"]
    f = m["forecast"]
    mc = f["monte_carlo"]
    if mc["p50"] is not None:
        assert 0 <= mc["p10"] <= mc["p50"] <= mc["p90"]
        assert 0 <= mc["p_hit_target"] <= 1
    assert all(v is None or v >= 0 for v in f["next_period_components"].values())
    assert f["next_period"] is None or f["next_period"] >= 0
    for b in f["backtest"]["reliability"]:
        assert b["from"] <= b["mean_p"] <= b["to"] and 0 <= b["won_share"] <= 1
    for row in m["bottlenecks"]:
        assert all(
            r is None or 0 <= r <= 1 for r in (row["conversion"], row["baseline_conversion"])
        )
        assert row["revenue_at_risk"] is None or row["revenue_at_risk"] >= 0
    card = m["forecast"]["backtest"]
    assert card["brier"] is None or 0 <= card["brier"] <= 1
    assert all(r["actual"] >= 0 for r in card["periods"])
    t = m["targets"]
    assert t["remaining"] == max(target - k["won_amount"], 0)
    assert t["coverage"] is None or t["coverage"] >= 0


@PROPERTY
@given(world(), st.data())
def test_the_pipeline_bridge_reconciles_for_any_funnel(w, data):
    """open(start) + created − won − lost = open(end) in counts and, with the amounts each
    history row records (or none), in amounts; per stage and in total; and every win of the
    period was expected in it, pulled in or new."""
    opps, rows = w
    amounts = data.draw(
        st.lists(
            st.one_of(st.none(), st.integers(0, 5_000)), min_size=len(rows), max_size=len(rows)
        )
    )
    entries = [
        {"opportunity_id": o, "stage": s, "entered_at": at, "amount": a}
        for (o, s, at), a in zip(rows, amounts, strict=True)
    ]
    period = data.draw(st.sampled_from(["2023-06", "2023-11", "2024-03", "2024-Q1"]))
    world_at = world_of(opportunities(*opps), history(*entries), period=period)
    m = FIGURES["pipeline_movement"](world_at)
    for bridge in [m, *m["by_stage"]]:
        count, amount = bridged(bridge)
        assert count == bridge["open_end_count"]
        assert amount == pytest.approx(bridge["open_end_amount"], abs=1e-6)
    kpis = FIGURES["kpis"](world_at)
    assert (m["open_end_count"], m["open_end_amount"]) == (kpis["open_count"], kpis["open_amount"])
    e = m["expected"]
    assert e["won_count"] + e["pulled_in_count"] + e["new_won_count"] == kpis["won_count"]
    assert (
        e["won_count"] + e["lost_count"] + e["pushed_out_count"] + e["overdue_count"]
        == (e["expected_count"])
    )
