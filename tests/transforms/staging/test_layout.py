"""The layout of an input folder, from its files' headers alone: which presets are tried,
which file each canonical table takes, the files that look like a table, the ties and the
refusals with the words they say, and the settings a preset brings.

The presets are literal: `MINI` maps short headers (id, stage, created, ...) onto each table.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from funnel_reports.schemas.vocabulary import PRESETS
from funnel_reports.transforms.funnel_model import ParseOptions, RunSettings, SourceSettings
from funnel_reports.transforms.staging.layout import (
    Assignment,
    InputFile,
    Lookalike,
    SourceTable,
    UnusableInputError,
    assign_files,
    candidate_presets,
    choose_layout,
    detection_reason,
    effective_settings,
    layout_candidates,
    looks_like,
    names_of,
    no_layout_error,
    refuse_needed_files,
    refuse_ties,
    unusable_file_message,
)
from funnel_reports.transforms.staging.presets import Preset, TableMatch, canonical_preset

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
            "customer_name": ("customer",),
        },
        "stage_history": {
            "opportunity_id": ("id",),
            "stage": ("stage",),
            "entered_at": ("entered",),
        },
        "followups": {
            "opportunity_id": ("id",),
            "occurred_at": ("occurred",),
            "channel": ("channel",),
        },
    },
)
SALES = Preset(
    "salesforce",
    "Salesforce export",
    {
        "opportunities": {
            "opportunity_id": ("Id",),
            "stage": ("StageName",),
            "created_at": ("CreatedDate",),
            "amount": ("Amount",),
            "customer_name": ("AccountName",),
        }
    },
)


def presets(**given: Preset) -> dict[str, Preset]:
    """Every preset name of the vocabulary: the canonical layout, the given ones, and empty
    layouts (which fit no file) for the others."""
    found = {"canonical": canonical_preset()}
    for name in PRESETS[1:]:
        found[name] = given.get(name, Preset(name, f"{name} layout", {}))
    return found


def table(name: str, *header: str, sheet: str | None = None) -> SourceTable:
    """A file read by its header only."""
    return SourceTable(Path(name), sheet, "", "utf-8", ",", list(header), None)


DEALS = table("deals.csv", "id", "stage", "created")
MOVES = table("moves.csv", "id", "stage", "entered")
CALLS = table("calls.csv", "id", "occurred", "channel")


def used(assignment: Assignment) -> list[tuple[str, str]]:
    return [(f.table, f.name) for f in assignment.used]


# --- the files and their names


def test_a_file_is_named_by_its_file_name() -> None:
    assert DEALS.name == "deals.csv"


def test_a_sheet_is_named_by_its_workbook_and_sheet() -> None:
    assert table("book.xlsx", "id", sheet="deals").name == "book.xlsx[deals]"


def test_a_file_of_a_snapshot_folder_is_named_under_its_folder() -> None:
    dated = SourceTable(
        Path("x/2024-05-31/deals.csv"), None, "", "utf-8", ",", [], None, "2024-05-31"
    )
    assert dated.name == "2024-05-31/deals.csv"


def test_a_file_read_by_its_header_only_has_no_rows_to_give() -> None:
    with pytest.raises(RuntimeError, match=r"deals\.csv: read by its header only"):
        DEALS.rows  # noqa: B018


def test_an_input_file_counts_the_rows_of_its_file() -> None:
    rows = pl.DataFrame({"id": ["A", "B"], "_row": [1, 2], "_line": [2, 3]})
    source = SourceTable(Path("deals.csv"), None, "x", "utf-8", ",", ["id"], rows)
    file = InputFile("opportunities", source, TableMatch("opportunities", {}, []))
    assert (file.name, file.rows) == ("deals.csv", 2)


def test_a_lookalike_as_a_dict_lists_its_missing_columns() -> None:
    lookalike = Lookalike("calls.csv", "followups", "name", ("channel",), None)
    assert lookalike.as_dict() == {
        "file": "calls.csv",
        "table": "followups",
        "by": "name",
        "missing": ["channel"],
        "used_instead": None,
    }


def test_a_file_goes_by_its_stem_and_its_sheet_as_a_table_would_be_named() -> None:
    assert names_of(table("Stage History.csv")) == {"stage_history", ""}
    assert names_of(table("Book.xlsx", sheet=" Follow  Ups ")) == {"book", "follow_ups"}


# --- the presets tried


def test_auto_tries_every_preset_in_the_vocabulary_s_order() -> None:
    candidates = layout_candidates(RunSettings(), presets(salesforce=SALES))
    assert [p.name for p in candidates] == list(PRESETS)


def test_a_custom_layout_is_the_canonical_one_with_the_mapped_columns() -> None:
    source = SourceSettings(preset="custom", columns={"opportunities": {"amount": ("Value",)}})
    [custom] = layout_candidates(RunSettings(source=source), presets())
    assert (custom.name, custom.label) == ("custom", "custom mapping in funnel.toml")
    assert custom.columns["opportunities"]["amount"] == ("Value",)
    assert custom.columns["opportunities"]["stage"] == ("stage",)  # the canonical name kept


def test_auto_with_mapped_columns_tries_the_custom_layout_alone() -> None:
    source = SourceSettings(columns={"opportunities": {"amount": ("Value",)}})
    [custom] = layout_candidates(RunSettings(source=source), presets(salesforce=SALES))
    assert custom.name == "custom"
    assert custom.columns["opportunities"]["amount"] == ("Value",)


def test_a_named_preset_without_mapped_columns_is_tried_as_it_is() -> None:
    candidates = layout_candidates(
        RunSettings(source=SourceSettings(preset="salesforce")), presets(salesforce=SALES)
    )
    assert candidates == [SALES]


def test_every_candidate_builds_the_composite_ids_of_its_table() -> None:
    source = SourceSettings(
        composite_ids={"opportunity_id": ("Account", "Name"), "followup_id": ("When", "Who")}
    )
    candidates = candidate_presets(RunSettings(source=source), presets(salesforce=SALES))
    assert len(candidates) == len(PRESETS)
    for candidate in candidates:
        assert candidate.composites == {
            "opportunities": {"opportunity_id": ("Account", "Name")},
            "followups": {"followup_id": ("When", "Who")},
        }


# --- which file each table takes


def test_each_table_takes_the_file_its_header_fits_in_the_tables_order() -> None:
    assignment = assign_files(MINI, [CALLS, MOVES, DEALS], {})
    assert used(assignment) == [
        ("opportunities", "deals.csv"),
        ("stage_history", "moves.csv"),
        ("followups", "calls.csv"),
    ]
    assert (assignment.ignored, assignment.lookalikes, assignment.ties) == ([], [], [])


def test_the_file_with_more_mapped_columns_fits_better() -> None:
    richer = table("export.csv", "id", "stage", "created", "amount")
    assignment = assign_files(MINI, [DEALS, richer], {})
    assert used(assignment) == [("opportunities", "export.csv")]
    assert assignment.ignored == ["deals.csv"]


def test_a_file_named_after_its_table_beats_a_better_fit_by_headers() -> None:
    richer = table("export.csv", "id", "stage", "created", "amount")
    named = table("Opportunities.csv", "id", "stage", "created")
    assert used(assign_files(MINI, [richer, named], {})) == [("opportunities", "Opportunities.csv")]


def test_a_sheet_named_after_its_table_counts_as_named() -> None:
    richer = table("export.csv", "id", "stage", "created", "amount")
    sheet = table("book.xlsx", "id", "stage", "created", sheet="opportunities")
    assert used(assign_files(MINI, [richer, sheet], {})) == [
        ("opportunities", "book.xlsx[opportunities]")
    ]


def test_a_file_named_in_source_files_takes_its_table_over_a_better_fit() -> None:
    richer = table("export.csv", "id", "stage", "created", "amount")
    assignment = assign_files(MINI, [richer, DEALS], {"opportunities": "deals.csv"})
    assert used(assignment) == [("opportunities", "deals.csv")]
    # export.csv: 4 of its 4 headers are the opportunities'; the table took deals.csv
    assert assignment.lookalikes == [
        Lookalike("export.csv", "opportunities", "headers", (), "deals.csv")
    ]


def test_a_sheet_named_in_source_files_is_found_by_its_sheet_name() -> None:
    sheets = [table("book.xlsx", "id", "stage", "created", sheet=s) for s in ("old", "new")]
    assignment = assign_files(MINI, sheets, {"opportunities": "book.xlsx[new]"})
    assert used(assignment) == [("opportunities", "book.xlsx[new]")]


def test_a_file_named_in_source_files_that_lacks_a_required_column_is_refused() -> None:
    thin = table("deals.csv", "id", "stage")
    with pytest.raises(UnusableInputError) as refused:
        assign_files(MINI, [thin], {"opportunities": "deals.csv"})
    assert str(refused.value) == (
        "deals.csv: is set as opportunities in [source.files] but has no column for "
        "created_at (expected 'created'). Found: id, stage. To use it, map it in funnel.toml: "
        '[source.columns.opportunities] created_at = "<the column that holds it>".'
    )


def test_two_files_that_fit_a_table_equally_are_a_tie_the_earlier_taken() -> None:
    again = table("deals-2.csv", "id", "stage", "created")
    assignment = assign_files(MINI, [DEALS, again], {})
    assert used(assignment) == [("opportunities", "deals.csv")]
    [(tied_table, tied)] = assignment.ties
    assert (tied_table, [f.name for f in tied]) == ("opportunities", ["deals.csv", "deals-2.csv"])


def test_a_table_named_in_source_files_is_never_a_tie() -> None:
    again = table("deals-2.csv", "id", "stage", "created")
    assignment = assign_files(MINI, [DEALS, again], {"opportunities": "deals-2.csv"})
    assert used(assignment) == [("opportunities", "deals-2.csv")]
    assert assignment.ties == []


def test_a_file_feeds_one_table_only() -> None:
    """id, stage, created, entered fits opportunities and the history equally (3 columns
    each): the first table in the tables' order takes it, the other goes without."""
    both = table("all.csv", "id", "stage", "created", "entered")
    assert used(assign_files(MINI, [both], {})) == [("opportunities", "all.csv")]


