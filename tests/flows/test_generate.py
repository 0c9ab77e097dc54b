"""The synthetic export generator behind `funnel generate` (flows/generate.py), on exports of
300 deals: the same seed gives the same bytes, the rows asked for are written, every row
passes the project's own checks, and the walks keep what the generator promises (ids, stage
order, closes, stalls, amounts, follow-ups within a deal's life, update rows restating the
stage a deal was in)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from funnel_reports.flows.generate import (
    CHANNELS,
    STAGES,
    GenerateSpec,
    _dates,
    _rank,
    _timestamps,
    _with_updates,
    generate_exports,
    recorded_close_dates,
)
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.staging.checks import check_inputs

TABLES = ("opportunities", "stage_history", "followups")
STAMP = "%Y-%m-%dT%H:%M:%S%:z"
SPEC = GenerateSpec(opportunities=300, seed=7)
EXPORT_AT = SPEC.export_at.astimezone(UTC)
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")


@pytest.fixture(autouse=True)
def _prefect():
    """Files only: no Prefect flow runs here, so no test server is started."""
    yield


def instant(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(STAMP, time_zone="UTC")


def stage_index(column: str = "stage") -> pl.Expr:
    return pl.col(column).replace_strict(STAGES, list(range(len(STAGES))), return_dtype=pl.Int64)


def read(folder: Path, table: str) -> pl.DataFrame:
    return pl.read_csv(folder / f"{table}.csv", infer_schema=False)


def generated(folder: Path, spec: GenerateSpec) -> Path:
    generate_exports(folder, spec)
    return folder


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    """300 deals, 5 follow-ups per deal on average, no update rows."""
    return generated(tmp_path_factory.mktemp("plain"), SPEC)


@pytest.fixture(scope="module")
def updated(tmp_path_factory) -> Path:
    """The same seed with 2.4 update rows per deal on average."""
    spec = GenerateSpec(opportunities=300, seed=7, updates_per_opportunity=2.4)
    return generated(tmp_path_factory.mktemp("updated"), spec)


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> Path:
    """100 deals written in chunks of 40, 40 and 20."""
    spec = GenerateSpec(opportunities=100, seed=7, updates_per_opportunity=1, chunk_size=40)
    return generated(tmp_path_factory.mktemp("chunked"), spec)


@pytest.fixture(scope="module")
def deals(plain) -> pl.DataFrame:
    return read(plain, "opportunities").with_columns(
        instant("created_at").alias("created"),
        instant("closed_at").alias("closed"),
        instant("stage_entered_at").alias("entered"),
        pl.col("amount").cast(pl.Float64),
    )


@pytest.fixture(scope="module")
def entries(plain, deals) -> pl.DataFrame:
    """The stage history in file order, with its deal's fields, its time and stage index, and
    the stage index of the deal's row before (null on its first)."""
    return (
        read(plain, "stage_history")
        .with_row_index("line")
        .with_columns(
            instant("entered_at").alias("at"),
            stage_index().alias("index"),
            pl.col("amount").cast(pl.Float64),
        )
        .with_columns(pl.col("index").shift().over("opportunity_id").alias("before"))
        .join(
            deals.select(
                "opportunity_id",
                pl.col("stage").alias("deal_stage"),
                "status",
                "created",
                "closed",
                "entered",
                pl.col("amount").alias("deal_amount"),
                pl.col("expected_close_date").alias("deal_close_date"),
                "owner",
            ),
            on="opportunity_id",
        )
        .sort("line")
    )


@pytest.fixture(scope="module")
def followups(plain, deals) -> pl.DataFrame:
    return (
        read(plain, "followups")
        .with_row_index("line")
        .with_columns(instant("occurred_at").alias("at"))
        .join(
            deals.select(
                "opportunity_id", "created", "closed", pl.col("owner").alias("deal_owner")
            ),
            on="opportunity_id",
        )
        .sort("line")
    )


