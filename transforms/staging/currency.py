"""Money in one currency: currency codes as exports write them, and every amount converted to
the report currency before any figure is computed.

Rates are units of a currency per one unit of a common base (Salesforce's `CurrencyType.csv`
holds them per one unit of the org's corporate currency; `[currency.rates]` in funnel.toml per
one unit of the report currency): an amount in currency C is worth `amount / rate(C) ×
rate(report)` in the report currency. Dated rates (Salesforce's `DatedConversionRate.csv`) are
in force from their start date until the next one; a deal is converted at the rates in force
on its conversion date (its close date when closed, else its expected close date, else its
creation date), as Salesforce's advanced currency management does, and its history amounts at
the same rates, so that a change of rate never reads as a change of amount.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from typing import Any

import polars as pl

from funnel_reports.transforms.funnel_model import ExchangeRate, ExchangeRates, RunSettings
from funnel_reports.transforms.staging.layout import SourceTable, UnusableInputError

CURRENCY = "currency"
CODE = r"^[A-Z]{3}$"
# currency names as CRMs display them (Dynamics 365 writes "US Dollar"), lower-case
CURRENCY_NAMES = {
    "us dollar": "USD",
    "u.s. dollar": "USD",
    "united states dollar": "USD",
    "美元": "USD",
    "euro": "EUR",
    "欧元": "EUR",
    "pound sterling": "GBP",
    "british pound": "GBP",
    "british pound sterling": "GBP",
    "japanese yen": "JPY",
    "yen": "JPY",
    "日元": "JPY",
    "chinese yuan": "CNY",
    "chinese yuan renminbi": "CNY",
    "yuan renminbi": "CNY",
    "renminbi": "CNY",
    "人民币": "CNY",
    "hong kong dollar": "HKD",
    "港币": "HKD",
    "new taiwan dollar": "TWD",
    "singapore dollar": "SGD",
    "canadian dollar": "CAD",
    "australian dollar": "AUD",
    "new zealand dollar": "NZD",
    "swiss franc": "CHF",
    "swedish krona": "SEK",
    "norwegian krone": "NOK",
    "danish krone": "DKK",
    "polish zloty": "PLN",
    "czech koruna": "CZK",
    "hungarian forint": "HUF",
    "romanian leu": "RON",
    "turkish lira": "TRY",
    "russian ruble": "RUB",
    "indian rupee": "INR",
    "indonesian rupiah": "IDR",
    "malaysian ringgit": "MYR",
    "philippine peso": "PHP",
    "thai baht": "THB",
    "vietnamese dong": "VND",
    "korean won": "KRW",
    "south korean won": "KRW",
    "mexican peso": "MXN",
    "colombian peso": "COP",
    "chilean peso": "CLP",
    "argentine peso": "ARS",
    "peruvian sol": "PEN",
    "peruvian nuevo sol": "PEN",
    "brazilian real": "BRL",
    "south african rand": "ZAR",
    "uae dirham": "AED",
    "united arab emirates dirham": "AED",
    "saudi riyal": "SAR",
    "israeli new shekel": "ILS",
    "egyptian pound": "EGP",
    "nigerian naira": "NGN",
    "kenyan shilling": "KES",
}
FIRST_DAY = date(1, 1, 1)


def parse_currency(raw: pl.Expr) -> pl.Expr:
    """An ISO 4217 code from a code in any case (`usd`) or a displayed name (`US Dollar`);
    null for anything else."""
    text = raw.str.strip_chars()
    upper = text.str.to_uppercase()
    by_name = text.str.to_lowercase().replace_strict(
        list(CURRENCY_NAMES), list(CURRENCY_NAMES.values()), default=None
    )
    return pl.when(upper.str.contains(CODE)).then(upper).otherwise(by_name)


def currency_counts(opportunities: pl.LazyFrame) -> dict[str | None, int]:
    """Deals per currency code written in the raw opportunities (None: blank), as read by
    `parse_currency`; a value no code or name matches is counted under itself."""
    if CURRENCY not in opportunities.collect_schema().names():
        return {}
    text = pl.col(CURRENCY).str.strip_chars()
    counts = (
        opportunities.group_by(CURRENCY)
        .len()
        .with_columns(
            pl.when(text.str.len_bytes() > 0)
            .then(pl.coalesce(parse_currency(pl.col(CURRENCY)), text))
            .alias(CURRENCY)
        )
        .group_by(CURRENCY)
        .agg(pl.col("len").sum())
        .collect()
    )
    return dict(counts.iter_rows())


def rate_table(rates: ExchangeRates) -> pl.LazyFrame:
    """One row per rate: currency, start (a constant rate starts on the first day), rate."""
    return pl.LazyFrame(
        {
            "currency": [r.currency for r in rates.rates],
            "start": [r.start or FIRST_DAY for r in rates.rates],
            "rate": [r.per_base for r in rates.rates],
        },
        schema={"currency": pl.String, "start": pl.Date, "rate": pl.Float64},
    ).sort("start")


def rate_on(
    frame: pl.LazyFrame, rates: pl.LazyFrame, *, currency: str, on: str, alias: str
) -> pl.LazyFrame:
    """`frame` with the rate of the currency in column `currency` in force on the date in
    column `on` (the earliest rate for a date before every start), as `alias`."""
    keyed = frame.with_columns(pl.col(on).fill_null(FIRST_DAY).alias("__on"))
    keyed = keyed.sort("__on")  # join_asof needs both sides sorted by date (rate_table is)
    renamed = rates.rename({"currency": currency, "rate": alias})
    backward = keyed.join_asof(
        renamed,
        left_on="__on",
        right_on="start",
        by=currency,
        strategy="backward",
        check_sortedness=False,  # polars cannot check it within `by` groups, and says so
    ).drop("start")
    earliest = rates.group_by("currency").agg(pl.col("rate").first().alias("__earliest"))
    return (
        backward.join(earliest.rename({"currency": currency}), on=currency, how="left")
        .with_columns(pl.coalesce(alias, "__earliest").alias(alias))
        .drop("__on", "__earliest")
    )


def conversion_date() -> pl.Expr:
    """The date a deal's amounts are converted at: its close date, else its expected close
    date, else its creation date."""
    return pl.coalesce(
        pl.col("closed_at").dt.date(), pl.col("expected_close_date"), pl.col("created_at").dt.date()
    )


def conversion_factors(
    rows: pl.LazyFrame, rates: ExchangeRates, *, report_currency: str
) -> pl.LazyFrame:
    """`rows` (with `__from`, a currency, and `__date`) with `__factor`: what one unit of
    `__from` is worth in the report currency on `__date`, in the order of `__order`."""
    table = rate_table(rates)
    rows = rows.with_columns(pl.lit(report_currency).alias("__to")).pipe(
        rate_on, table, currency="__from", on="__date", alias="__rate_from"
    )
    if report_currency in {r.currency for r in rates.rates}:
        rows = rows.pipe(rate_on, table, currency="__to", on="__date", alias="__rate_to")
    else:  # the report currency is the rates' base
        rows = rows.with_columns(pl.lit(1.0).alias("__rate_to"))
    return (
        rows.with_columns(
            pl.when(pl.col("__from") == pl.col("__to"))
            .then(1.0)
            .otherwise(pl.col("__rate_to") / pl.col("__rate_from"))
            .alias("__factor")
        )
        .drop("__to", "__rate_from", "__rate_to")
        .sort("__order")
    )


def converted_amount(factor: pl.Series) -> pl.Expr:
    """`amount` times its conversion factor; a negative amount (quarantined) stays as written,
    so that its reason quotes the value in the file."""
    amount = pl.col("amount")
    return pl.when(amount < 0).then(amount).otherwise(amount * factor).alias("amount")


class MissingRateError(ValueError):
    """An amount in a currency the rates do not hold (checked before, so a defect)."""


def history_factors(
    history: pl.DataFrame, deals: pl.DataFrame, rates: ExchangeRates, *, report_currency: str
) -> pl.DataFrame:
    """Each history row's conversion factor (`conversion_factors`), in the history's order:
    its own currency, else its deal's (at the deal's conversion date), else the report's."""
    deal_of = deals.lazy().select("opportunity_id", pl.col("__from").alias("__deal"), "__date")
    deal_of = deal_of.unique("opportunity_id", keep="first")  # a repeated id is quarantined
    own = pl.col(CURRENCY) if CURRENCY in history.columns else pl.lit(None, pl.String)
    return (
        history.lazy()
        .select(pl.int_range(pl.len()).alias("__order"), "opportunity_id", own.alias("__own"))
        .join(deal_of, on="opportunity_id", how="left")
        .select(
            "__order",
            pl.coalesce("__own", "__deal", pl.lit(report_currency)).alias("__from"),
            "__date",
        )
        .pipe(conversion_factors, rates, report_currency=report_currency)
        .collect()
    )


