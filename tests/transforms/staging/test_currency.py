"""Money in one currency: an export's amounts converted to the report currency at its own or
the configured rates, or the run stopped. Expectations computed by hand in the comments.

The export is a Salesforce org that sells in MXN, COP, PEN and USD; its CurrencyType.csv holds
units of each currency per one US dollar (the corporate currency).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.transforms.funnel_model import ExchangeRate, ExchangeRates
from funnel_reports.transforms.staging.checks import check_inputs
from funnel_reports.transforms.staging.currency import parse_currency
from funnel_reports.transforms.staging.layout import UnusableInputError
from tests.helpers import SETTINGS, by_key, metrics_for

OPPORTUNITY = (
    "Id,StageName,CreatedDate,CloseDate,IsWon,IsClosed,Amount,CurrencyIsoCode\n"
    # won in June 2024: 170,000 MXN / 17 = 10,000 USD
    "m1,Closed Won,2024-05-01,2024-06-10,true,true,170000,MXN\n"
    # open: 8,000,000 COP / 4,000 = 2,000 USD; 3,750 PEN / 3.75 = 1,000 USD; 500 USD
    "c1,Prospecting,2024-05-01,2024-08-01,false,false,8000000,COP\n"
    "p1,Negotiation/Review,2024-05-01,2024-08-01,false,false,3750,PEN\n"
    "u1,Prospecting,2024-05-01,2024-08-01,false,false,500,USD\n"
)
CURRENCY_TYPE = (
    "Id,IsoCode,ConversionRate,DecimalPlaces,IsActive,IsCorporate\n"
    "1,USD,1.000000,2,true,true\n"
    "2,MXN,17.000000,2,true,false\n"
    "3,COP,4000.000000,2,true,false\n"
    "4,PEN,3.750000,2,true,false\n"
)


def export(folder: Path, *files: tuple[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files:
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def june(folder: Path, settings=SETTINGS) -> dict:
    """metrics.json of 2024-06 (UTC) for an export folder, through the real reading path."""
    checked = check_inputs(read_inputs(folder, settings))
    tables = checked.tables
    return {
        **metrics_for(
            tables["opportunities"],
            tables["stage_history"] if checked.history_available else None,
            period="2024-06",
            settings=checked.settings,
        ),
        "source": checked.source,
    }


def test_codes_and_names_read_as_iso_codes():
    raw = pl.Series(["usd", " MXN ", "US Dollar", "Euro", "人民币", "Pesos", "US$"])
    assert pl.select(parse_currency(pl.lit(raw))).to_series().to_list() == [
        "USD",
        "MXN",
        "USD",
        "EUR",
        "CNY",
        None,  # no currency: a quarantine reason of its row
        None,
    ]


def test_several_currencies_without_rates_stop_with_each_currency_and_its_deals(tmp_path):
    folder = export(tmp_path, ("Opportunity.csv", OPPORTUNITY))
    with pytest.raises(UnusableInputError) as error:
        read_inputs(folder, SETTINGS)
    assert str(error.value) == (
        "Opportunity.csv: amounts in 4 currencies (COP 1 deal, MXN 1 deal, PEN 1 deal, "
        "USD 1 deal) and no exchange rates to put them in USD; give [currency.rates] in "
        "funnel.toml (COP = units of COP per one USD), or put the CRM's CurrencyType.csv "
        "beside the export"
    )


def test_amounts_are_converted_at_the_exports_own_rates(tmp_path):
    folder = export(tmp_path, ("Opportunity.csv", OPPORTUNITY), ("CurrencyType.csv", CURRENCY_TYPE))
    m = june(folder)
    assert m["currency"] == "USD"
    assert m["kpis"]["won_amount"] == pytest.approx(10_000)
    # 2,000 + 1,000 + 500, not the raw sum 8,003,750
    assert m["kpis"]["open_amount"] == pytest.approx(3_500)
    assert m["source"]["currency"] == {
        "report_currency": "USD",
        "rates_from": "CurrencyType.csv",
        "converted": [
            {"currency": "COP", "deals": 1, "rate_min": 4000.0, "rate_max": 4000.0},
            {"currency": "MXN", "deals": 1, "rate_min": 17.0, "rate_max": 17.0},
            {"currency": "PEN", "deals": 1, "rate_min": 3.75, "rate_max": 3.75},
            {"currency": "USD", "deals": 1, "rate_min": 1.0, "rate_max": 1.0},
        ],
    }


def test_a_report_in_another_currency_than_the_corporate_one_crosses_the_rates(tmp_path):
    folder = export(tmp_path, ("Opportunity.csv", OPPORTUNITY), ("CurrencyType.csv", CURRENCY_TYPE))
    # in MXN: 1 USD = 17 MXN; 1 COP = 17 / 4000 MXN; 1 PEN = 17 / 3.75 MXN
    m = june(folder, replace(SETTINGS, currency="MXN", currency_configured=True))
    assert m["kpis"]["won_amount"] == pytest.approx(170_000)
    assert m["kpis"]["open_amount"] == pytest.approx(2_000 * 17 + 1_000 * 17 + 500 * 17)


def test_dated_rates_apply_on_the_deals_close_date(tmp_path):
    dated = (
        "Id,IsoCode,StartDate,NextStartDate,ConversionRate\n"
        "1,MXN,2024-01-01,2024-06-01,16.000000\n"
        "2,MXN,2024-06-01,2024-07-01,20.000000\n"
    )
    folder = export(
        tmp_path,
        ("Opportunity.csv", OPPORTUNITY),
        ("CurrencyType.csv", CURRENCY_TYPE),
        ("DatedConversionRate.csv", dated),
    )
    m = june(folder)
    # m1 closed on 2024-06-10: the rate from 2024-06-01 applies, 170,000 / 20 = 8,500
    assert m["kpis"]["won_amount"] == pytest.approx(8_500)
    assert m["kpis"]["open_amount"] == pytest.approx(3_500)  # COP, PEN: CurrencyType's rates
    assert m["source"]["currency"]["rates_from"] == "CurrencyType.csv and DatedConversionRate.csv"


def test_rates_in_funnel_toml_win_over_the_exports(tmp_path):
    folder = export(tmp_path, ("Opportunity.csv", OPPORTUNITY), ("CurrencyType.csv", CURRENCY_TYPE))
    rates = ExchangeRates(
        "funnel.toml [currency.rates]",
        (ExchangeRate("MXN", 20.0), ExchangeRate("COP", 4000.0), ExchangeRate("PEN", 3.75)),
        base="USD",
    )
    m = june(folder, replace(SETTINGS, rates=rates))
    assert m["kpis"]["won_amount"] == pytest.approx(8_500)  # 170,000 / 20
    assert m["source"]["currency"]["rates_from"] == "funnel.toml [currency.rates]"


def test_a_currency_the_rates_lack_stops_the_run_naming_it(tmp_path):
    folder = export(
        tmp_path,
        ("Opportunity.csv", OPPORTUNITY),
        ("CurrencyType.csv", CURRENCY_TYPE.replace("3,COP,4000.000000,2,true,false\n", "")),
    )
    with pytest.raises(UnusableInputError, match=r"no exchange rate for COP in CurrencyType.csv"):
        read_inputs(folder, SETTINGS)


def test_an_export_in_one_currency_is_reported_in_it_unless_another_is_configured(tmp_path):
    folder = export(
        tmp_path,
        (
            "Opportunity.csv",
            "\n".join(
                line.rsplit(",", 1)[0] + ",MXN" if i else line
                for i, line in enumerate(OPPORTUNITY.strip().splitlines())
            )
            + "\n",
        ),
    )
    m = june(folder)  # funnel.toml names no currency: the export's own
    assert (m["currency"], m["kpis"]["won_amount"]) == ("MXN", 170_000)
    assert m["source"]["currency"]["rates_from"] is None
    configured = replace(SETTINGS, currency="USD", currency_configured=True)
    with pytest.raises(UnusableInputError) as error:
        read_inputs(folder, configured)
    assert str(error.value).startswith(
        "Opportunity.csv: amounts are in MXN 4 deals but the report currency is USD"
    )


def test_history_amounts_are_converted_at_their_deals_rate(tmp_path):
    history = (
        "OpportunityId,StageName,CreatedDate,Amount\n"
        "p1,Prospecting,2024-05-01,7500\n"
        "p1,Negotiation/Review,2024-06-05,3750\n"
    )
    folder = export(
        tmp_path,
        ("Opportunity.csv", OPPORTUNITY),
        ("OpportunityHistory.csv", history),
        ("CurrencyType.csv", CURRENCY_TYPE),
    )
    checked = check_inputs(read_inputs(folder, SETTINGS))
    amounts = checked.tables["stage_history"].sort("entered_at")["amount"].to_list()
    assert amounts == pytest.approx([2_000.0, 1_000.0])  # PEN / 3.75


def test_an_unreadable_currency_quarantines_its_row(tmp_path):
    text = OPPORTUNITY + "x1,Prospecting,2024-05-01,2024-08-01,false,false,10,Pesos\n"
    folder = export(tmp_path, ("Opportunity.csv", text), ("CurrencyType.csv", CURRENCY_TYPE))
    checked = check_inputs(read_inputs(folder, SETTINGS))
    quality = checked.quality["opportunities"]
    assert (quality["rows_read"], quality["rows_valid"], quality["rows_quarantined"]) == (5, 4, 1)
    assert "cannot read as a currency" in quality["reasons"][0]["reason"]
    assert by_key(checked.source["currency"]["converted"], "currency")["MXN"]["deals"] == 1


def test_a_negative_amount_is_quarantined_quoting_the_value_in_the_file(tmp_path):
    text = OPPORTUNITY.replace(",3750,PEN", ",-3750,PEN")
    folder = export(tmp_path, ("Opportunity.csv", text), ("CurrencyType.csv", CURRENCY_TYPE))
    checked = check_inputs(read_inputs(folder, SETTINGS))
    # it was "got '-1000.0'": the value converted to USD, which the file does not hold
    assert checked.quarantine["opportunities"]["_reasons"].to_list() == [
        "amount: negative value (got '-3750.0')"
    ]