# the same seed, the same files


def test_the_same_seed_writes_the_same_bytes(tmp_path):
    spec = GenerateSpec(opportunities=50, seed=3, updates_per_opportunity=1.5)
    a, b = generated(tmp_path / "a", spec), generated(tmp_path / "b", spec)
    for table in TABLES:
        assert (a / f"{table}.csv").read_bytes() == (b / f"{table}.csv").read_bytes(), table


def test_another_seed_writes_other_deals_history_and_follow_ups(tmp_path):
    spec = GenerateSpec(opportunities=50, seed=3, updates_per_opportunity=1.5)
    a = generated(tmp_path / "a", spec)
    b = generated(
        tmp_path / "b", GenerateSpec(opportunities=50, seed=4, updates_per_opportunity=1.5)
    )
    for table in TABLES:
        assert (a / f"{table}.csv").read_bytes() != (b / f"{table}.csv").read_bytes(), table


def test_update_rows_leave_the_deals_and_follow_ups_as_they_were(plain, updated):
    """The updates are drawn after everything else: the same seed gives the same deals and
    follow-ups with or without them."""
    for table in ("opportunities", "followups"):
        assert (plain / f"{table}.csv").read_bytes() == (updated / f"{table}.csv").read_bytes()


# the rows asked for


def test_the_counts_returned_are_the_rows_written(tmp_path):
    counts = generate_exports(tmp_path, GenerateSpec(opportunities=60, seed=2))
    assert counts == {table: read(tmp_path, table).height for table in TABLES}
    assert counts["opportunities"] == 60


@pytest.mark.parametrize(
    ("per_deal", "low", "high"),
    [
        # 300 deals: a Poisson total of mean 300 × F, within five of its standard deviations
        (5.0, 1500 - 5 * 38.7, 1500 + 5 * 38.7),
        (0.5, 150 - 5 * 12.2, 150 + 5 * 12.2),
    ],
)
def test_follow_ups_average_the_number_asked_per_deal(tmp_path, per_deal, low, high):
    spec = GenerateSpec(opportunities=300, seed=7, followups_per_opportunity=per_deal)
    counts = generate_exports(tmp_path, spec)
    assert low <= counts["followups"] <= high


def test_no_follow_ups_asked_writes_their_header_only(tmp_path):
    counts = generate_exports(tmp_path, GenerateSpec(opportunities=30, followups_per_opportunity=0))
    assert counts["followups"] == 0
    assert (tmp_path / "followups.csv").read_text(encoding="utf-8") == (
        "followup_id,opportunity_id,occurred_at,channel,summary,customer_feedback,"
        "next_action,next_action_due,owner\n"
    )


def test_update_rows_average_the_number_asked_per_deal(plain, updated):
    """300 deals at 2.4: a Poisson total of mean 720 and standard deviation 26.8."""
    added = read(updated, "stage_history").height - read(plain, "stage_history").height
    assert 720 - 5 * 26.8 <= added <= 720 + 5 * 26.8


def test_update_rows_keep_every_stage_entry_as_it_was(plain, updated):
    kept = Counter(read(plain, "stage_history").iter_rows())
    assert kept - Counter(read(updated, "stage_history").iter_rows()) == Counter()


# every row valid


@pytest.mark.parametrize("export", ["plain", "updated", "chunked"])
def test_every_generated_row_passes_the_projects_checks(request, export):
    folder = request.getfixturevalue(export)
    checked = check_inputs(read_inputs(folder, RunSettings(timezone="Asia/Shanghai")))
    assert {table: checked.quality[table]["rows_quarantined"] for table in TABLES} == {
        "opportunities": 0,
        "stage_history": 0,
        "followups": 0,
    }
    assert {table: checked.quality[table]["rows_valid"] for table in TABLES} == {
        table: read(folder, table).height for table in TABLES
    }


# ids and chunks


