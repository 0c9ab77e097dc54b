"""[source.composite_ids]: an id built from several columns, for exports without an id column
(a Dynamics 365 export without its "(Do Not Modify) Opportunity" column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.config import ConfigError, settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.staging.checks import validate_inputs
from tests.flows.io.folders import as_read

DYNAMICS = (
    "Topic,Potential Customer,Account,Est. Close Date,Est. Revenue,Status,Sales Stage,Owner,"
    "Created On\n"
    "ERP rollout,Contoso,,9/30/2024,50000,Open,Propose,Dana Lee,6/1/2024 9:30 AM\n"
    "ERP rollout,Contoso,Contoso Ltd,9/30/2024,50000,Open,Propose,Sam Roe,6/1/2024 9:30 AM\n"
    "Pilot,Fabrikam,,12/1/2024,3000,Open,Qualify,Dana Lee,6/2/2024 10:00 AM\n"
    "Pilot,Fabrikam,,12/1/2024,3000,Open,Develop,Dana Lee,6/2/2024 10:00 AM\n"
)
COMPOSITE = """
[source]
preset = "dynamics"  # a mapping under [source.columns] extends it

[source.composite_ids]
opportunity_id = ["Created On", "Topic", "Owner"]

[source.columns.opportunities]
customer_name = ["Account", "Potential Customer"]
"""


def settings(tmp_path: Path, text: str):
    config = tmp_path / "funnel.toml"
    config.write_text(text, encoding="utf-8")
    return settings_from_toml(config)


def test_a_dynamics_export_without_its_guid_gets_ids_from_three_columns(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Opportunities.csv").write_text(DYNAMICS, encoding="utf-8")
    inputs = read_inputs(folder, settings(tmp_path, COMPOSITE))
    assert inputs.preset.name == "dynamics"
    assert as_read(inputs)["opportunity_id"].to_list() == [
        "6/1/2024 9:30 AM ␟ ERP rollout ␟ Dana Lee",
        "6/1/2024 9:30 AM ␟ ERP rollout ␟ Sam Roe",
        "6/2/2024 10:00 AM ␟ Pilot ␟ Dana Lee",
        "6/2/2024 10:00 AM ␟ Pilot ␟ Dana Lee",
    ]
    opps = validate_inputs(inputs)["opportunities"]
    # two rows that build one id follow the duplicate-id rule: both go, with the reason
    assert opps.quarantined["reasons"].to_list() == [
        ["opportunity_id: '6/2/2024 10:00 AM ␟ Pilot ␟ Dana Lee' appears more than once "
         "(every copy quarantined)"]
    ] * 2  # fmt: skip
    # a list under [source.columns] still means the first non-blank of its headers
    assert dict(zip(opps.valid["owner"], opps.valid["customer_name"], strict=True)) == {
        "Dana Lee": "Contoso",
        "Sam Roe": "Contoso Ltd",
    }


def test_a_blank_part_stays_in_place_and_an_all_blank_id_is_missing(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "stage,created_at,owner,customer_name\n"
        "lead,2024-06-01, ,Acme\n"
        "lead,2024-06-01,Ann,\n"
        "lead,2024-06-01,,\n",
        encoding="utf-8",
    )
    config = '[source.composite_ids]\nopportunity_id = ["owner", "customer_name"]\n'
    inputs = read_inputs(folder, settings(tmp_path, config))
    # built " ␟ Acme" and "Ann ␟ ", then trimmed as every id is: the blank part keeps its place
    assert as_read(inputs)["opportunity_id"].to_list() == ["␟ Acme", "Ann ␟", None]
    opps = validate_inputs(inputs)["opportunities"]
    assert opps.quarantined["reasons"].to_list() == [["opportunity_id: missing (required)"]]


def test_followup_ids_can_be_built_too(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "opportunity_id,stage,created_at\nA,lead,2024-06-01\n", encoding="utf-8"
    )
    (folder / "followups.csv").write_text(
        "opportunity_id,occurred_at,channel\nA,2024-06-02 10:00,phone\nA,2024-06-03 11:00,email\n",
        encoding="utf-8",
    )
    config = '[source.composite_ids]\nfollowup_id = ["opportunity_id", "occurred_at"]\n'
    validated = validate_inputs(read_inputs(folder, settings(tmp_path, config)))
    assert validated["followups"].valid["followup_id"].to_list() == [
        "A ␟ 2024-06-02 10:00",
        "A ␟ 2024-06-03 11:00",
    ]


def test_a_header_the_file_lacks_stops_the_run_naming_file_column_and_columns(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "Opportunities.csv").write_text(DYNAMICS, encoding="utf-8")
    config = tmp_path / "funnel.toml"
    config.write_text(
        '[source.composite_ids]\nopportunity_id = ["Created On", "Topic", "Owner Name"]\n',
        encoding="utf-8",
    )
    assert main(["validate", "--input", str(folder), "--config", str(config)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"funnel: {folder / 'Opportunities.csv'}: has no column 'Owner Name' named in "
        "[source.composite_ids] opportunity_id; its columns are Topic, Potential Customer, "
        "Account, Est. Close Date, Est. Revenue, Status, Sales Stage, Owner, Created On"
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            '[source.composite_ids]\nopportunity_id = ["Topic"]\n',
            "[source.composite_ids]: opportunity_id: expected two or more headers to join (one "
            "header goes under [source.columns.opportunities])",
        ),
        (
            '[source.composite_ids]\nstage = ["Topic", "Owner"]\n',
            "[source.composite_ids] stage: unknown name",
        ),
    ],
)
def test_a_composite_id_needs_an_id_column_and_two_headers(tmp_path, text, says):
    with pytest.raises(ConfigError) as error:
        settings(tmp_path, text)
    assert says in str(error.value)
