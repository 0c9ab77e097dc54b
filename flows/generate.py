"""Synthetic canonical exports of any size, written to disk chunk by chunk.

Deals are simulated stage by stage with numpy arrays (one loop over steps, none over rows):
each open stage has a dwell time and a chance to advance, skip a stage, fall back one stage, or
be lost; won deals may move on to retention; deals still running at the export instant stay
open, some of them stalled with or without a stall reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from funnel_reports.schemas.vocabulary import LOST, OPEN, WON
from funnel_reports.transforms.funnel_model import DEFAULT_STAGES

STAGES = [s.id for s in DEFAULT_STAGES]
WON_INDEX = STAGES.index("won")
ADVANCE = np.array([0.62, 0.6, 0.58, 0.62])  # chance to move forward from each open stage
SKIP = 0.06  # of advances, share that skip one stage
REGRESS = 0.06  # chance to fall back one stage (from stage 2+)
DWELL_MEDIAN_DAYS = np.array([5.0, 8.0, 11.0, 13.0])
RETENTION = 0.55
STALL_REASON_SHARE = 0.55
MAX_STEPS = 12

OWNERS = ["张伟", "李娜", "王芳", "刘洋", "Emily Chen", "David Wu", "陈静", "Michael Zhang"]
CN_PREFIX = [
    "华东",
    "南方",
    "北辰",
    "远航",
    "恒信",
    "金桥",
    "天成",
    "瑞丰",
    "海川",
    "中科",
    "博远",
    "新禾",
    "东润",
    "宏图",
    "安泰",
    "星河",
]
CN_SUFFIX = [
    "精密制造有限公司",
    "物流集团",
    "医疗科技有限公司",
    "连锁超市",
    "软件有限公司",
    "教育科技",
    "新能源股份有限公司",
    "食品有限公司",
]
EN_PREFIX = [
    "Northwind",
    "Bluepeak",
    "Harbor",
    "Silverline",
    "Redwood",
    "Summit",
    "Lakeside",
    "Ironbridge",
    "Brightpath",
    "Oakmont",
]
EN_SUFFIX = [
    "Trading Co.",
    "Logistics Ltd",
    "Health Systems",
    "Retail Group",
    "Software Inc.",
    "Manufacturing",
    "Energy Partners",
    "Foods Ltd",
]
INDUSTRIES = [
    "Manufacturing",
    "Logistics",
    "Healthcare",
    "Retail",
    "Software",
    "Education",
    "Energy",
    "Food & beverage",
]
SIZES = ["SMB", "Mid-market", "Enterprise"]
SOURCES = ["Website", "Referral", "Trade show", "Outbound call", "Partner", "Marketing campaign"]
REGIONS = ["East China", "South China", "North China", "West China", "Overseas"]
LOST_REASONS = [
    "Price too high",
    "Chose a competitor",
    "No budget this year",
    "Project cancelled",
    "预算不足",
    "选择了竞争对手",
    "No response",
]
STALL_REASONS = [
    "客户预算审批中",
    "Waiting for legal review",
    "决策人出差",
    "Customer busy with year-end",
    "等待技术评估",
    "Procurement process",
]
CHANNELS = ["phone", "meeting", "email", "visit", "message", "other"]
CHANNEL_WEIGHTS = [0.3, 0.15, 0.2, 0.1, 0.2, 0.05]
SUMMARIES = [
    "介绍产品方案",
    "Discussed requirements",
    "确认预算范围",
    "Sent quote",
    "价格谈判",
    "Demo for the team",
    "回访客户",
]
FEEDBACK = ["Interested", "需要内部讨论", "Asked for a discount", "认可方案", "Needs more time"]
NEXT_ACTIONS = [
    "发送报价单",
    "Schedule demo",
    "安排技术交流",
    "Follow up by phone",
    "Send contract draft",
]
CONTACT_SURNAMES = ["赵", "钱", "孙", "周", "吴", "郑", "Smith", "Johnson", "Lee"]


@dataclass(frozen=True)
class GenerateSpec:
    """What to generate: size, seed, time span, zone, and follow-ups per deal on average."""

    opportunities: int
    seed: int = 7
    start: date = date(2025, 4, 1)
    export_at: datetime = datetime(2026, 9, 30, 18, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    timezone: str = "Asia/Shanghai"
    followups_per_opportunity: float = 5.0
    # history rows that restate a deal's current stage with its amount (a CRM logs one for
    # every amount or close-date change; they add rows, not stage entries)
    updates_per_opportunity: float = 0.0
    # reps moving a deal's expected close date on when it comes near (`recorded_close_dates`);
    # off, every row keeps the deal's first date (the forecast benchmark's exports)
    close_date_pushes: bool = False
    # the CRM's forecast category on every history row and deal, by its stage
    # (`forecast_category_of`); no random draw
    forecast_categories: bool = False
    # the spread of deal amounts (the sigma of their lognormal): 0.7 as most exports; 1.4 for
    # a right-skewed mix where a few deals carry most of the amount
    amount_sigma: float = 0.7
    # the share of the wins that fall in a quarter's first two months which the reps hold to
    # its last month (a quarter-end push); 0 draws nothing
    quarter_end_push: float = 0.0
    chunk_size: int = 50_000


def _pick(rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None):
    return np.asarray(values)[rng.choice(len(values), size=n, p=p)]


def _where(mask: np.ndarray, values: np.ndarray) -> pl.Series:
    """values where mask holds, else null."""
    return pl.select(pl.when(pl.Series(mask)).then(pl.Series(values))).to_series()


def _timestamps(seconds: np.ndarray, timezone: str) -> pl.Series:
    """Epoch seconds (NaN = none) as ISO 8601 text with the zone's offset."""
    values = pl.Series(np.where(np.isnan(seconds), 0, seconds * 1e6).astype(np.int64))
    stamps = values.cast(pl.Datetime("us", "UTC")).dt.convert_time_zone(timezone)
    text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
    return pl.select(pl.when(pl.Series(~np.isnan(seconds))).then(text)).to_series()