def test_deal_ids_are_numbered_from_one_in_seven_digits(deals):
    assert deals["opportunity_id"].to_list() == [f"OPP-{i:07d}" for i in range(1, 301)]


def test_chunks_continue_the_numbering_under_one_header(chunked):
    assert read(chunked, "opportunities")["opportunity_id"].to_list() == [
        f"OPP-{i:07d}" for i in range(1, 101)
    ]
    for table in TABLES:
        lines = (chunked / f"{table}.csv").read_text(encoding="utf-8").splitlines()
        assert sum(line == lines[0] for line in lines) == 1, table


def test_follow_up_ids_number_each_deals_follow_ups_from_one(followups):
    ranks = pl.int_range(1, pl.len() + 1).over("opportunity_id").cast(pl.String)
    expected = pl.concat_str(pl.lit("F-"), pl.col("opportunity_id"), pl.lit("-"), ranks)
    assert followups.filter(pl.col("followup_id") != expected).height == 0
    assert followups["followup_id"].n_unique() == followups.height


# deals


def test_deals_are_created_from_the_start_to_a_day_before_the_export_in_id_order(deals):
    start = datetime(2025, 3, 31, 16, tzinfo=UTC)  # 2025-04-01 00:00 in Shanghai
    created = deals["created"]
    assert created.min() >= start
    assert created.max() < EXPORT_AT - timedelta(days=1)
    assert created.is_sorted()


def test_times_are_written_with_the_offset_of_the_zone_asked(tmp_path):
    spec = GenerateSpec(opportunities=100, seed=7, timezone="Europe/Berlin")
    created = read(generated(tmp_path, spec), "opportunities")["created_at"]
    assert set(created.str.slice(-6).to_list()) == {"+01:00", "+02:00"}  # winter and summer


def test_times_are_written_in_the_exports_zone_by_default(deals):
    stamps = pl.concat([deals["created_at"], deals["stage_entered_at"], deals["closed_at"]])
    assert set(stamps.drop_nulls().str.slice(-6).to_list()) == {"+08:00"}


def test_won_deals_are_closed_in_the_won_or_retention_stage(deals):
    won = deals.filter(pl.col("status") == "won")
    assert won.height > 0
    assert won["closed"].null_count() == 0 and won["lost_reason"].null_count() == won.height
    assert set(won["stage"]) == {"won", "retention"}


def test_lost_deals_are_closed_with_a_reason_in_the_stage_they_were_lost_in(deals):
    lost = deals.filter(pl.col("status") == "lost")
    assert lost.height > 0
    assert lost["closed"].null_count() == 0 and lost["lost_reason"].null_count() == 0
    assert set(lost["stage"]) <= set(OPEN_STAGES)


def test_open_deals_have_neither_a_close_nor_a_lost_reason(deals):
    still_open = deals.filter(pl.col("status") == "open")
    assert still_open.height > 0
    assert still_open["closed"].null_count() == still_open.height
    assert still_open["lost_reason"].null_count() == still_open.height
    assert set(still_open["stage"]) <= set(OPEN_STAGES)


def test_every_deal_is_open_won_or_lost(deals):
    assert set(deals["status"]) == {"open", "won", "lost"}


def test_a_deal_closes_after_it_is_created(deals):
    closed = deals.filter(pl.col("closed").is_not_null())
    assert closed.filter(pl.col("closed") <= pl.col("created")).height == 0


def test_only_open_deals_a_week_in_their_stage_give_a_stall_reason(deals):
    stalled = (pl.col("status") == "open") & (
        pl.lit(EXPORT_AT) - pl.col("entered") > timedelta(days=7)
    )
    with_reason = deals.filter(pl.col("stall_reason").is_not_null())
    assert with_reason.height > 0
    assert with_reason.filter(~stalled).height == 0


def test_some_stalled_deals_give_no_reason(deals):
    stalled = (pl.col("status") == "open") & (
        pl.lit(EXPORT_AT) - pl.col("entered") > timedelta(days=7)
    )
    assert deals.filter(stalled & pl.col("stall_reason").is_null()).height > 0


