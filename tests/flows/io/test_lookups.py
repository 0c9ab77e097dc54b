"""`[source.lookups]` and the Salesforce preset's (issue 14): side files joined by a key fill
canonical columns, and a key that matches nothing is counted."""

from __future__ import annotations

import pytest

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.config import ConfigError, settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.staging.checks import check_inputs
from funnel_reports.transforms.staging.layout import UnusableInputError
from tests.helpers import write_csv

LOOKUPS = """
[source.lookups.accounts]
file = "accounts.csv"
on = "account_id"
key = "id"
columns = { customer_name = "name", region = "region" }

[source.lookups.prices]
file = "products.csv"
on = "product"
key = "product"
columns = { amount = "sales_price" }
"""

DEALS = [
    {
        "opportunity_id": "A",
        "stage": "lead",
        "created_at": "2024-06-01",
        "account_id": "1",
        "product": "GTX",
        "amount": "700",
    },
    {
        "opportunity_id": "B",
        "stage": "lead",
        "created_at": "2024-06-02",
        "account_id": "2",
        "product": "GTX",
        "amount": "",
        "customer_name": "b-own",
    },
    {
        "opportunity_id": "C",
        "stage": "lead",
        "created_at": "2024-06-03",
        "account_id": "9",
        "product": "MG",
        "amount": "",
        "customer_name": "c-own",
    },
    {
        "opportunity_id": "D",
        "stage": "lead",
        "created_at": "2024-06-04",
        "account_id": "",
        "product": "None such",
        "amount": "",
    },
]
ACCOUNTS = [
    {"id": "1", "name": "Acme", "region": "East"},
    {"id": "2", "name": "Betatech", "region": ""},
]
PRODUCTS = [{"product": "GTX", "sales_price": "550"}, {"product": "MG", "sales_price": "1,200"}]


def checked_of(tmp_path, config=LOOKUPS, deals=DEALS):
    write_csv(tmp_path / "in" / "opportunities.csv", deals)
    write_csv(tmp_path / "in" / "accounts.csv", ACCOUNTS)
    write_csv(tmp_path / "in" / "products.csv", PRODUCTS)
    (tmp_path / "funnel.toml").write_text(config, encoding="utf-8")
    settings = settings_from_toml(tmp_path / "funnel.toml")
    return check_inputs(read_inputs(tmp_path / "in", settings))


def test_an_account_file_fills_names_where_the_key_matches(tmp_path):
    checked = checked_of(tmp_path)
    rows = {r["opportunity_id"]: r for r in checked.tables["opportunities"].to_dicts()}
    names = {oid: row["customer_name"] for oid, row in rows.items()}
    # B's own value gives way to the account's; C's key matches nothing: its own stays
    assert names == {"A": "Acme", "B": "Betatech", "C": "c-own", "D": None}
    # a blank value in the side file does not blank the deal's
    assert {oid: row["region"] for oid, row in rows.items()} == dict.fromkeys("ABCD") | {
        "A": "East"
    }
    accounts = checked.source["lookups"][0]
    assert (accounts["matched"], accounts["unmatched"], accounts["without_key"]) == (2, 1, 1)
    assert accounts["filled"] == {"customer_name": 2, "region": 1}
    assert checked.source["ignored"] == []


def test_a_price_list_fills_only_missing_amounts_and_counts_them_as_estimated(tmp_path):
    checked = checked_of(tmp_path)
    amounts = dict(checked.tables["opportunities"].select("opportunity_id", "amount").iter_rows())
    # A keeps its 700; B and C take their product's price (1,200 read as written); D none
    assert amounts == {"A": 700.0, "B": 550.0, "C": 1200.0, "D": None}
    prices = checked.source["lookups"][1]
    assert (prices["matched"], prices["unmatched"], prices["filled"]) == (3, 1, {"amount": 2})


def test_a_lookup_file_that_is_not_there_stops_the_run(tmp_path):
    config = LOOKUPS.replace('"products.csv"', '"price-list.csv"')
    with pytest.raises(
        UnusableInputError, match=r"price-list.csv: named in \[source.lookups.prices\]"
    ):
        checked_of(tmp_path, config)


def test_a_lookup_column_the_file_lacks_stops_the_run(tmp_path):
    config = LOOKUPS.replace('"sales_price"', '"list_price"')
    with pytest.raises(UnusableInputError, match=r"products.csv: has no column 'list_price'"):
        checked_of(tmp_path, config)


def test_a_lookup_without_its_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\[source.lookups.accounts\]"):
        checked_of(tmp_path, LOOKUPS.replace('on = "account_id"\n', ""))


def test_the_salesforce_preset_takes_owner_names_from_user_csv(tmp_path):
    folder = tmp_path / "in"
    write_csv(
        folder / "Opportunity.csv",
        [
            {
                "Id": "006A",
                "StageName": "Prospecting",
                "CreatedDate": "2024-06-01",
                "OwnerId": "005X",
                "AccountId": "001A",
            },
            {
                "Id": "006B",
                "StageName": "Prospecting",
                "CreatedDate": "2024-06-02",
                "OwnerId": "005Z",
                "AccountId": "001A",
            },
        ],
    )
    write_csv(folder / "User.csv", [{"Id": "005X", "Name": "Ada Park"}])
    checked = check_inputs(read_inputs(folder, settings_from_toml(None)))
    owners = dict(checked.tables["opportunities"].select("opportunity_id", "owner").iter_rows())
    assert owners == {"006A": "Ada Park", "006B": "005Z"}  # 005Z matches nobody: counted
    (users,) = checked.source["lookups"]  # no Account.csv here: that lookup is not joined
    assert (users["file"], users["matched"], users["unmatched"]) == ("User.csv", 1, 1)


def test_funnel_validate_says_what_each_lookup_did(tmp_path, capsys):
    checked_of(tmp_path)  # writes the folder and funnel.toml
    config = str(tmp_path / "funnel.toml")
    assert main(["validate", "--input", str(tmp_path / "in"), "--config", config]) == 0
    out = capsys.readouterr().out
    assert (
        "accounts.csv joined on account_id: 2 matched, 1 matching nothing, 1 without a key "
        "(filled: customer_name 2, region 1)"
    ) in out