def _dates(seconds: np.ndarray) -> pl.Series:
    values = pl.Series(np.where(np.isnan(seconds), 0, seconds * 1e6).astype(np.int64))
    text = values.cast(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%d")
    return pl.select(pl.when(pl.Series(~np.isnan(seconds))).then(text)).to_series()


@dataclass
class Paths:
    """Each simulated deal's walk through the funnel: when it was created, the stage it is in
    and since when, its status and close, and every stage entry (deal, stage, time)."""

    created: np.ndarray
    stage: np.ndarray
    entered: np.ndarray
    status: np.ndarray
    closed: np.ndarray
    entries: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]
    t_end: float


DAY = 86_400.0


def simulate_chunk(rng: np.random.Generator, first_id: int, n: int, spec: GenerateSpec):
    """The three canonical tables for deals first_id .. first_id + n - 1 (the random draws
    in one fixed order: the walks, the deals' fields, the follow-ups, the updates)."""
    paths = simulate_paths(rng, n, spec)
    ids = np.char.add("OPP-", np.char.zfill(np.arange(first_id, first_id + n).astype(str), 7))
    opportunities, deals = opportunity_table(rng, ids, paths, spec)
    followups = followup_table(rng, ids, deals["owner"], paths, spec)
    stage_history = history_table(rng, ids, deals, paths, spec)
    if spec.forecast_categories:
        opportunities = opportunities.with_columns(forecast_category_of(paths.stage, paths.status))
    if not spec.close_date_pushes:
        return opportunities, stage_history, followups
    # a deal's own expected close date is the latest its history records
    latest = stage_history.group_by("opportunity_id", maintain_order=True).agg(
        pl.col("expected_close_date").last()
    )
    return opportunities.update(latest, on="opportunity_id"), stage_history, followups