def in_report_currency(
    opportunities: pl.DataFrame,
    history: pl.DataFrame,
    *,
    rates: ExchangeRates,
    report_currency: str,
) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]]]:
    """Opportunities and history with every amount in the report currency and `currency` set
    to it (a blank currency is the report currency; a history row without one is in its
    deal's), and per original currency of the deals: how many, and the rates used (units per
    one unit of the report currency, lowest and highest)."""
    deals = (
        opportunities.lazy()
        .select(
            pl.int_range(pl.len()).alias("__order"),
            "opportunity_id",
            pl.col(CURRENCY).fill_null(report_currency).alias("__from"),
            conversion_date().alias("__date"),
        )
        .pipe(conversion_factors, rates, report_currency=report_currency)
        .collect()
    )
    entries = history_factors(history, deals, rates, report_currency=report_currency)
    for name, frame, factors in (
        ("opportunities", opportunities, deals),
        ("stage_history", history, entries),
    ):
        unpriced = factors.filter(pl.col("__factor").is_null() & frame["amount"].is_not_null())[
            "__from"
        ].unique()
        if unpriced.len():
            raise MissingRateError(f"{name}: no rate for {', '.join(unpriced.sort())}")
    converted = opportunities.with_columns(
        converted_amount(deals["__factor"]), pl.lit(report_currency).alias(CURRENCY)
    )
    history_converted = history.with_columns(
        converted_amount(entries["__factor"]), pl.lit(report_currency).alias(CURRENCY)
    )
    used = (
        deals.group_by("__from")
        .agg(
            pl.len().alias("deals"),
            (1 / pl.col("__factor")).min().alias("rate_min"),
            (1 / pl.col("__factor")).max().alias("rate_max"),
        )
        .sort("__from")
        .rename({"__from": "currency"})
        .to_dicts()
    )
    return converted, history_converted, used


