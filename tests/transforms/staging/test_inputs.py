"""The one staging entry from the files' headers to canonical raw tables: what stops a run
before a row is read, the columns asked of each file, the export's date, each table typed
as soon as it is read, and dated snapshot folders as one export.

The folders are real files in a temporary folder, listed by their headers as a run lists
them (`flows.io.exports.export_folder`), with literal modification dates; their rows are read
through the run's own reader (`flows.io.readers.read_rows`), noting what it was asked."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.io.config import load_presets
from funnel_reports.flows.io.exports import export_folder
from funnel_reports.flows.io.readers import read_rows
from funnel_reports.transforms.funnel_model import Lookup, RunSettings, SourceSettings
from funnel_reports.transforms.staging.inputs import (
    Export,
    ExportFolder,
    export_date,
    needed_columns,
    read_needed,
    refuse_bad_snapshot_dates,
    refuse_empty,
    refuse_missing_named,
    staged_inputs,
    typed_at_once,
    with_export_date,
)
from funnel_reports.transforms.staging.layout import (
    InputFile,
    SourceTable,
    UnusableInputError,
)
from funnel_reports.transforms.staging.mapping import canonical_tables
from funnel_reports.transforms.staging.presets import canonical_preset, match_header

TODAY = date(2024, 7, 15)
CANONICAL = canonical_preset()
DEALS = (
    "opportunity_id,stage,created_at,amount,contact_email\n"
    "A,lead,2024-05-01,100,a@example.com\n"
    "B,proposal,2024-05-03,200,b@example.com\n"
)
CALLS = "opportunity_id,occurred_at,channel,summary\nA,2024-05-02,phone,first call\n"


class Reader:
    """The run's reader (`read_rows`), noting each file it was asked for and the columns."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, list[str] | None]] = []

    def __call__(self, table: SourceTable, columns: list[str] | None) -> SourceTable:
        self.asked.append((table.name, columns))
        return read_rows(table, None, None, columns)