def simulate_paths(rng: np.random.Generator, n: int, spec: GenerateSpec) -> Paths:
    """Deals created uniformly over the export's span, each walking the stages (dwell times
    lognormal around each stage's median; advance, regress once, skip, or be lost), then won
    deals moving on to retention."""
    t0 = datetime(
        spec.start.year, spec.start.month, spec.start.day, tzinfo=ZoneInfo(spec.timezone)
    ).timestamp()
    t_end = spec.export_at.timestamp()
    created = np.sort(rng.uniform(t0, t_end - DAY, n))
    stage = np.zeros(n, dtype=np.int64)
    t = created.copy()
    active = np.ones(n, dtype=bool)
    status = np.full(n, OPEN, dtype="<U4")
    closed = np.full(n, np.nan)
    regressed = np.zeros(n, dtype=bool)
    entry_opp, entry_stage, entry_time = [np.arange(n)], [stage.copy()], [created.copy()]
    for _ in range(MAX_STEPS):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        cur = stage[idx]
        dwell = rng.lognormal(np.log(DWELL_MEDIAN_DAYS[np.minimum(cur, WON_INDEX - 1)]), 0.8) * DAY
        t_next = t[idx] + dwell
        ran_out = t_next >= t_end
        active[idx[ran_out]] = False
        go = ~ran_out
        idx, cur, t_next = idx[go], cur[go], t_next[go]
        u = rng.uniform(size=idx.size)
        back = (u < REGRESS) & (cur >= 2) & ~regressed[idx]
        forward = ~back & (u < REGRESS + ADVANCE[cur])
        lost = ~back & ~forward
        skip = forward & (rng.uniform(size=idx.size) < SKIP) & (cur + 2 <= WON_INDEX)
        new_stage = np.where(back, cur - 1, np.where(skip, cur + 2, cur + 1))
        moved = back | forward
        if spec.quarter_end_push > 0:
            t_next = quarter_end_pushed(rng, t_next, moved & (new_stage == WON_INDEX), spec)
        regressed[idx[back]] = True
        entry_opp.append(idx[moved])
        entry_stage.append(new_stage[moved])
        entry_time.append(t_next[moved])
        stage[idx[moved]] = new_stage[moved]
        t[idx[moved]] = t_next[moved]
        won = moved & (new_stage == WON_INDEX)
        status[idx[won]] = WON
        closed[idx[won]] = t_next[won]
        active[idx[won]] = False
        status[idx[lost]] = LOST
        closed[idx[lost]] = t_next[lost]
        active[idx[lost]] = False
    won_idx = np.flatnonzero(status == WON)
    t_ret = closed[won_idx] + rng.uniform(20, 90, won_idx.size) * DAY
    to_ret = (rng.uniform(size=won_idx.size) < RETENTION) & (t_ret < t_end)
    entry_opp.append(won_idx[to_ret])
    entry_stage.append(np.full(to_ret.sum(), WON_INDEX + 1))
    entry_time.append(t_ret[to_ret])
    stage[won_idx[to_ret]] = WON_INDEX + 1
    t[won_idx[to_ret]] = t_ret[to_ret]
    return Paths(created, stage, t, status, closed, (entry_opp, entry_stage, entry_time), t_end)


def quarter_end_pushed(
    rng: np.random.Generator, t: np.ndarray, won: np.ndarray, spec: GenerateSpec
) -> np.ndarray:
    """`t` with the wins (`won`) of a quarter's first two months held, each with the chance
    `quarter_end_push`, to a time in the first 25 days of the quarter's last month (before
    the export)."""
    local = (
        pl.Series(t * 1e6)
        .cast(pl.Int64)
        .cast(pl.Datetime("us", "UTC"))
        .dt.convert_time_zone(spec.timezone)
    )
    last_month = local.dt.truncate("1q").dt.offset_by("2mo")
    start = (last_month.dt.epoch("us") / 1e6).to_numpy()
    held = (
        won
        & (local.dt.month().to_numpy() % 3 != 0)
        & (rng.uniform(size=t.size) < spec.quarter_end_push)
    )
    pushed = start + rng.uniform(0, 25, t.size) * DAY
    return np.where(held & (pushed < spec.export_at.timestamp()), pushed, t)


