"""The benchmark's DuckDB SQL figures against the project's own: an independent oracle of the
core figures (deal states, funnel, conversion, dwell, stalls, win probabilities, weighted
pipeline, headline figures), on a generated export and on one edited to hold the cases the
generator never writes; and a smoke test of `python -m benchmarks.benchmark`."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from benchmarks.benchmark import (
    PERIOD,
    disagreements,
    duckdb_core_figures,
    main,
    project_core_figures,
)
from funnel_reports.flows.generate import GenerateSpec, generate_exports

FIGURES = ("rows", "deal_states", "funnel", "conversion", "dwell", "stalls", "forecast", "kpis")
PERIODS = (PERIOD, "2026-03", "2026-Q2")
STAMP = "%Y-%m-%dT%H:%M:%S%:z"
ZONE = "Asia/Shanghai"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated")
    generate_exports(
        folder,
        GenerateSpec(
            opportunities=2000, seed=7, followups_per_opportunity=3, updates_per_opportunity=2.4
        ),
    )
    return folder


def instant(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(STAMP, time_zone="UTC")


def stamp(value: pl.Expr) -> pl.Expr:
    return value.dt.convert_time_zone(ZONE).dt.strftime(STAMP)


def ids(opportunities: pl.DataFrame, condition: pl.Expr, n: int, taken: set[str]) -> list[str]:
    """`n` opportunity ids meeting `condition`, none already taken (then taken)."""
    chosen = [
        i for i in opportunities.filter(condition)["opportunity_id"].to_list() if i not in taken
    ][:n]
    assert len(chosen) == n, f"the generated export has too few deals for {condition}"
    taken.update(chosen)
    return chosen


def edit_export(source: Path, target: Path) -> None:
    """The generated export with what the generator never writes, each case on a few deals,
    every row still valid: deals without history, won deals kept in an open stage (Pipedrive),
    a history of only a loss row, deals exported as lost, loss rows with the close time missing
    or before the last entry, reversed wins, empty statuses, open deals with a close time,
    blank and padded stall reasons, entries at the same instant (same stage: the file order
    decides the amount; other stages: the stage order), and history that starts after the
    period although the deal was created before it."""
    target.mkdir()
    shutil.copy(source / "followups.csv", target / "followups.csv")
    opps = pl.read_csv(source / "opportunities.csv", infer_schema=False)
    history = pl.read_csv(source / "stage_history.csv", infer_schema=False)
    taken: set[str] = set()
    status, stage = pl.col("status"), pl.col("stage")
    is_open, is_won, is_lost = status == "open", status == "won", status == "lost"
    entries = history.group_by("opportunity_id").agg(
        pl.col("stage").n_unique().alias("stages"),
        instant("entered_at").max().alias("last_entry"),
        instant("entered_at").min().alias("first_entry"),
    )
    opps_with = opps.join(entries, on="opportunity_id", how="left")
    several = pl.col("stages") >= 2

    has_reason = is_open & pl.col("stall_reason").is_not_null()
    blank_reason = ids(opps_with, has_reason, 4, taken)
    padded_reason = ids(opps_with, has_reason, 4, taken)
    no_history = [
        *ids(opps_with, is_open, 12, taken),
        *ids(opps_with, is_won & (stage == "won"), 8, taken),
        *ids(opps_with, is_won & (stage == "retention"), 8, taken),
        *ids(opps_with, is_lost, 12, taken),
    ]
    pipedrive = ids(opps_with, is_won & (stage == "won"), 10, taken)
    only_loss = ids(opps_with, is_lost, 8, taken)
    exported_lost = ids(opps_with, is_lost & several, 12, taken)
    loss_row = ids(opps_with, is_lost, 10, taken)
    loss_missing = ids(opps_with, is_lost & several, 8, taken)
    loss_early = ids(
        opps_with,
        is_lost & several & (instant("closed_at") - pl.duration(days=2) > pl.col("first_entry")),
        6,
        taken,
    )
    reversed_wins = ids(opps_with, is_won & (stage == "won") & several, 10, taken)
    blank_status = [
        *ids(opps_with, is_open, 8, taken),
        *ids(opps_with, is_won & pl.col("stage").is_in(["won", "retention"]), 8, taken),
    ]
    open_closed = ids(opps_with, is_open, 8, taken)
    same_stage_tie = ids(opps_with, pl.col("stages").is_not_null(), 15, taken)
    stage_tie = ids(opps_with, several, 12, taken)
    late_history = ids(opps_with, is_open, 5, taken)

    def where(chosen: list[str]) -> pl.Expr:
        return pl.col("opportunity_id").is_in(chosen)

    # opportunities
    opps = opps.with_columns(
        pl.when(where(pipedrive)).then(pl.lit("negotiation")).otherwise(stage).alias("stage"),
        # half of the Pipedrive deals without the time they entered their stage
        pl.when(where(pipedrive[::2]))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(pl.col("stage_entered_at"))
        .alias("stage_entered_at"),
    ).with_columns(
        pl.when(where(exported_lost)).then(pl.lit("lost")).otherwise(stage).alias("stage"),
        pl.when(where(blank_status) | where(exported_lost[::3]))
        .then(pl.lit(""))
        .when(where(reversed_wins))
        .then(pl.lit("lost"))
        .otherwise(status)
        .alias("status"),
        pl.when(where(loss_missing))
        .then(pl.lit(None, dtype=pl.String))
        .when(where(loss_early))
        .then(stamp(instant("created_at").clip(instant("closed_at") - pl.duration(days=60))))
        .when(where(open_closed))
        .then(stamp(instant("created_at") + pl.duration(days=2)))
        .when(where(reversed_wins))
        .then(stamp(instant("closed_at") + pl.duration(days=3, hours=5)))
        .otherwise(pl.col("closed_at"))
        .alias("closed_at"),
        pl.when(where(blank_reason))
        .then(pl.lit("  \t "))
        .when(where(padded_reason))
        .then(pl.concat_str(pl.lit("  "), pl.col("stall_reason"), pl.lit(" ")))
        .otherwise(pl.col("stall_reason"))
        .alias("stall_reason"),
    )

    # stage history
    closed = opps_with.select("opportunity_id", instant("closed_at").alias("_closed"))
    with_closed = history.join(closed, on="opportunity_id", how="left")
    loss_rows = (
        with_closed.filter(where(only_loss + loss_row + loss_early))
        .group_by("opportunity_id", maintain_order=True)
        .agg(pl.col("_closed").first())
        .select(
            "opportunity_id",
            pl.lit("lost").alias("stage"),
            stamp(pl.col("_closed")).alias("entered_at"),
        )
    )
    missing_loss_rows = (
        history.filter(where(loss_missing))
        .group_by("opportunity_id", maintain_order=True)
        .agg(instant("entered_at").max().alias("_last"))
        .select(
            "opportunity_id",
            pl.lit("lost").alias("stage"),
            stamp(pl.col("_last") + pl.duration(hours=7)).alias("entered_at"),
        )
    )
    # a copy of each deal's last row at the same instant, with another amount, at the end
    same_instant = (
        history.filter(where(same_stage_tie))
        .group_by("opportunity_id", maintain_order=True)
        .agg(pl.all().sort_by(instant("entered_at")).last())
        .with_columns(
            (pl.col("amount").cast(pl.Float64).fill_null(0) + 7000).cast(pl.String).alias("amount")
        )
    )
    first_entry = pl.col("entered_at").sort_by(instant("entered_at")).first()
    second_stage = pl.col("stage") != pl.col("stage").sort_by(instant("entered_at")).first()
    history = history.filter(~where(no_history + pipedrive + only_loss)).with_columns(
        # the first entry into the deal's second stage at the instant of its first entry
        pl.when(
            where(stage_tie)
            & second_stage.over("opportunity_id")
            & (
                instant("entered_at")
                == instant("entered_at").filter(second_stage).min().over("opportunity_id")
            )
        )
        .then(first_entry.over("opportunity_id"))
        .when(where(late_history))
        .then(pl.lit("2026-10-05T09:00:00+08:00"))
        .otherwise(pl.col("entered_at"))
        .alias("entered_at")
    )
    history = pl.concat(
        [history, loss_rows, missing_loss_rows, same_instant], how="diagonal_relaxed"
    ).select(history.columns)
    opps.write_csv(target / "opportunities.csv")
    history.write_csv(target / "stage_history.csv")


@pytest.fixture(scope="module")
def edited(generated, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("edited") / "export"
    edit_export(generated, folder)
    return folder


def both(folder: Path, period: str) -> tuple[dict, dict]:
    project = project_core_figures(str(folder), period=period)
    assert project["rows_quarantined"] == 0, "the project quarantined rows of this export"
    return project["figures"], duckdb_core_figures(str(folder), period=period)["figures"]


@pytest.fixture(scope="module")
def figures(generated, edited) -> dict[tuple[str, str], tuple[dict, dict]]:
    return {
        (name, period): both(folder, period)
        for name, folder in (("generated", generated), ("edited", edited))
        for period in PERIODS
    }


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("export", ["generated", "edited"])
@pytest.mark.parametrize("figure", FIGURES)
def test_duckdb_sql_computes_the_projects_core_figures(figures, export, period, figure):
    project, duckdb = figures[(export, period)]
    different = disagreements(project[figure], duckdb[figure], figure)
    assert not different, (
        f"{export} export, period {period}: the project and DuckDB SQL disagree on "
        + "; ".join(different[:10])
    )


def test_the_figures_compared_are_not_empty(figures):
    """Every state, stage and kind of figure is there to compare (not a vacuous agreement)."""
    project, _ = figures[("edited", PERIOD)]
    assert {s["state"] for s in project["deal_states"]} == {"open", "won", "lost"}
    assert all(row["count"] > 0 for row in project["funnel"])
    assert all(row["cohort_size"] > 0 for row in project["conversion"])
    assert project["conversion"][-1]["lost"] > 0, "no reversed win in the won -> retention row"
    assert all(row["km_median_days"] is not None for row in project["dwell"])
    assert project["stalls"]["stalled_count"] > 0 and project["stalls"]["reasons"]
    assert project["stalls"]["missing_reason_count"] > 0
    assert project["forecast"]["weighted_pipeline"] > 0
    assert project["kpis"]["won_count"] > 0 and project["kpis"]["pipeline_velocity"] > 0


def test_disagreements_name_the_figure_and_key():
    project = {"funnel": [{"stage": "lead", "count": 3, "amount": 1.0}], "p": 0.5, "n": None}
    other = {"funnel": [{"stage": "lead", "count": 4, "amount": 1.0 + 1e-12}], "p": 0.5, "n": 0}
    assert disagreements(project, other) == [
        "funnel[stage=lead].count: project 3, DuckDB 4",
        "n: project None, DuckDB 0",
    ]
    assert disagreements({"a": 1.0}, {"a": 1.0 + 1e-8}) == ["a: project 1.0, DuckDB 1.00000001"]
    assert disagreements({"a": True}, {"a": 1}) == ["a: project True, DuckDB 1"]


def test_the_benchmark_prints_the_ratio_of_the_project_to_duckdb(tmp_path, capsys):
    """`python -m benchmarks.benchmark` on a small export (a smoke test: the
    times are not tested), without the whole `funnel run` and the report flow's steps."""
    assert main(["--sizes", "2000", "--work", str(tmp_path), "--no-run", "--no-steps"]) == 0
    out = capsys.readouterr().out
    assert "proj/DuckDB" in out and "valid/read" in out
    assert "core figures: project " in out and "the figures agree" in out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("2,000"))
    assert row.split()[-2:] == ["yes", "—"]  # the figures agree; no run, no rerun to compare
