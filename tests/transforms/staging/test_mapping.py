"""Source mapping: a file's rows under canonical names, CRM flags as a status, ids built from
several columns, stage-date columns and dated snapshots as stage history, and the rows of
several files as one numbered table. Every value stays a string here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from funnel_reports.schemas.vocabulary import READ_REASON
from funnel_reports.transforms.staging.layout import InputFile, SourceTable, UnusableInputError
from funnel_reports.transforms.staging.mapping import (
    SNAPSHOT,
    canonical_rows,
    canonical_tables,
    composite_id,
    dated_stage_history,
    flags_to_status,
    hubspot_stage,
    latest_observations,
    mapped_column,
    numbered,
    snapshot_history,
)
from funnel_reports.transforms.staging.presets import Preset, TableMatch, match_header
from tests.helpers import raw_frame

SEP = " ␟ "  # COMPOSITE_SEPARATOR, as an id built from parts shows it

MINI = Preset(
    "mini",
    "mini layout",
    {
        "opportunities": {
            "opportunity_id": ("id",),
            "stage": ("stage",),
            "created_at": ("created",),
            "amount": ("amount", "value"),
            "owner": ("owner",),
            "is_won": ("won?",),
            "is_closed": ("closed?",),
            "date_entered": ("Date entered *",),
        },
        "followups": {
            "opportunity_id": ("id",),
            "occurred_at": ("occurred",),
            "channel": ("channel",),
        },
    },
)


def rows(*records: dict[str, Any]) -> pl.DataFrame:
    """A file's rows as the reader gives them: strings, `_row` from 1 and `_line` (the header
    on line 1)."""
    frame = raw_frame(list(records))
    return frame.with_columns((pl.col("_row") + 1).alias("_line"))


def strings(**columns: list[str | None]) -> pl.LazyFrame:
    return pl.LazyFrame(columns, schema=dict.fromkeys(columns, pl.String))


def status_of(**flags: list[str | None]) -> list[str | None]:
    return flags_to_status(strings(**flags)).collect()["status"].to_list()


def one(expr: pl.Expr, **columns: list[str | None]) -> list[str | None]:
    return strings(**columns).select(expr.alias("out")).collect()["out"].to_list()


def source_file(table: str, name: str, frame: pl.DataFrame, preset: Preset = MINI) -> InputFile:
    header = [c for c in frame.columns if c not in ("_row", "_line")]
    source = SourceTable(Path(name), None, "", "utf-8", ",", header, frame)
    return InputFile(table, source, match_header(preset, table, header))


# --- CRM flags as a status


def test_a_won_flag_makes_a_won_deal() -> None:
    assert status_of(is_won=["true"], is_closed=["true"]) == ["won"]


def test_a_closed_deal_not_won_is_lost() -> None:
    assert status_of(is_won=["false"], is_closed=["true"]) == ["lost"]


def test_a_closed_deal_with_a_blank_won_flag_is_lost() -> None:
    assert status_of(is_won=[""], is_closed=["yes"]) == ["lost"]


def test_a_deal_neither_won_nor_closed_is_open() -> None:
    assert status_of(is_won=["0"], is_closed=["0"]) == ["open"]


def test_a_won_flag_alone_that_says_no_means_open() -> None:
    assert status_of(is_won=["no"]) == ["open"]


def test_a_closed_flag_alone_that_says_yes_means_lost() -> None:
    assert status_of(is_closed=["1"]) == ["lost"]


def test_blank_flags_leave_the_status_to_the_stage() -> None:
    assert status_of(is_won=[" "], is_closed=[None]) == [None]


def test_a_null_word_flag_is_blank_not_unreadable() -> None:
    assert status_of(is_won=["N/A"], is_closed=["true"]) == ["lost"]


def test_an_unreadable_flag_becomes_a_status_naming_it() -> None:
    """A status nobody can read: the row is then quarantined for it, the flag shown."""
    assert status_of(is_won=["maybe"], is_closed=["true"]) == ["is_won=maybe"]


def test_a_status_column_wins_over_the_flags() -> None:
    frame = flags_to_status(strings(status=["open", "  "], is_won=["true", "true"])).collect()
    assert frame["status"].to_list() == ["open", "won"]  # a blank status gives way


def test_the_flags_are_dropped_once_read() -> None:
    frame = flags_to_status(strings(opportunity_id=["A"], is_won=["1"], is_closed=["1"]))
    assert frame.collect_schema().names() == ["opportunity_id", "status"]


def test_rows_without_flags_are_left_as_they_are() -> None:
    frame = strings(opportunity_id=["A"], status=[" won "])
    assert flags_to_status(frame).collect().equals(frame.collect())


# --- ids from several columns, and a column from several headers


def test_a_composite_id_joins_its_trimmed_parts() -> None:
    assert one(composite_id(["a", "b"]), a=[" Acme "], b=["Deal 1"]) == [f"Acme{SEP}Deal 1"]


def test_a_blank_part_of_a_composite_id_stays_in_place_as_empty() -> None:
    assert one(composite_id(["a", "b"]), a=["  "], b=["Deal 1"]) == [f"{SEP}Deal 1"]


def test_a_composite_id_of_blank_parts_only_is_missing() -> None:
    assert one(composite_id(["a", "b"]), a=[""], b=[None]) == [None]


def test_a_column_from_one_header_is_its_values_as_they_are() -> None:
    match = TableMatch("opportunities", {"owner": ["Rep"]}, [])
    assert one(mapped_column(match, "owner"), Rep=[" Li Na "]) == [" Li Na "]


def test_a_column_from_several_headers_takes_the_first_non_blank_value() -> None:
    """Trimmed; a null word gives way to a later value, and stays (to be read and counted as
    a null word) when no later header has one."""
    match = TableMatch("opportunities", {"amount": ["amount", "value"]}, [])
    values = one(
        mapped_column(match, "amount"),
        amount=[" 10 ", "", "N/A", "N/A", None],
        value=["20", "20", "30", "", None],
    )
    assert values == ["10", "20", "30", "N/A", None]


def test_a_column_with_a_composite_is_the_id_its_parts_build() -> None:
    match = TableMatch(
        "opportunities", {"opportunity_id": ["a", "b"]}, [], {"opportunity_id": ("a", "b")}
    )
    assert one(mapped_column(match, "opportunity_id"), a=["X"], b=["1"]) == [f"X{SEP}1"]


# --- a file's rows under canonical names


def test_a_file_s_rows_take_canonical_names_with_their_row_line_and_file() -> None:
    file = source_file(
        "followups",
        "calls.csv",
        rows({"id": "A", "occurred": "2024-06-01", "channel": "phone", "mood": "good"}),
    )
    frame = canonical_rows(file.source.rows.lazy(), file.match, "calls.csv").collect()
    assert frame.columns == ["_row", "_line", "_file", "opportunity_id", "occurred_at", "channel"]
    assert frame.row(0) == (1, 2, "calls.csv", "A", "2024-06-01", "phone")
    assert (frame["_row"].dtype, frame["_line"].dtype, frame["_file"].dtype) == (
        pl.Int64,
        pl.Int64,
        pl.Categorical,
    )


def test_a_header_the_reader_left_out_maps_to_nothing() -> None:
    """`owner` is mapped but not read; of amount's two headers only `value` was read."""
    match = match_header(
        MINI, "opportunities", ["id", "stage", "created", "amount", "value", "owner"]
    )
    frame = rows({"id": "A", "stage": "lead", "created": "2024-06-01", "value": "7"})
    mapped = canonical_rows(frame.lazy(), match, "deals.csv").collect()
    assert mapped.columns == [
        "_row",
        "_line",
        "_file",
        "opportunity_id",
        "stage",
        "created_at",
        "amount",
    ]
    assert mapped["amount"].to_list() == ["7"]