def opportunity_table(
    rng: np.random.Generator, ids: np.ndarray, paths: Paths, spec: GenerateSpec
) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    """The opportunities, and the drawn fields their history and follow-ups repeat."""
    n = ids.size
    amount = np.round(rng.lognormal(np.log(150_000), spec.amount_sigma, n), -3)
    deals = {
        "amount": amount,
        "initial_amount": np.round(amount * rng.uniform(0.7, 1.3, n), -3),
        "has_amount": rng.uniform(size=n) > 0.03,
        "expected_close": paths.created + rng.uniform(20, 75, n) * DAY,
    }
    is_cn = rng.uniform(size=n) < 0.65
    customer = np.where(
        is_cn,
        np.char.add(_pick(rng, CN_PREFIX, n), _pick(rng, CN_SUFFIX, n)),
        np.char.add(np.char.add(_pick(rng, EN_PREFIX, n), " "), _pick(rng, EN_SUFFIX, n)),
    )
    stalled = (paths.status == OPEN) & (paths.t_end - paths.entered > 7 * DAY)
    has_reason = stalled & (rng.uniform(size=n) < STALL_REASON_SHARE)
    deals["owner"] = _pick(rng, OWNERS, n)
    phone = np.char.add("138", np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8))
    opportunities = pl.DataFrame(
        {
            "opportunity_id": ids,
            "customer_name": customer,
            "owner": deals["owner"],
            "stage": np.asarray(STAGES)[paths.stage],
            "status": paths.status,
            "created_at": _timestamps(paths.created, spec.timezone),
            "stage_entered_at": _timestamps(paths.entered, spec.timezone),
            "closed_at": _timestamps(paths.closed, spec.timezone),
            "amount": pl.Series(np.where(deals["has_amount"], amount, np.nan)).fill_nan(None),
            "currency": "CNY",
            "expected_close_date": _dates(deals["expected_close"]),
            "lost_reason": _where(paths.status == LOST, _pick(rng, LOST_REASONS, n)),
            "stall_reason": _where(has_reason, _pick(rng, STALL_REASONS, n)),
            "industry": _pick(rng, INDUSTRIES, n),
            "customer_size": _pick(rng, SIZES, n, [0.5, 0.35, 0.15]),
            "source": _pick(rng, SOURCES, n),
            "region": _pick(rng, REGIONS, n),
            "contact_name": np.char.add(_pick(rng, CONTACT_SURNAMES, n), "经理"),
            "contact_phone": phone,
            "contact_email": np.char.add(np.char.add("contact", ids), "@example.com"),
        }
    )
    return opportunities, deals


def followup_table(
    rng: np.random.Generator, ids: np.ndarray, owner: np.ndarray, paths: Paths, spec: GenerateSpec
) -> pl.DataFrame:
    """A Poisson number of follow-ups per deal, each between its creation and its close
    (or the export)."""
    touches = rng.poisson(spec.followups_per_opportunity, ids.size)
    f_opp = np.repeat(np.arange(ids.size), touches)
    last = np.where(np.isnan(paths.closed), paths.t_end - 3600, paths.closed)[f_opp]
    created = paths.created[f_opp]
    occurred = created + rng.uniform(size=f_opp.size) * (last - created)
    return pl.DataFrame(
        {
            "followup_id": np.char.add(
                "F-", np.char.add(ids[f_opp], np.char.add("-", _rank(f_opp).astype(str)))
            ),
            "opportunity_id": ids[f_opp],
            "occurred_at": _timestamps(occurred, spec.timezone),
            "channel": _pick(rng, CHANNELS, f_opp.size, CHANNEL_WEIGHTS),
            "summary": _pick(rng, SUMMARIES, f_opp.size),
            "customer_feedback": _pick(rng, FEEDBACK, f_opp.size),
            "next_action": _pick(rng, NEXT_ACTIONS, f_opp.size),
            "next_action_due": _dates(occurred + rng.uniform(2, 14, f_opp.size) * DAY),
            "owner": owner[f_opp],
        }
    )


def history_table(
    rng: np.random.Generator,
    ids: np.ndarray,
    deals: dict[str, np.ndarray],
    paths: Paths,
    spec: GenerateSpec,
) -> pl.DataFrame:
    """Every stage entry, with the update rows of `updates_per_opportunity`, in order of
    deal, time and stage; the amount up to the qualified stage is the initial one, from the
    proposal on the deal's own."""
    entry_opp, entry_stage, entry_time = paths.entries
    if spec.updates_per_opportunity > 0:
        entry_opp, entry_stage, entry_time = _with_updates(
            rng,
            spec.updates_per_opportunity,
            (entry_opp, entry_stage, entry_time),
            paths.created,
            np.where(np.isnan(paths.closed), paths.t_end - 3600, paths.closed),
        )
    e_opp, e_stage, e_time = (np.concatenate(e) for e in (entry_opp, entry_stage, entry_time))
    order = np.lexsort((e_stage, e_time, e_opp))
    e_opp, e_stage, e_time = e_opp[order], e_stage[order], e_time[order]
    amount = np.where(e_stage >= 2, deals["amount"][e_opp], deals["initial_amount"][e_opp])
    has_amount = deals["has_amount"][e_opp]
    expected = deals["expected_close"][e_opp]
    if spec.close_date_pushes:
        expected = recorded_close_dates(e_opp, expected, e_stage, e_time)
    rows = pl.DataFrame(
        {
            "opportunity_id": ids[e_opp],
            "stage": np.asarray(STAGES)[e_stage],
            "entered_at": _timestamps(e_time, spec.timezone),
            "amount": pl.Series(np.where(has_amount, amount, np.nan)).fill_nan(None),
            "expected_close_date": _dates(expected),
            "changed_by": deals["owner"][e_opp],
        }
    )
    if not spec.forecast_categories:
        return rows
    return rows.with_columns(forecast_category_of(e_stage, np.full(e_stage.size, OPEN)))