def test_a_file_that_fits_no_table_is_ignored_and_looks_like_none() -> None:
    notes = table("notes.csv", "when", "what", "who")
    assignment = assign_files(MINI, [DEALS, notes], {})
    assert (assignment.ignored, assignment.lookalikes) == (["notes.csv"], [])


# --- files left out that look like a table


def test_a_file_named_after_a_table_looks_like_it_and_says_what_it_lacks() -> None:
    calls = table("followups.csv", "id", "occurred")
    assert looks_like(MINI, calls, {}) == Lookalike(
        "followups.csv", "followups", "name", ("channel",), None
    )


def test_a_file_more_than_half_of_whose_headers_map_to_a_table_looks_like_it() -> None:
    calls = table("misc.csv", "id", "occurred", "channel", "mood")
    assert looks_like(MINI, calls, {"followups": "calls.csv"}) == Lookalike(
        "misc.csv", "followups", "headers", (), "calls.csv"
    )


def test_a_file_only_half_of_whose_headers_map_looks_like_nothing() -> None:
    # followups: id and occurred, 2 of 4; opportunities and history: id alone
    assert looks_like(MINI, table("misc.csv", "id", "occurred", "mood", "tone"), {}) is None


def test_by_headers_a_file_looks_like_the_table_that_maps_most_of_them() -> None:
    # opportunities: id, stage, created, amount (4); history: id, stage, entered (3)
    wide = table("misc.csv", "id", "stage", "created", "amount", "entered")
    lookalike = looks_like(MINI, wide, {})
    assert lookalike is not None
    assert (lookalike.table, lookalike.by) == ("opportunities", "headers")