def test_the_reader_s_reason_for_a_row_is_kept() -> None:
    frame = rows({"id": "A", "occurred": "x", "channel": "y"}).with_columns(
        pl.lit("row: wrong number of fields").alias(READ_REASON)
    )
    match = match_header(MINI, "followups", ["id", "occurred", "channel"])
    mapped = canonical_rows(frame.lazy(), match, "calls.csv").collect()
    assert mapped[READ_REASON].to_list() == ["row: wrong number of fields"]


def test_an_opportunity_file_s_flags_become_its_status() -> None:
    file = source_file(
        "opportunities",
        "deals.csv",
        rows({"id": "A", "stage": "lead", "created": "2024-06-01", "won?": "no", "closed?": "yes"}),
    )
    mapped = canonical_rows(file.source.rows.lazy(), file.match, "deals.csv").collect()
    assert mapped["status"].to_list() == ["lost"]
    assert "is_won" not in mapped.columns and "is_closed" not in mapped.columns


def test_stage_date_columns_are_no_column_of_the_opportunities() -> None:
    file = source_file(
        "opportunities",
        "deals.csv",
        rows({"id": "A", "stage": "lead", "created": "x", "Date entered Demo (Sales)": "y"}),
    )
    mapped = canonical_rows(file.source.rows.lazy(), file.match, "deals.csv").collect()
    assert mapped.columns == ["_row", "_line", "_file", "opportunity_id", "stage", "created_at"]