def files(folder: Path, **texts: str) -> Path:
    """Files written into `folder`: name (dots as underscores: opportunities_csv) -> text."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (folder / name.replace("_csv", ".csv")).write_text(text, encoding="utf-8")
    return folder


def listed(path: Path, name: str | None = None, **modified: date) -> ExportFolder:
    """A folder by its headers, each file last modified on 2024-07-01 unless given
    (opportunities_csv=date(...))."""
    folder = export_folder(path, RunSettings(), name)
    days = {k.replace("_csv", ".csv"): v for k, v in modified.items()}
    return replace(
        folder, modified={p: days.get(p.name, date(2024, 7, 1)) for p in folder.modified}
    )


def table(name: str, *header: str, sheet: str | None = None) -> SourceTable:
    return SourceTable(Path("in") / name, sheet, "", "utf-8", ",", list(header), None)


def used_file(table_name: str, source: SourceTable) -> InputFile:
    return InputFile(table_name, source, match_header(CANONICAL, table_name, source.header))


# --- one folder, or dated snapshot folders


def test_an_export_of_its_own_files_is_no_set_of_snapshots() -> None:
    only = ExportFolder(Path("in"), [])
    export = Export(Path("in"), [only], TODAY)
    assert export.snapshots is False and export.latest is only


def test_an_export_of_dated_folders_is_a_set_of_snapshots_the_last_the_latest() -> None:
    folders = [ExportFolder(Path("in") / d, [], d) for d in ("2024-05-31", "2024-06-30")]
    export = Export(Path("in"), folders, TODAY)
    assert export.snapshots is True and export.latest is folders[1]


# --- what stops a run before a row is read


def test_a_file_named_in_source_files_that_is_not_there_stops_the_run() -> None:
    folder = ExportFolder(Path("in"), [table("opportunities.csv"), table("book.xlsx", sheet="x")])
    settings = RunSettings(source=SourceSettings(files={"opportunities": "deals.csv"}))
    with pytest.raises(UnusableInputError) as refused:
        refuse_missing_named(folder, settings)
    assert str(refused.value) == (
        f"{Path('in') / 'deals.csv'}: named for opportunities in [source.files] but not found; "
        "the folder holds opportunities.csv, book.xlsx[x]."
    )


def test_a_named_file_missing_from_an_empty_folder_says_it_holds_none() -> None:
    settings = RunSettings(source=SourceSettings(files={"followups": "calls.csv"}))
    with pytest.raises(UnusableInputError, match=r"the folder holds no CSV or XLSX file\.$"):
        refuse_missing_named(ExportFolder(Path("in"), []), settings)


def test_a_named_file_is_found_by_its_file_name_or_its_sheet() -> None:
    folder = ExportFolder(Path("in"), [table("deals.csv"), table("book.xlsx", sheet="calls")])
    files_named = {"opportunities": "deals.csv", "followups": "book.xlsx[calls]"}
    refuse_missing_named(folder, RunSettings(source=SourceSettings(files=files_named)))


def test_a_snapshot_folder_named_like_no_date_stops_the_run() -> None:
    folders = [ExportFolder(Path("exports") / "2024-06-31", [], "2024-06-31")]
    with pytest.raises(UnusableInputError) as refused:
        refuse_bad_snapshot_dates(Export(Path("exports"), folders, TODAY))
    assert str(refused.value) == (
        f"{Path('exports') / '2024-06-31'}: a snapshot folder named like a date that is none; "
        "rename it to the date its export was taken (YYYY-MM-DD)"
    )


def test_a_snapshot_folder_dated_after_today_stops_the_run() -> None:
    folders = [ExportFolder(Path("exports") / d, [], d) for d in ("2024-07-15", "2024-07-16")]
    with pytest.raises(UnusableInputError) as refused:
        refuse_bad_snapshot_dates(Export(Path("exports"), folders, TODAY))
    assert str(refused.value) == (
        f"{Path('exports') / '2024-07-16'}: a snapshot folder dated after today (2024-07-15); "
        "rename it to the date its export was taken"
    )


def test_a_snapshot_folder_dated_today_is_fine() -> None:
    folders = [ExportFolder(Path("exports") / "2024-07-15", [], "2024-07-15")]
    refuse_bad_snapshot_dates(Export(Path("exports"), folders, TODAY))


def test_an_opportunities_file_without_rows_stops_the_run() -> None:
    deals = used_file("opportunities", table("opportunities.csv", "opportunity_id"))
    with pytest.raises(UnusableInputError) as refused:
        refuse_empty([deals], lambda f: False)
    assert str(refused.value) == (
        f"{Path('in') / 'opportunities.csv'}: has a header but no rows, so the report would be "
        "all zeros; export it again, or name the file that holds the deals in funnel.toml: "
        '[source.files] opportunities = "<file>"'
    )


def test_other_tables_without_rows_stop_nothing() -> None:
    calls = used_file("followups", table("followups.csv", "opportunity_id"))
    deals = used_file("opportunities", table("opportunities.csv", "opportunity_id"))
    refuse_empty([calls], lambda f: False)
    refuse_empty([deals, calls], lambda f: f.table == "opportunities")


# --- the export's date


def test_the_export_s_date_is_the_newest_modification_of_the_files_read() -> None:
    folder = ExportFolder(
        Path("in"),
        [table("a.csv"), table("b.csv"), table("c.csv")],
        modified={
            Path("in/a.csv"): date(2024, 6, 1),
            Path("in/b.csv"): date(2024, 6, 20),
            Path("in/c.csv"): date(2024, 7, 10),  # not read
        },
    )
    assert export_date(folder, {"a.csv", "b.csv"}, TODAY) == date(2024, 6, 20)


def test_the_export_s_date_is_never_after_today() -> None:
    folder = ExportFolder(
        Path("in"), [table("a.csv")], modified={Path("in/a.csv"): date(2024, 8, 1)}
    )
    assert export_date(folder, {"a.csv"}, TODAY) == TODAY


def test_an_export_of_which_nothing_is_read_is_dated_today() -> None:
    assert export_date(ExportFolder(Path("in"), [table("a.csv")]), set(), TODAY) == TODAY


def test_the_export_s_date_bounds_the_dates_read_and_changes_nothing_else() -> None:
    settings = RunSettings(timezone="Asia/Shanghai")
    dated = with_export_date(settings, date(2024, 6, 30))
    assert dated.parse.export_date == date(2024, 6, 30)
    assert replace(dated, parse=settings.parse) == settings


# --- the columns asked of each file


def test_a_used_file_is_read_by_its_needed_headers_side_files_whole_others_not_at_all() -> None:
    """The contact e-mail is read for no figure; the rates and the first present file of a
    lookup are read whole; notes.csv is never read past its header."""
    deals = table("opportunities.csv", "opportunity_id", "stage", "created_at", "contact_email")
    rates = table("CurrencyType.csv", "IsoCode", "ConversionRate")
    accounts = table("Account.csv", "Id", "Industry")
    notes = table("notes.csv", "when", "what")
    lookup = Lookup("accounts", ("Accounts.csv", "Account.csv"), "account_id", "Id", {})
    columns = needed_columns(
        [deals, rates, accounts, notes],
        [used_file("opportunities", deals)],
        RunSettings(),
        (lookup,),
    )
    assert columns == {
        "opportunities.csv": ["opportunity_id", "stage", "created_at"],
        "CurrencyType.csv": None,
        "Account.csv": None,
    }


def test_only_the_files_named_and_not_yet_read_are_read(tmp_path: Path) -> None:
    folder = listed(files(tmp_path / "in", opportunities_csv=DEALS, followups_csv=CALLS))
    [calls, deals] = folder.tables  # in the order of their names
    already = read_rows(calls)
    reader = Reader()
    tables, used = read_needed(
        [already, deals],
        [used_file("opportunities", deals), used_file("followups", already)],
        {"opportunities.csv": ["opportunity_id", "stage"], "followups.csv": None},
        reader,
    )
    assert reader.asked == [("opportunities.csv", ["opportunity_id", "stage"])]
    assert tables[0] is already
    assert [set(f.source.rows.columns) for f in used] == [
        {"opportunity_id", "stage", "_row", "_line"},
        {"opportunity_id", "occurred_at", "channel", "summary", "_row", "_line"},
    ]


# --- a table typed as soon as it is read


def read_deals(tmp_path: Path) -> tuple[pl.DataFrame, list[InputFile]]:
    folder = listed(files(tmp_path / "in", opportunities_csv=DEALS))
    [deals] = folder.tables
    used = [used_file("opportunities", read_rows(deals))]
    return canonical_tables(used)["opportunities"], used


def test_a_table_typed_at_once_keeps_only_where_each_row_came_from(tmp_path: Path) -> None:
    raw, used = read_deals(tmp_path)
    kept, (typed, _), _ = typed_at_once("opportunities", raw, used, RunSettings())
    assert kept.columns == ["_source_row", "_line", "_file", "stage"]
    assert kept.select("_source_row", "_line", "stage").rows() == [
        (1, 2, "lead"),
        (2, 3, "proposal"),
    ]
    assert typed["created_at"].to_list() == [
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 3, tzinfo=UTC),
    ]
    assert typed["amount"].to_list() == [100.0, 200.0]


def test_a_table_typed_at_once_lets_its_files_text_go(tmp_path: Path) -> None:
    """Each row is read again from its file if it is quarantined: every column unread."""
    raw, used = read_deals(tmp_path)
    _, _, released = typed_at_once("opportunities", raw, used, RunSettings())
    [deals] = released
    assert deals.source.rows.columns == ["_line"]
    assert deals.source.unread == (
        "opportunity_id",
        "stage",
        "created_at",
        "amount",
        "contact_email",
    )


def test_a_table_with_rows_no_file_holds_keeps_its_text(tmp_path: Path) -> None:
    """HubSpot's "Date entered" columns make history rows that no history file holds."""
    text = (
        'opportunity_id,stage,created_at,Date entered "Demo (Sales Pipeline)"\n'
        "A,lead,2024-05-01,2024-05-09\n"
    )
    folder = listed(files(tmp_path / "in", deals_csv=text))
    [deals] = folder.tables
    hubspot = load_presets()["hubspot"].extended(CANONICAL)
    source = read_rows(deals)
    used = [
        InputFile("opportunities", source, match_header(hubspot, "opportunities", source.header))
    ]
    raw = canonical_tables(used)["stage_history"]
    kept, _, released = typed_at_once("stage_history", raw, used, RunSettings())
    assert kept.equals(raw)
    assert released == used