def test_a_file_s_name_says_more_than_its_headers() -> None:
    named = table("followups.csv", "id", "stage", "created")
    assert looks_like(MINI, named, {}) == Lookalike(
        "followups.csv", "followups", "name", ("occurred_at", "channel"), None
    )


# --- ties and files needed but unusable


def test_two_files_tied_stop_the_run_naming_both_and_the_line_that_picks_one() -> None:
    assignment = assign_files(MINI, [table("b.csv", "id", "stage", "created"), DEALS], {})
    with pytest.raises(UnusableInputError) as refused:
        refuse_ties(Path("in"), assignment)
    assert str(refused.value) == (
        "in: b.csv and deals.csv fit opportunities equally well (3 columns each); name the one "
        'to use in funnel.toml: [source.files] opportunities = "deals.csv"'
    )


def test_three_files_tied_are_listed_in_the_order_of_their_names() -> None:
    files = [table(n, "id", "stage", "created") for n in ("c.csv", "a.csv", "b.csv")]
    with pytest.raises(UnusableInputError, match=r"^in: a\.csv, b\.csv and c\.csv fit "):
        refuse_ties(Path("in"), assign_files(MINI, files, {}))


def test_no_tie_stops_nothing() -> None:
    refuse_ties(Path("in"), assign_files(MINI, [DEALS, MOVES], {}))


def test_the_message_for_an_unusable_file_names_the_nearest_header() -> None:
    calls = table("followups.csv", "id", "occurred", "chanel")
    match = TableMatch(
        "followups", {"opportunity_id": ["id"], "occurred_at": ["occurred"]}, ["channel"]
    )
    assert unusable_file_message(MINI, calls, match, "is named like {}") == (
        "followups.csv: is named like followups but has no column for channel (expected "
        "'channel'; nearest header: 'chanel'). Found: id, occurred, chanel. To use it, map it "
        'in funnel.toml: [source.columns.followups] channel = "chanel".'
    )