# --- stage-date columns as stage history


@pytest.mark.parametrize(
    ("header", "stage"),
    [
        ('Date entered "Closed Won (Sales Pipeline)"', "Closed Won"),
        ("Date entered Appointment Scheduled (Sales Pipeline)", "Appointment Scheduled"),
        ('date entered "Contract Sent"', "Contract Sent"),
        ('Date entered "Demo (EU) (Sales Pipeline)"', "Demo (EU)"),
    ],
)
def test_a_hubspot_date_entered_header_names_its_stage_without_the_pipeline(
    header: str, stage: str
) -> None:
    assert hubspot_stage(header) == stage


def test_each_filled_stage_date_is_a_history_row_in_line_then_header_order() -> None:
    """A blank and a null word are no entry; "Demo On" sorts before "Won On"."""
    frame = rows(
        {"id": "A", "Won On": "2024-06-20", "Demo On": "2024-06-01"},
        {"id": "B", "Won On": "", "Demo On": "N/A"},
        {"id": "C", "Won On": None, "Demo On": "2024-06-05"},
    )
    history = dated_stage_history(
        frame.lazy(),
        {"Won On": "won", "Demo On": "proposal"},
        "deals.csv (stage dates)",
        id_column=pl.col("id"),
    ).collect()
    assert history.columns == ["_row", "_line", "_file", "opportunity_id", "stage", "entered_at"]
    assert history.drop("_file").rows() == [
        (1, 2, "A", "proposal", "2024-06-01"),
        (2, 2, "A", "won", "2024-06-20"),
        (3, 4, "C", "proposal", "2024-06-05"),
    ]
    assert set(history["_file"].cast(pl.String)) == {"deals.csv (stage dates)"}


# --- dated snapshots


def observations(*records: tuple[str, str, str, str | None]) -> pl.LazyFrame:
    """Observed opportunity rows: (id, stage, snapshot, stage_entered_at)."""
    return pl.LazyFrame(
        {
            "_source_row": list(range(1, len(records) + 1)),
            "_line": [i + 2 for i in range(len(records))],
            "_file": [f"{r[2]}/deals.csv" for r in records],
            "opportunity_id": [r[0] for r in records],
            "stage": [r[1] for r in records],
            "stage_entered_at": [r[3] for r in records],
            "amount": ["100"] * len(records),
            "owner": ["Li"] * len(records),
            SNAPSHOT: [r[2] for r in records],
        }
    )


def test_every_observation_is_a_history_row_at_its_snapshot_s_date() -> None:
    seen = observations(
        ("A", "lead", "2024-05-31", None),
        ("A", "proposal", "2024-06-30", None),
        ("B", "lead", "2024-06-30", None),
    )
    history = snapshot_history(seen).collect()
    assert history.select("opportunity_id", "stage", "entered_at").rows() == [
        ("A", "lead", "2024-05-31"),
        ("A", "proposal", "2024-06-30"),
        ("B", "lead", "2024-06-30"),
    ]


def test_a_deal_s_first_observation_is_entered_at_its_stage_date() -> None:
    """Only the first: a later snapshot's stage_entered_at is the export's, not news."""
    seen = observations(
        ("A", "lead", "2024-05-31", "2024-05-20"),
        ("A", "proposal", "2024-06-30", "2024-06-10"),
        ("B", "lead", "2024-06-30", None),
    )
    history = snapshot_history(seen).collect()
    assert history.select("entered_at", "stage_entered_at").rows() == [
        ("2024-05-20", "2024-05-20"),
        ("2024-06-30", None),
        ("2024-06-30", None),  # no stage date: the snapshot's
    ]