# --- one folder's export, staged


def test_a_folder_s_export_reads_the_deals_first_then_the_follow_ups_by_their_needed_columns(
    tmp_path: Path,
) -> None:
    folder = files(
        tmp_path / "in", opportunities_csv=DEALS, followups_csv=CALLS, notes_csv="a,b\n1,2\n"
    )
    reader = Reader()
    inputs = staged_inputs(
        Export(folder, [listed(folder)], TODAY), RunSettings(), load_presets(), reader
    )
    assert reader.asked == [
        ("opportunities.csv", ["opportunity_id", "stage", "created_at", "amount"]),
        ("followups.csv", ["opportunity_id", "occurred_at", "channel"]),
    ]
    assert inputs.ignored == ["notes.csv"]
    assert [(f.table, f.name) for f in inputs.files] == [
        ("opportunities", "opportunities.csv"),
        ("followups", "followups.csv"),
    ]


def test_a_folder_s_export_is_typed_table_by_table_and_says_why_its_layout(tmp_path: Path) -> None:
    folder = files(tmp_path / "in", opportunities_csv=DEALS, followups_csv=CALLS)
    export = Export(folder, [listed(folder)], TODAY)
    inputs = staged_inputs(export, RunSettings(), load_presets(), Reader())
    assert inputs.preset.name == "canonical"
    assert inputs.reason == (
        "canonical layout: opportunities.csv as opportunities (5 columns: opportunity_id, "
        "stage, created_at, amount, contact_email); followups.csv as followups (4 columns: "
        "opportunity_id, occurred_at, channel, summary)"
    )
    assert set(inputs.typed) == {"opportunities", "followups"}
    assert inputs.typed["followups"][0]["channel"].to_list() == ["phone"]
    assert inputs.raw["followups"].columns == ["_source_row", "_line", "_file"]
    assert all(f.source.rows.columns == ["_line"] for f in inputs.files)