def test_a_file_named_like_a_table_no_file_feeds_stops_the_run() -> None:
    calls = table("followups.csv", "id", "occurred")
    files = [DEALS, calls]
    with pytest.raises(UnusableInputError, match=r"^followups\.csv: is named like followups but"):
        refuse_needed_files(MINI, files, assign_files(MINI, files, {}))


def test_a_file_like_a_table_by_its_headers_stops_the_run_when_no_file_feeds_it() -> None:
    calls = table("misc.csv", "id", "occurred", "medium")
    files = [DEALS, calls]
    # id and occurred are 2 of 3 headers: it looks like followups, which lacks channel
    with pytest.raises(
        UnusableInputError, match=r"^misc\.csv: looks like followups by its headers"
    ):
        refuse_needed_files(MINI, files, assign_files(MINI, files, {}))


def test_a_lookalike_whose_table_takes_another_file_stops_nothing() -> None:
    thin = table("followups.csv", "id", "occurred")
    files = [DEALS, CALLS, thin]
    assignment = assign_files(MINI, files, {})
    assert [lookalike.used_instead for lookalike in assignment.lookalikes] == ["calls.csv"]
    refuse_needed_files(MINI, files, assignment)


def test_a_used_file_without_a_part_of_its_composite_id_stops_the_run() -> None:
    composite = Preset(
        "mini",
        "mini layout",
        MINI.columns,
        composites={"opportunities": {"opportunity_id": ("Account", "Name")}},
    )
    deals = table("deals.csv", "Name", "stage", "created")
    assignment = assign_files(composite, [deals], {})
    with pytest.raises(UnusableInputError) as refused:
        refuse_needed_files(composite, [deals], assignment)
    assert str(refused.value) == (
        "deals.csv: has no column 'Account' named in [source.composite_ids] opportunity_id; "
        "its columns are Name, stage, created"
    )


# --- why a layout was chosen, and why none was


def test_the_detection_reason_names_each_file_its_table_and_mapped_headers() -> None:
    assignment = assign_files(MINI, [DEALS, CALLS], {})
    assert detection_reason(MINI, assignment.used) == (
        "mini layout: deals.csv as opportunities (3 columns: id, stage, created); "
        "calls.csv as followups (3 columns: id, occurred, channel)"
    )


def test_the_detection_reason_shows_five_headers_of_more() -> None:
    """Six columns mapped from seven headers (amount from two): the first five headers, then
    an ellipsis."""
    wide = table("deals.csv", "id", "stage", "created", "amount", "value", "owner", "customer")
    assignment = assign_files(MINI, [wide], {})
    assert detection_reason(MINI, assignment.used) == (
        "mini layout: deals.csv as opportunities (6 columns: id, stage, created, amount, "
        "value, ...)"
    )


def test_a_folder_without_files_says_it_holds_none() -> None:
    assert no_layout_error(Path("in"), [MINI], []) == (
        "in: holds no CSV or XLSX file; expected an export with opportunities (for example "
        "opportunities.csv)."
    )


def test_a_folder_no_layout_fits_names_the_nearest_miss() -> None:
    """Salesforce maps Id and StageName (2 columns), the mini layout nothing."""
    deals = table("deals.csv", "Id", "StageName", "CreateDate")
    assert no_layout_error(Path("in"), [MINI, SALES], [deals]) == (
        "deals.csv: no known export layout has all the opportunity columns it needs. "
        "Nearest: Salesforce export, which lacks created_at (expected 'CreatedDate'; nearest "
        "header: 'CreateDate'). Found: Id, StageName, CreateDate. Expected at least: "
        "opportunity_id, stage, created_at; map the missing ones in funnel.toml under "
        "[source.columns.opportunities] (see the README)."
    )


# --- the layout chosen


def test_the_layout_whose_opportunities_match_is_strongest_is_chosen() -> None:
    both = table(
        "deals.csv",
        *("opportunity_id", "stage", "created_at"),
        *("Id", "StageName", "CreatedDate", "AccountName"),
    )
    preset, assignment = choose_layout(Path("in"), [both], RunSettings(), presets(salesforce=SALES))
    # canonical maps 3 of its columns, Salesforce 4
    assert (preset.name, used(assignment)) == ("salesforce", [("opportunities", "deals.csv")])


def test_layouts_that_match_equally_go_to_the_earlier_preset() -> None:
    both = table(
        "deals.csv", *("opportunity_id", "stage", "created_at"), *("Id", "StageName", "CreatedDate")
    )
    preset, _ = choose_layout(Path("in"), [both], RunSettings(), presets(salesforce=SALES))
    assert preset.name == "canonical"