def test_amounts_are_whole_thousands_and_a_few_deals_have_none(deals):
    amounts = deals["amount"].drop_nulls()
    assert (amounts % 1000 == 0).all()
    assert 0 < deals["amount"].null_count() < deals.height // 10


def test_the_expected_close_date_is_20_to_75_days_after_creation(deals):
    days = (
        deals["expected_close_date"].str.to_date("%Y-%m-%d") - deals["created"].dt.date()
    ).dt.total_days()
    assert days.min() >= 20 and days.max() <= 75


# stage history


def test_each_deals_history_starts_in_lead_when_the_deal_is_created(entries, deals):
    first = entries.group_by("opportunity_id", maintain_order=True).first()
    assert first.height == deals.height
    assert set(first["stage"]) == {"lead"}
    assert first.filter(pl.col("at") != pl.col("created")).height == 0


def test_history_rows_are_in_order_of_deal_time_and_stage(entries):
    key = entries.select("opportunity_id", "at", "index")
    assert key.equals(key.sort("opportunity_id", "at", "index", maintain_order=True))


def test_a_step_moves_one_stage_on_skips_one_or_falls_back_one(entries):
    steps = (entries["index"] - entries["before"]).drop_nulls()
    assert set(steps) == {-1, 1, 2}


def test_a_skip_never_passes_won(entries):
    skips = entries.filter(pl.col("index") - pl.col("before") == 2)
    assert skips.height > 0
    assert skips["index"].max() <= STAGES.index("won")


def test_a_deal_falls_back_at_most_once_and_never_to_lead(entries):
    back = entries.filter(pl.col("index") < pl.col("before"))
    assert back.height > 0
    assert back["opportunity_id"].is_unique().all()
    assert "lead" not in set(back["stage"])


def test_only_a_won_deal_moves_on_to_retention(entries):
    retention = entries.filter(pl.col("stage") == "retention")
    assert retention.height > 0
    assert set(retention["before"]) == {STAGES.index("won")}


def test_a_deals_last_entry_is_its_stage_since_it_entered_it(entries):
    last = entries.group_by("opportunity_id", maintain_order=True).last()
    assert last.filter(pl.col("stage") != pl.col("deal_stage")).height == 0
    assert last.filter(pl.col("at") != pl.col("entered")).height == 0


def test_a_won_deal_enters_won_at_its_close(entries):
    won = entries.filter(pl.col("stage") == "won")
    assert set(won["status"]) == {"won"}
    assert won.filter(pl.col("at") != pl.col("closed")).height == 0


def test_only_retention_follows_a_wins_close_20_to_90_days_after_it(entries):
    after = entries.filter(pl.col("closed").is_not_null() & (pl.col("at") > pl.col("closed")))
    assert set(after["stage"]) == {"retention"}
    days = (after["at"] - after["closed"]).dt.total_seconds() / 86_400
    assert days.min() >= 20 and days.max() <= 90


def test_no_entry_of_a_lost_deal_comes_at_or_after_its_close(entries):
    lost = entries.filter(pl.col("status") == "lost")
    assert lost.filter(pl.col("at") >= pl.col("closed")).height == 0


def test_no_entry_comes_after_the_export(entries):
    assert entries["at"].max() < EXPORT_AT


def test_from_proposal_on_a_row_gives_the_deals_amount(entries):
    later = entries.filter(pl.col("index") >= STAGES.index("proposal"))
    assert later.height > 0
    assert later.filter(pl.col("amount").ne_missing(pl.col("deal_amount"))).height == 0