def test_a_folder_s_export_is_dated_by_the_files_it_reads(tmp_path: Path) -> None:
    folder = files(tmp_path / "in", opportunities_csv=DEALS, notes_csv="a,b\n1,2\n")
    dated = listed(folder, opportunities_csv=date(2024, 6, 30), notes_csv=date(2024, 7, 10))
    inputs = staged_inputs(Export(folder, [dated], TODAY), RunSettings(), load_presets(), Reader())
    assert inputs.settings.parse.export_date == date(2024, 6, 30)


def test_a_folder_whose_deals_file_has_no_rows_stops_before_typing(tmp_path: Path) -> None:
    folder = files(tmp_path / "in", opportunities_csv="opportunity_id,stage,created_at\n")
    with pytest.raises(UnusableInputError, match="has a header but no rows"):
        staged_inputs(
            Export(folder, [listed(folder)], TODAY), RunSettings(), load_presets(), Reader()
        )


def test_a_folder_s_export_in_one_other_currency_is_reported_in_it(tmp_path: Path) -> None:
    deals = "opportunity_id,stage,created_at,amount,currency\nA,lead,2024-05-01,100,EUR\n"
    folder = files(tmp_path / "in", opportunities_csv=deals)
    inputs = staged_inputs(
        Export(folder, [listed(folder)], TODAY), RunSettings(), load_presets(), Reader()
    )
    assert (inputs.settings.currency, inputs.settings.rates) == ("EUR", None)