RATE_HEADERS = ("IsoCode", "ConversionRate")  # Salesforce's CurrencyType / DatedConversionRate


def is_rate_table(table: SourceTable) -> bool:
    """A Salesforce currency table: CurrencyType.csv or DatedConversionRate.csv."""
    return all(h in table.header for h in RATE_HEADERS)


def export_rates(tables: list[SourceTable]) -> ExchangeRates | None:
    """The rates an export carries: Salesforce's CurrencyType.csv (one rate per currency, per
    one unit of the corporate currency, `IsCorporate`) with DatedConversionRate.csv (rates by
    date range) over it where it has rows; None without such files."""
    found = [t for t in tables if is_rate_table(t)]
    if not found:
        return None
    rates: list[ExchangeRate] = []
    base = None
    for table in sorted(found, key=lambda t: "StartDate" in t.header):
        dated = "StartDate" in table.header
        rows = table.rows.select(
            pl.col("IsoCode").str.strip_chars().str.to_uppercase().alias("currency"),
            pl.col("ConversionRate").str.strip_chars().cast(pl.Float64, strict=False).alias("rate"),
            (
                pl.col("StartDate").str.strip_chars().str.slice(0, 10).str.to_date(strict=False)
                if dated
                else pl.lit(None, pl.Date)
            ).alias("start"),
            (
                pl.col("IsCorporate").str.strip_chars().str.to_lowercase().is_in(["true", "1"])
                if "IsCorporate" in table.header
                else pl.lit(False)
            ).alias("is_corporate"),
            "_line",
        )
        bad = rows.filter(
            ~pl.col("currency").str.contains(CODE)
            | pl.col("rate").is_null()
            | (pl.col("rate") <= 0)
            | (pl.lit(dated) & pl.col("start").is_null())
        )
        if bad.height:
            line = bad.row(0, named=True)
            raise UnusableInputError(
                f"{table.name}: line {line['_line']} is not a currency rate (IsoCode "
                f"{line['currency']!r}, ConversionRate {line['rate']!r}"
                + (", StartDate" if dated else "")
                + "); expected a three-letter code and a positive rate per corporate unit"
            )
        corporate = rows.filter(pl.col("is_corporate"))["currency"]
        base = corporate[0] if corporate.len() else base
        rates += [
            ExchangeRate(row["currency"], row["rate"], row["start"])
            for row in rows.iter_rows(named=True)
        ]
    names = " and ".join(t.name for t in found)
    return ExchangeRates(source=names, rates=tuple(rates), base=base)