def test_a_folder_no_layout_fits_stops_the_run_with_the_nearest_miss() -> None:
    deals = table("deals.csv", "Id", "StageName", "CreateDate")
    with pytest.raises(UnusableInputError, match=r"^deals\.csv: no known export layout"):
        choose_layout(Path("in"), [deals], RunSettings(), presets(salesforce=SALES))


def test_a_named_file_one_layout_can_use_is_taken_with_that_layout() -> None:
    sales = table("deals.csv", "Id", "StageName", "CreatedDate")
    settings = RunSettings(source=SourceSettings(files={"opportunities": "deals.csv"}))
    preset, assignment = choose_layout(Path("in"), [sales], settings, presets(salesforce=SALES))
    assert (preset.name, used(assignment)) == ("salesforce", [("opportunities", "deals.csv")])


def test_a_named_file_no_layout_can_use_stops_the_run_as_the_first_layout_saw_it() -> None:
    thin = table("deals.csv", "Id", "StageName")
    settings = RunSettings(source=SourceSettings(files={"opportunities": "deals.csv"}))
    with pytest.raises(UnusableInputError) as refused:
        choose_layout(Path("in"), [thin], settings, presets(salesforce=SALES))
    # the canonical layout is tried first; it lacks all three required columns
    assert str(refused.value).startswith(
        "deals.csv: is set as opportunities in [source.files] but has no column for "
        "opportunity_id (expected 'opportunity_id'"
    )


def test_the_chosen_layout_still_refuses_two_tied_files() -> None:
    files = [table(n, "Id", "StageName", "CreatedDate") for n in ("a.csv", "b.csv")]
    with pytest.raises(UnusableInputError, match=r"a\.csv and b\.csv fit opportunities equally"):
        choose_layout(Path("in"), files, RunSettings(), presets(salesforce=SALES))


def test_the_chosen_layout_still_refuses_a_needed_file_it_cannot_use() -> None:
    deals = table("deals.csv", "Id", "StageName", "CreatedDate")
    history = table("stage_history.csv", "Id", "When")
    with pytest.raises(
        UnusableInputError, match=r"stage_history\.csv: is named like stage_history"
    ):
        choose_layout(Path("in"), [deals, history], RunSettings(), presets(salesforce=SALES))


# --- the settings a preset brings


def preset_with(**settings: object) -> Preset:
    return Preset("mini", "mini layout", MINI.columns, **settings)  # type: ignore[arg-type]


def test_the_configured_value_maps_win_over_the_preset_s() -> None:
    preset = preset_with(
        stages={"Closed": "won", "Demo": "proposal"},
        statuses={"Done": "won"},
        channels={"Call": "phone"},
    )
    parse = ParseOptions(stages={"Demo": "qualified"}, channels={"Call": "visit"})
    settled = effective_settings(RunSettings(parse=parse), preset).parse
    assert settled.stages == {"Closed": "won", "Demo": "qualified"}
    assert settled.statuses == {"Done": "won"}
    assert settled.channels == {"Call": "visit"}


def test_a_preset_s_date_order_replaces_the_default_one() -> None:
    settled = effective_settings(RunSettings(), preset_with(date_order="MDY"))
    assert settled.parse.default_date_order == "MDY"


def test_without_a_preset_date_order_the_default_one_stays() -> None:
    settled = effective_settings(RunSettings(parse=ParseOptions(default_date_order="YMD")), MINI)
    assert settled.parse.default_date_order == "YMD"


@pytest.mark.parametrize(
    ("configured", "preset", "expected"),
    [
        (None, None, "quarantine"),
        (None, "keep", "keep"),
        ("quarantine", "keep", "quarantine"),
        ("keep", None, "keep"),
    ],
)
def test_a_deal_closed_before_created_is_handled_as_configured_else_as_the_preset_says(
    configured: str | None, preset: str | None, expected: str
) -> None:
    settled = effective_settings(
        RunSettings(parse=ParseOptions(closed_before_created=configured)),
        preset_with(closed_before_created=preset),
    )
    assert settled.parse.closed_before_created == expected


def test_a_preset_changes_no_other_setting() -> None:
    run = RunSettings(timezone="Asia/Shanghai", parse=ParseOptions(decimal=",", thousands="."))
    settled = effective_settings(run, preset_with(stages={"Closed": "won"}))
    assert (settled.timezone, settled.parse.decimal, settled.parse.thousands) == (
        "Asia/Shanghai",
        ",",
        ".",
    )
    assert settled.funnel == run.funnel