# the forecast category a rep gives a deal by its stage (an index of STAGES) and status
CATEGORY_BY_STAGE = ("Pipeline", "Pipeline", "Best Case", "Commit")


def forecast_category_of(stage: np.ndarray, status: np.ndarray) -> pl.Series:
    """Commit in negotiation, best case in proposal, pipeline before; closed once won (or in
    a later stage), omitted once lost."""
    by_stage = np.asarray(CATEGORY_BY_STAGE)[np.minimum(stage, len(CATEGORY_BY_STAGE) - 1)]
    category = np.where(stage >= WON_INDEX, "Closed", by_stage)
    category = np.where(status == WON, "Closed", np.where(status == LOST, "Omitted", category))
    return pl.Series("forecast_category", category)


# a rep who touches an open deal within a week of its expected close (or after it) moves the
# date on by whole months from the first one
PUSH_WITHIN_DAYS, PUSH_STEP_DAYS = 7, 30


def recorded_close_dates(
    deal: np.ndarray, expected: np.ndarray, stage: np.ndarray, time: np.ndarray
) -> np.ndarray:
    """The expected close date each history row records (rows in order of deal and time): the
    deal's first one, moved on by `PUSH_STEP_DAYS` at a time until it lies more than
    `PUSH_WITHIN_DAYS` after an entry into an open stage; an entry into won or after keeps
    the date the deal had. No random draw: a seed gives the same deals with or without."""
    late = time - (expected - PUSH_WITHIN_DAYS * DAY)
    steps = np.where(late > 0, np.ceil(late / (PUSH_STEP_DAYS * DAY)), 0)
    recorded = np.where(stage < WON_INDEX, expected + steps * PUSH_STEP_DAYS * DAY, np.nan)
    kept = pl.DataFrame({"deal": deal, "date": recorded}).select(
        pl.col("date").fill_nan(None).forward_fill().over("deal")
    )
    return kept.to_series().fill_null(pl.Series(expected)).to_numpy()


def _with_updates(
    rng: np.random.Generator,
    per_deal: float,
    entries: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]],
    created: np.ndarray,
    last: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Entries (deal, stage, time) plus update rows: each at a random time between a deal's
    creation and `last` (its close, or the export), in the stage the deal was in then."""
    e_opp, e_stage, e_time = (np.concatenate(e) for e in entries)
    order = np.lexsort((e_time, e_opp))
    key = e_opp[order] * 1e10 + e_time[order]  # exact: < 2**53 for a chunk's deals
    n = created.size
    u_opp = np.repeat(np.arange(n), rng.poisson(per_deal, n))
    u_time = created[u_opp] + rng.uniform(size=u_opp.size) * (last[u_opp] - created[u_opp])
    at = np.searchsorted(key, u_opp * 1e10 + u_time, side="right") - 1
    return [e_opp, u_opp], [e_stage, e_stage[order][at]], [e_time, u_time]


def _rank(group: np.ndarray) -> np.ndarray:
    """1, 2, ... within runs of equal values of a sorted array."""
    if group.size == 0:
        return group
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    return np.arange(group.size) - np.repeat(starts, np.diff(np.r_[starts, group.size])) + 1


def generate_exports(out_dir: Path, spec: GenerateSpec) -> dict[str, int]:
    """Write opportunities.csv, stage_history.csv and followups.csv; return the row counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    counts = {"opportunities": 0, "stage_history": 0, "followups": 0}
    paths = {name: out_dir / f"{name}.csv" for name in counts}
    handles = {name: path.open("wb") for name, path in paths.items()}
    try:
        for first in range(0, spec.opportunities, spec.chunk_size):
            n = min(spec.chunk_size, spec.opportunities - first)
            tables = simulate_chunk(rng, first + 1, n, spec)
            for name, frame in zip(counts, tables, strict=True):
                frame.write_csv(handles[name], include_header=first == 0)
                counts[name] += frame.height
    finally:
        for handle in handles.values():
            handle.close()
    return counts