def test_amounts_in_two_currencies_without_rates_stop_the_run_naming_the_deals_file(
    tmp_path: Path,
) -> None:
    deals = (
        "opportunity_id,stage,created_at,amount,currency\n"
        "A,lead,2024-05-01,100,EUR\nB,lead,2024-05-01,100,GBP\nC,lead,2024-05-01,100,GBP\n"
    )
    folder = files(tmp_path / "in", opportunities_csv=deals)
    with pytest.raises(UnusableInputError) as refused:
        staged_inputs(
            Export(folder, [listed(folder)], TODAY), RunSettings(), load_presets(), Reader()
        )
    assert str(refused.value).startswith(
        "opportunities.csv: amounts in 2 currencies (GBP 2 deals, EUR 1 deal) and no exchange "
        "rates to put them in USD"
    )


# --- dated snapshots


def snapshots(tmp_path: Path, **days: dict[str, str]) -> Export:
    """Snapshot folders (day_2024_05_31={"opportunities_csv": text}) of an export."""
    root = tmp_path / "exports"
    folders = []
    for key, texts in sorted(days.items()):
        day = key.removeprefix("day_").replace("_", "-")
        folders.append(listed(files(root / day, **texts), day))
    return Export(root, folders, TODAY)


MAY = "opportunity_id,stage,created_at\nA,lead,2024-05-01\nB,lead,2024-05-03\n"
JUNE = "opportunity_id,stage,created_at\nA,proposal,2024-05-01\n"


def test_each_deal_of_the_snapshots_is_its_row_of_the_latest_one_it_is_in(tmp_path: Path) -> None:
    export = snapshots(
        tmp_path,
        day_2024_05_31={"opportunities_csv": MAY},
        day_2024_06_30={"opportunities_csv": JUNE},
    )
    inputs = staged_inputs(export, RunSettings(), load_presets(), Reader())
    deals = inputs.raw["opportunities"]
    # B only in May, A last in June: in the order the folders were read
    assert deals.select("_row", "opportunity_id", "stage", "_file").rows() == [
        (1, "B", "lead", "2024-05-31/opportunities.csv"),
        (2, "A", "proposal", "2024-06-30/opportunities.csv"),
    ]


def test_every_observation_of_the_snapshots_is_a_history_row_at_its_date(tmp_path: Path) -> None:
    export = snapshots(
        tmp_path,
        day_2024_05_31={"opportunities_csv": MAY},
        day_2024_06_30={"opportunities_csv": JUNE},
    )
    inputs = staged_inputs(export, RunSettings(), load_presets(), Reader())
    history = inputs.raw["stage_history"]
    assert history.select("_row", "opportunity_id", "stage", "entered_at").rows() == [
        (1, "A", "lead", "2024-05-31"),
        (2, "B", "lead", "2024-05-31"),
        (3, "A", "proposal", "2024-06-30"),
    ]


def test_snapshots_are_dated_by_their_latest_folder_and_say_how_many(tmp_path: Path) -> None:
    export = snapshots(
        tmp_path,
        day_2024_05_31={"opportunities_csv": MAY},
        day_2024_06_30={"opportunities_csv": JUNE},
    )
    inputs = staged_inputs(export, RunSettings(), load_presets(), Reader())
    assert inputs.settings.parse.export_date == date(2024, 6, 30)
    assert inputs.reason == (
        "canonical layout: 2024-06-30/opportunities.csv as opportunities (3 columns: "
        "opportunity_id, stage, created_at); stage history from 2 dated snapshots "
        "(2024-05-31 … 2024-06-30)"
    )


def test_the_follow_ups_are_those_of_the_latest_snapshot_that_has_them(tmp_path: Path) -> None:
    """Follow-ups accumulate: May's file is a part of June's, and not used."""
    export = snapshots(
        tmp_path,
        day_2024_05_31={"opportunities_csv": MAY, "followups_csv": CALLS},
        day_2024_06_30={"opportunities_csv": JUNE, "followups_csv": CALLS},
    )
    inputs = staged_inputs(export, RunSettings(), load_presets(), Reader())
    assert [f.name for f in inputs.files if f.table == "followups"] == ["2024-06-30/followups.csv"]
    assert inputs.ignored == ["2024-05-31/followups.csv"]
    assert inputs.raw["followups"]["_file"].cast(pl.String).to_list() == [
        "2024-06-30/followups.csv"
    ]