def test_lead_rows_give_one_initial_amount_within_30_percent_of_the_deals(entries):
    lead = entries.filter((pl.col("stage") == "lead") & pl.col("deal_amount").is_not_null())
    per_deal = lead.group_by("opportunity_id").agg(
        pl.col("amount").n_unique().alias("amounts"),
        pl.col("amount").first(),
        pl.col("deal_amount").first(),
    )
    assert set(per_deal["amounts"]) == {1}
    ratio = per_deal["amount"] / per_deal["deal_amount"]
    # 0.7 to 1.3 of the amount, rounded to a thousand: 500 either way at the smallest amount
    slack = 500 / per_deal["deal_amount"].min()
    assert ratio.min() >= 0.7 - slack and ratio.max() <= 1.3 + slack
    assert (per_deal["amount"] != per_deal["deal_amount"]).sum() > per_deal.height // 2


def test_a_deal_without_an_amount_has_none_in_its_history(entries):
    unpriced = entries.filter(pl.col("deal_amount").is_null())
    assert unpriced.height > 0
    assert unpriced["amount"].null_count() == unpriced.height


def test_history_rows_repeat_the_deals_close_date_and_owner(entries):
    assert entries.filter(pl.col("expected_close_date") != pl.col("deal_close_date")).height == 0
    assert entries.filter(pl.col("changed_by") != pl.col("owner")).height == 0


# update rows


def test_an_update_restates_the_stage_the_deal_was_in_then(plain, updated):
    kept = read(plain, "stage_history").with_columns(instant("entered_at").alias("at"))
    every = read(updated, "stage_history").with_columns(instant("entered_at").alias("at"))
    added = every.join(kept, on=every.columns, how="anti", nulls_equal=True)
    assert 0 < added.height == every.height - kept.height
    then = added.sort("at").join_asof(
        kept.sort("at").select("opportunity_id", "at", pl.col("stage").alias("stage_then")),
        on="at",
        by="opportunity_id",
        strategy="backward",
    )
    assert then.filter(pl.col("stage") != pl.col("stage_then")).height == 0


def test_an_update_falls_within_the_deals_life(plain, updated, deals):
    kept = read(plain, "stage_history")
    every = read(updated, "stage_history")
    added = every.join(kept, on=kept.columns, how="anti", nulls_equal=True)
    assert 0 < added.height == every.height - kept.height
    within = added.with_columns(instant("entered_at").alias("at")).join(
        deals.select("opportunity_id", "created", "closed"), on="opportunity_id"
    )
    last = pl.coalesce("closed", pl.lit(EXPORT_AT - timedelta(hours=1)))
    assert within.filter((pl.col("at") < pl.col("created")) | (pl.col("at") > last)).height == 0


# follow-ups


def test_a_follow_up_falls_between_its_deals_creation_and_its_close(followups):
    last = pl.coalesce("closed", pl.lit(EXPORT_AT - timedelta(hours=1)))
    outside = followups.filter((pl.col("at") < pl.col("created")) | (pl.col("at") > last))
    assert outside.height == 0


def test_a_follow_up_is_made_by_its_deals_owner(followups):
    assert followups.filter(pl.col("owner") != pl.col("deal_owner")).height == 0


def test_a_follow_ups_channel_is_one_the_project_knows(followups):
    assert set(followups["channel"]) <= set(CHANNELS)


def test_a_follow_ups_next_action_is_due_2_to_14_days_after_it(followups):
    days = (
        followups["next_action_due"].str.to_date("%Y-%m-%d") - followups["at"].dt.date()
    ).dt.total_days()
    assert days.min() >= 2 and days.max() <= 14


# the helpers


def test_ranks_count_from_one_within_each_run_of_equal_values():
    assert _rank(np.array([3, 3, 5, 5, 5, 9])).tolist() == [1, 2, 1, 2, 3, 1]


def test_ranks_of_nothing_are_nothing():
    assert _rank(np.array([], dtype=np.int64)).tolist() == []


def test_a_timestamp_is_written_in_the_zone_with_its_offset_to_the_second():
    seconds = np.array([1_700_000_000.9, np.nan])  # 2023-11-14 22:13:20.9 UTC
    assert _timestamps(seconds, "Asia/Shanghai").to_list() == ["2023-11-15T06:13:20+08:00", None]


