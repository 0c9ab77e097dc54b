"""Only the columns a figure or a check reads are read (issue 23): which ones, and that a
file read by those alone says the same of every record as the file read whole."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnel_reports.flows.io.readers import Limits, read_csv_file
from funnel_reports.schemas.vocabulary import READ_REASON
from funnel_reports.transforms.funnel_model import Lookup, RunSettings, SourceSettings
from funnel_reports.transforms.staging.layout import (
    InputFile,
    SourceTable,
    UnusableInputError,
    needed_headers,
)
from funnel_reports.transforms.staging.presets import TableMatch

HEADER = ["id", "stage", "created", "email", "notes", "account", "won on"]


def file_of(table: str, columns: dict[str, list[str]], **composites) -> InputFile:
    source = SourceTable(Path("deals.csv"), None, "", "utf-8", ",", HEADER, None)
    return InputFile(table, source, TableMatch(table, columns, [], composites))


def test_mapped_columns_a_figure_reads_and_nothing_else():
    deals = file_of(
        "opportunities",
        {
            "opportunity_id": ["id"],
            "stage": ["stage"],
            "created_at": ["created"],
            "contact_email": ["email"],  # a contact: never read
            "need_description": ["notes"],  # free text no figure reads
        },
    )
    # "account" and "won on" map to nothing
    assert needed_headers(deals, RunSettings(), ()) == ["id", "stage", "created"]


def test_composite_parts_stage_dates_and_lookup_keys_are_read():
    deals = file_of(
        "opportunities",
        {"stage": ["stage"], "created_at": ["created"]},
        opportunity_id=("id", "account"),
    )
    settings = RunSettings(source=SourceSettings(stage_dates={"won": "won on"}))
    lookup = Lookup(name="accounts", on="account", key="Id", columns={}, files=("Account.csv",))
    assert needed_headers(deals, settings, ()) == ["id", "stage", "created", "account", "won on"]
    assert "account" in needed_headers(file_of("opportunities", {}), RunSettings(), (lookup,))


def test_the_follow_ups_free_text_is_not_read():
    notes = file_of(
        "followups",
        {
            "opportunity_id": ["id"],
            "occurred_at": ["created"],
            "followup_id": ["stage"],
            "summary": ["notes"],
        },
    )
    assert needed_headers(notes, RunSettings(), ()) == ["id", "created"]


def reasons(path: Path, columns: list[str] | None) -> list[str | None]:
    rows = read_csv_file(path, None, Limits(), columns).rows
    return rows[READ_REASON].to_list() if READ_REASON in rows.columns else [None] * rows.height


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("1,a,x\n2,b,y,EXTRA\n3,c,z\n", "a wider record: the delimiters counted say so"),
        ("1,a,x\n2,b\n3,c,z\n", "a shorter record: its last value is missing"),
        ('1,a,x\n2,"b, quoted",y\n3,c,z\n', "a quote: parsed whole"),
        ("1,a,x\n\n3,c,z\n", "a blank line: records and lines differ"),
        ("1,a,x\n2,b,y\n3,c,z", "no line feed at the end"),
    ],
)
def test_a_file_read_by_some_columns_says_what_the_whole_read_says(tmp_path, body, why):
    path = tmp_path / "deals.csv"
    path.write_text("id,stage,notes\n" + body, encoding="utf-8")
    whole = read_csv_file(path, None, Limits())
    some = read_csv_file(path, None, Limits(), ["id", "stage"])
    assert some.unread == ("notes",), why
    assert some.rows.columns == [c for c in whole.rows.columns if c != "notes"], why
    assert reasons(path, ["id", "stage"]) == reasons(path, None), why
    assert some.rows.select("id", "stage", "_row", "_line").equals(
        whole.rows.select("id", "stage", "_row", "_line")
    ), why
    assert some.sha256 == whole.sha256


def test_a_wider_record_is_named_as_in_a_whole_read(tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text("id,stage,notes\n1,a,x\n2,b,y,EXTRA\n", encoding="utf-8")
    rows = read_csv_file(path, None, Limits(), ["id"]).rows
    assert rows.filter(pl.col(READ_REASON).is_not_null())["id"].to_list() == ["2"]
    assert rows[READ_REASON].drop_nulls().to_list() == [
        "row: wrong number of fields (got '4 fields where the header has 3')"
    ]


PLAIN = ["", "a", "b c", "7", "é", " "]
QUOTED = ['"q,uoted"', '"x""y"']


@st.composite
def csv_lines(draw):
    """A file's records: plain values only (the fast read's case) or quotes among them, with
    1 to 5 values a record where the header has 4."""
    values = st.sampled_from(PLAIN + (QUOTED if draw(st.booleans()) else []))
    records = st.lists(values, min_size=1, max_size=5).map(",".join)
    return draw(st.lists(records, min_size=1, max_size=8))


@settings(max_examples=80, deadline=None)
@given(
    csv_lines(),
    st.booleans(),
    st.sets(st.sampled_from(["id", "stage", "notes", "owner"]), min_size=1, max_size=3),
)
def test_any_file_read_by_some_columns_agrees_with_its_whole_read(lines, final_break, kept):
    """Whatever a file holds (quotes, records too wide or too short, blank lines), the
    columns read alone are the whole read's, with the same reasons on the same records."""
    import tempfile

    folder = Path(tempfile.mkdtemp())
    path = folder / "deals.csv"
    text = "id,stage,notes,owner\n" + "\n".join(lines) + ("\n" if final_break else "")
    path.write_text(text, encoding="utf-8")
    try:
        whole = read_csv_file(path, None, Limits())
    except UnusableInputError:  # a file no row of which fits: refused either way
        with pytest.raises(UnusableInputError):
            read_csv_file(path, None, Limits(), sorted(kept))
        return
    some = read_csv_file(path, None, Limits(), sorted(kept))
    shown = [c for c in whole.rows.columns if c not in some.unread]
    assert some.rows.columns == shown
    assert some.rows.equals(whole.rows.select(shown))
