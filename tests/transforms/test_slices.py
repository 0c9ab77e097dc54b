"""A report of the report set is a slice of the validated tables."""

from __future__ import annotations

import pytest

from funnel_reports.transforms.funnel_model import ReportSpec
from funnel_reports.transforms.slices import (
    EmptySliceError,
    is_team,
    report_language,
    report_target,
    slice_tables,
)
from tests.helpers import history, opp, opportunities, path, touches

TABLES = {
    "opportunities": opportunities(
        opp("E1", "lead", "2024-06-01", region="East China", owner="Li"),
        opp("E2", "lead", "2024-06-02", region=" East China ", owner="Wang"),
        opp("N1", "lead", "2024-06-03", region="North China", owner="Li"),
        opp("X1", "lead", "2024-06-04"),  # no region
    ),
    "stage_history": history(
        *path("E1", ("lead", "2024-06-01")), *path("N1", ("lead", "2024-06-03"))
    ),
    "followups": touches(
        {"opportunity_id": "E2", "occurred_at": "2024-06-05", "channel": "phone"},
        {"opportunity_id": "N1", "occurred_at": "2024-06-05", "channel": "email"},
    ),
}


def ids(tables, name):
    return tables[name]["opportunity_id"].to_list()


def test_a_slice_holds_its_deals_and_their_rows_in_every_table():
    east = slice_tables(TABLES, ReportSpec("east", filter={"region": ("East China",)}))
    assert ids(east, "opportunities") == ["E1", "E2"]  # spaces around a value do not matter
    assert ids(east, "stage_history") == ["E1"]
    assert ids(east, "followups") == ["E2"]


def test_filters_on_several_columns_all_hold_and_any_listed_value_matches():
    spec = ReportSpec(
        "li", filter={"owner": ("Li", "Zhao"), "region": ("East China", "North China")}
    )
    assert ids(slice_tables(TABLES, spec), "opportunities") == ["E1", "N1"]


def test_the_company_roll_up_is_the_whole_export():
    assert slice_tables(TABLES, ReportSpec("company")) == TABLES


def test_a_filter_that_matches_no_deal_says_so():
    with pytest.raises(EmptySliceError) as error:
        slice_tables(TABLES, ReportSpec("west", filter={"region": ("West China",)}))
    assert str(error.value) == (
        "report west: its filter (region = West China) matches none of the 4 deals of the "
        "export; check the values in [[reports]]"
    )


def test_a_teams_language_and_target_are_its_own_the_companys_the_configurations():
    east = ReportSpec("east", filter={"region": ("East",)}, lang="zh", targets={"2026-09": 8.0})
    company, targets = ReportSpec("company"), {"2026-09": 100.0}
    assert report_language(east, given=None, configured="en") == "zh"
    assert report_language(east, given="en", configured="en") == "en"  # the command line wins
    assert report_language(company, given=None, configured="en") == "en"
    assert report_target(east, "2026-09", targets) == 8.0
    assert report_target(east, "2026-08", targets) is None  # not the company's
    assert report_target(company, "2026-09", targets) == report_target(None, "2026-09", targets)
    # --target names the period's target whoever's report it is; an absent one changes nothing
    assert report_target(None, "2026-09", targets, 5.0) == report_target(east, "2026-09", {}, 5.0)
    assert report_target(None, "2026-09", targets, 5.0) == 5.0
    assert report_target(None, "2026-09", targets, None) == 100.0
    assert (is_team(east), is_team(company), is_team(None)) == (True, False, False)