def test_a_date_is_the_day_of_the_instant_and_none_stays_none():
    seconds = np.array([1_699_956_800.0, np.nan])  # 2023-11-14 10:13:20 UTC
    assert _dates(seconds).to_list() == ["2023-11-14", None]


def test_an_update_takes_the_stage_of_the_deals_entry_before_it():
    """Deal 0: lead at 0, its life ending at 50 (before its proposal at 100): lead only.
    Deal 1: qualified at 200, negotiation at 250, its life ending at 300."""
    entries = (
        [np.array([0, 0, 1, 1])],
        [np.array([0, 2, 1, 3])],
        [np.array([0.0, 100.0, 200.0, 250.0])],
    )
    created, last = np.array([0.0, 200.0]), np.array([50.0, 300.0])
    opp, stage, time = _with_updates(np.random.default_rng(1), 10.0, entries, created, last)
    assert opp[0].tolist() == [0, 0, 1, 1] and stage[0].tolist() == [0, 2, 1, 3]
    u_opp, u_stage, u_time = opp[1], stage[1], time[1]
    assert (u_opp == 0).sum() > 0 and (u_opp == 1).sum() > 0
    assert all(
        (0 <= t < 50 and s == 0) if o == 0 else (200 <= t < 300 and s == (1 if t < 250 else 3))
        for o, s, t in zip(u_opp, u_stage, u_time, strict=True)
    )
    assert {1, 3} <= set(u_stage[u_opp == 1].tolist())


# reps moving expected close dates on (close_date_pushes)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> Path:
    """The plain export's seed with its reps moving expected close dates on."""
    spec = GenerateSpec(opportunities=300, seed=7, close_date_pushes=True)
    return generated(tmp_path_factory.mktemp("pushed"), spec)


def test_a_date_is_kept_until_an_open_entry_comes_within_a_week_then_moved_by_months():
    day = 86_400.0
    deal = np.array([0, 0, 0, 0, 1])
    expected = np.full(5, 100 * day)
    stage = np.array([0, 1, 2, 4, 0])  # lead, qualified, proposal, won; another deal's lead
    time = np.array([10, 95, 135, 140, 94]) * day
    # day 10: 90 days ahead, kept; day 95: within a week (after day 100 − 7), one month on:
    # 130; day 135: 42 days past 93, two months on: 160; the win keeps 160; deal 1's lead
    # on day 94 is a day inside the week: 130
    recorded = recorded_close_dates(deal, expected, stage, time) / day
    assert recorded.tolist() == [100, 130, 160, 160, 130]


def test_pushes_move_dates_only_later_and_change_nothing_else(plain, pushed):
    for table in ("opportunities", "stage_history"):
        before, after = read(plain, table), read(pushed, table)
        assert before.drop("expected_close_date").equals(after.drop("expected_close_date"))
        assert (after["expected_close_date"] >= before["expected_close_date"]).all()
    assert read(pushed, "followups").equals(read(plain, "followups"))
    moved = (
        read(pushed, "opportunities")["expected_close_date"]
        != read(plain, "opportunities")["expected_close_date"]
    )
    assert 0 < moved.sum() < moved.len()


def test_a_deals_own_date_is_the_latest_its_history_records(pushed):
    latest = (
        read(pushed, "stage_history")
        .group_by("opportunity_id", maintain_order=True)
        .agg(pl.col("expected_close_date").last())
    )
    deals = read(pushed, "opportunities").select("opportunity_id", "expected_close_date")
    assert deals.equals(latest)


def test_an_export_with_pushes_passes_the_projects_checks(pushed):
    checked = check_inputs(read_inputs(pushed, RunSettings(timezone="Asia/Shanghai")))
    assert all(checked.quality[table]["rows_quarantined"] == 0 for table in TABLES)