def currency_settings(
    opportunities: pl.LazyFrame,
    settings: RunSettings,
    *,
    export_rates: ExchangeRates | None,
    file_name: str,
) -> RunSettings:
    """The run's settings with the report currency settled and the rates to convert with, or
    an UnusableInputError (exit 2) of one line when amounts cannot all be put in one currency.

    The report currency is funnel.toml's; when it names none, the export's own when the
    export holds one currency only (else USD). Rates come from [currency.rates], else from
    the export. A blank currency is the report currency; a value that is no currency is a
    quarantine reason of its row, not a currency."""
    counts = {
        code: n
        for code, n in currency_counts(opportunities).items()
        if code is not None and re.fullmatch(CODE, code)
    }
    report = settings.currency
    if not settings.currency_configured and len(counts) == 1:
        report = next(iter(counts))
    rates = settings.rates or export_rates
    by_deals = sorted(counts.items(), key=lambda c: (-c[1], c[0]))
    foreign = {code: n for code, n in by_deals if code != report}
    settled = replace(settings, currency=report, rates=rates if foreign else None)
    if not foreign:
        return settled
    listed = ", ".join(f"{code} {n} deal{'s' if n != 1 else ''}" for code, n in foreign.items())
    example = next(iter(foreign))
    give = f"give [currency.rates] in funnel.toml ({example} = units of {example} per one {report})"
    if rates is None:
        if len(counts) == 1:
            raise UnusableInputError(
                f"{file_name}: amounts are in {listed} but the report currency is {report} "
                f"([source] currency) and there are no exchange rates; {give}, or set "
                f'currency = "{next(iter(foreign))}"'
            )
        every = ", ".join(
            f"{code} {n} deal{'s' if n != 1 else ''}"
            for code, n in sorted(counts.items(), key=lambda c: (-c[1], c[0]))
        )
        raise UnusableInputError(
            f"{file_name}: amounts in {len(counts)} currencies ({every}) and no exchange "
            f"rates to put them in {report}; {give}, or put the CRM's CurrencyType.csv "
            "beside the export"
        )
    missing = [code for code in foreign if code not in rates.currencies]
    if report not in rates.currencies:
        missing.append(report)
    if missing:
        raise UnusableInputError(
            f"{file_name}: no exchange rate for {', '.join(missing)} in {rates.source}; {give}"
        )
    return settled
