"""`funnel validate`'s check (flows/validate.py): what `validation` finds in a small export
folder, as the document the console prints from, with a funnel.toml and a forced layout."""

from __future__ import annotations

import subprocess
import sys

import pytest

from funnel_reports.flows.io.config import ConfigError
from funnel_reports.flows.validate import validation
from funnel_reports.transforms.staging.layout import UnusableInputError
from tests.flows.io.folders import deals_folder

DEALS = (
    "opportunity_id,stage,created_at\n"
    "A,lead,2024-06-01\n"  # line 2: valid
    "B,lead,someday\n"  # line 3: no date
    "C,Demo Done,2024-06-01\n"  # line 4: no such stage
    "D,Demo Done,2024-06-02\n"  # line 5: no such stage
)


@pytest.fixture(autouse=True)
def _prefect():
    """A check, not a job: no Prefect, so no test server is started."""
    yield


def test_each_file_is_counted_with_its_reasons_grouped_and_example_lines(tmp_path):
    found = validation(deals_folder(tmp_path, DEALS), None, None)
    [deals] = found["files"]
    assert (deals["file"], deals["table"], deals["encoding"]) == (
        "opportunities.csv",
        "opportunities",
        "utf-8",
    )
    assert (deals["rows_read"], deals["rows_valid"], deals["rows_quarantined"]) == (4, 1, 3)
    assert [(r["category"], r["rows"]) for r in deals["reasons"]] == [
        ("stage: cannot read as a stage", 2),  # the most rows first
        ("created_at: cannot read as a timestamp", 1),
    ]
    assert [e["_line"] for e in deals["reasons"][0]["examples"]] == [4, 5]
    assert deals["reasons"][1]["examples"] == [
        {"_line": 3, "reasons": "created_at: cannot read as a timestamp (got 'someday')"}
    ]


def test_the_layout_found_and_the_unknown_stages_are_said(tmp_path):
    found = validation(deals_folder(tmp_path, DEALS), None, None)
    assert found["source"].startswith("canonical layout: opportunities.csv as opportunities")
    assert found["unknown_stages"] == {
        "opportunities": [{"value": "Demo Done", "rows": 2, "suggested_stage": None}]
    }
    assert (found["ignored"], found["lookalikes"], found["lookups"]) == ([], [], [])


def test_the_config_maps_a_stage_and_sets_the_encoding(tmp_path):
    folder = deals_folder(tmp_path, DEALS)
    config = tmp_path / "funnel.toml"
    config.write_text(
        '[source.parse]\nencoding = "latin-1"\n\n[source.stages]\n"Demo Done" = "proposal"\n',
        encoding="utf-8",
    )
    found = validation(folder, config, None)
    [deals] = found["files"]
    assert (deals["rows_valid"], deals["rows_quarantined"]) == (3, 1)
    assert found["unknown_stages"] == {}
    assert (found["encoding_set"], deals["encoding"]) == ("latin-1", "latin-1")


def test_a_forced_layout_the_files_do_not_fit_stops_the_check(tmp_path):
    with pytest.raises(UnusableInputError, match=r"Nearest: Salesforce .* lacks opportunity_id"):
        validation(deals_folder(tmp_path, DEALS), None, "salesforce")


def test_a_config_that_is_not_there_stops_the_check(tmp_path):
    with pytest.raises(ConfigError, match=r"funnel\.toml: cannot be read"):
        validation(deals_folder(tmp_path, DEALS), tmp_path / "funnel.toml", None)


def test_the_check_does_not_import_prefect():
    """Prefect's import costs seconds: `funnel validate` answers without it."""
    code = (
        "import sys; from funnel_reports.flows.validate import validation; "
        "print('prefect' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"