def test_a_snapshot_history_row_keeps_what_dates_a_close_and_its_snapshot() -> None:
    history = snapshot_history(observations(("A", "lead", "2024-05-31", None))).collect()
    assert history.columns == [
        "_source_row",
        "_line",
        "_file",
        "opportunity_id",
        "stage",
        "entered_at",
        "amount",
        "stage_entered_at",
        SNAPSHOT,
    ]  # owner is no history column


def test_without_stage_dates_the_history_has_no_such_column() -> None:
    seen = observations(("A", "lead", "2024-05-31", None)).drop("stage_entered_at")
    assert "stage_entered_at" not in snapshot_history(seen).collect_schema().names()


def test_each_deal_s_opportunity_is_its_row_of_the_latest_snapshot_it_is_in() -> None:
    seen = observations(
        ("A", "lead", "2024-05-31", None),
        ("A", "proposal", "2024-06-30", None),
        ("B", "lead", "2024-05-31", None),  # gone from the June export
    )
    latest = latest_observations(seen).collect()
    assert latest.select("opportunity_id", "stage").rows() == [("A", "proposal"), ("B", "lead")]
    assert SNAPSHOT not in latest.columns


# --- the rows of several files, numbered


def test_numbered_rows_count_from_one_in_front() -> None:
    frame = numbered(pl.DataFrame({"opportunity_id": ["A", "B"]}))
    assert frame.rows() == [(1, "A"), (2, "B")]
    assert frame.schema["_row"] == pl.Int64


def test_two_files_of_one_table_are_numbered_together_each_keeping_its_own_row() -> None:
    first = source_file("followups", "a.csv", rows({"id": "A", "occurred": "x", "channel": "y"}))
    second = source_file(
        "followups",
        "b.csv",
        rows(*[{"id": i, "occurred": "x", "channel": "y"} for i in ("B", "C")]),
    )
    tables = canonical_tables([first, second])
    assert list(tables) == ["followups"]  # a table no file feeds is not there
    frame = tables["followups"]
    assert frame.select("_row", "_source_row", "_file", "opportunity_id").rows() == [
        (1, 1, "a.csv", "A"),
        (2, 1, "b.csv", "B"),
        (3, 2, "b.csv", "C"),
    ]


def test_hubspot_date_entered_columns_become_stage_history_rows() -> None:
    entered = 'Date entered "Contract Sent (Sales Pipeline)"'
    deals = source_file(
        "opportunities",
        "deals.csv",
        rows({"id": "A", "stage": "x", "created": "2024-06-01", entered: "2024-06-09"}),
    )
    tables = canonical_tables([deals])
    history = tables["stage_history"]
    assert history.select(
        "_row", "_source_row", "opportunity_id", "stage", "entered_at"
    ).rows() == [(1, 1, "A", "Contract Sent", "2024-06-09")]
    assert history["_file"].cast(pl.String).to_list() == ["deals.csv (Date entered)"]


def test_stage_date_columns_of_the_settings_become_stage_history_rows() -> None:
    deals = source_file(
        "opportunities",
        "deals.csv",
        rows({"id": "A", "stage": "won", "created": "2024-06-01", "Signed": "2024-06-25"}),
    )
    history = canonical_tables([deals], {"won": "Signed"})["stage_history"]
    assert history.select("opportunity_id", "stage", "entered_at").rows() == [
        ("A", "won", "2024-06-25")
    ]
    assert history["_file"].cast(pl.String).to_list() == ["deals.csv (stage dates)"]


def test_a_stage_date_column_the_file_lacks_stops_the_run() -> None:
    deals = source_file(
        "opportunities", "deals.csv", rows({"id": "A", "stage": "won", "created": "x"})
    )
    with pytest.raises(UnusableInputError) as refused:
        canonical_tables([deals], {"won": "Signed", "proposal": "Quoted"})
    assert str(refused.value) == (
        "deals.csv: has no column 'Signed', 'Quoted' named in [source.stage_dates]; its "
        "columns are id, stage, created"
    )


def test_two_unreadable_flags_are_quoted_apart():
    """Both of Salesforce's flags unreadable: the status says each, not the two run together."""
    status = (
        flags_to_status(pl.LazyFrame({"is_won": ["maybe"], "is_closed": ["perhaps"]}))
        .collect()["status"]
        .to_list()
    )
    assert status == ["is_won=maybe, is_closed=perhaps"]
