"""Typed canonical tables from raw string columns, with a reason for every value that can't be read.

One row in, one row out: `_row` (the input row number) is kept, and `_parse_reasons` lists the
values that could not be read. A value that cannot be read becomes null *and* a reason, never a
silent null.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import polars as pl

from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import (
    BEST_CASE,
    CHANNELS,
    CLOSED,
    COMMIT,
    FORECAST_CATEGORIES,
    LOST,
    OMITTED,
    OPEN,
    PARSE_REASONS,
    PIPELINE,
    READ_REASON,
    STATUSES,
    WON,
)
from funnel_reports.transforms.funnel_model import FunnelModel, ParseOptions
from funnel_reports.transforms.staging.currency import CODE, CURRENCY, parse_currency

ZONED_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z")
TIME_FORMATS = ("%H:%M:%S%.f", "%H:%M", "%I:%M:%S %p", "%I:%M %p", "%I:%M:%S%p", "%I:%M%p")
NUMERIC_DATE = r"^(\d{1,4})[-/.](\d{1,2})[-/.](\d{1,4})(?:[T ]+(.+))?$"
EXCEL_SERIAL = r"^\d{4,5}(?:\.\d+)?$"
ZONE_SUFFIX = r"(?i)(?:Z|[+-]\d{2}:?\d{2})$"  # a UTC offset ending a time (HubSpot's API)
EXCEL_EPOCH = datetime(1899, 12, 30)
CURRENCY_MARKS = r"(?i)(?:US\$|HK\$|RMB|CNY|USD|EUR|GBP|JPY|[¥￥$€£]|元)"
AMOUNT_MULTIPLIERS = {"万": 1e4, "亿": 1e8, "k": 1e3, "m": 1e6, "mn": 1e6, "b": 1e9, "bn": 1e9}
STATUS_VALUES = {
    "open": OPEN,
    "in progress": OPEN,
    "active": OPEN,
    "pending": OPEN,
    "跟进中": OPEN,
    "进行中": OPEN,
    "未成交": OPEN,
    "进行": OPEN,
    "won": WON,
    "closed won": WON,
    "closed-won": WON,
    "closedwon": WON,
    "win": WON,
    "赢单": WON,
    "成交": WON,
    "已成交": WON,
    "签约": WON,
    "已签约": WON,
    "lost": LOST,
    "closed lost": LOST,
    "closed-lost": LOST,
    "closedlost": LOST,
    "loss": LOST,
    "输单": LOST,
    "丢单": LOST,
    "已丢单": LOST,
    "失败": LOST,
    "已输单": LOST,
}
# the forecast categories as Salesforce (ForecastCategoryName; the API's ForecastCategory, where
# "Forecast" is commit), HubSpot (hs_forecast_category) and Dynamics write them
FORECAST_CATEGORY_VALUES = {
    "commit": COMMIT,
    "committed": COMMIT,
    "forecast": COMMIT,
    "best case": BEST_CASE,
    "bestcase": BEST_CASE,
    "best_case": BEST_CASE,
    "upside": BEST_CASE,
    "pipeline": PIPELINE,
    "omitted": OMITTED,
    "omit": OMITTED,
    "closed": CLOSED,
    "won": CLOSED,
    "lost": CLOSED,
    "承诺": COMMIT,
    "最佳情况": BEST_CASE,
    "管道": PIPELINE,
    "忽略": OMITTED,
    "已关闭": CLOSED,
}

CHANNEL_VALUES = {
    "phone": "phone",
    "call": "phone",
    "电话": "phone",
    "phone call": "phone",
    "meeting": "meeting",
    "会议": "meeting",
    "面谈": "meeting",
    "video call": "meeting",
    "email": "email",
    "e-mail": "email",
    "mail": "email",
    "邮件": "email",
    "电子邮件": "email",
    "visit": "visit",
    "拜访": "visit",
    "上门": "visit",
    "上门拜访": "visit",
    "现场": "visit",
    "message": "message",
    "微信": "message",
    "短信": "message",
    "消息": "message",
    "sms": "message",
    "wechat": "message",
    "chat": "message",
    "其他": "other",
    "other": "other",
}
BOOLEAN_VALUES = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "y": True,
    "是": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
    "n": False,
    "否": False,
}


def blank_to_null(raw: pl.Expr) -> pl.Expr:
    """Trimmed text; empty or whitespace-only is null."""
    text = raw.str.strip_chars()
    return pl.when(text.str.len_bytes() > 0).then(text)


# what pandas, databases and spreadsheets write for nothing: read as blank (case-insensitive,
# trimmed) where the cell is optional, missing where it is required; `parsed_table` counts them
NULL_WORD = r"(?i)^\s*(?:none|null|n/a|nan|-)\s*$"
# a text cell to trim, empty, or a null word
UNTRIMMED_OR_NULL_WORD = r"(?i)^\s|\s$|^(?:|none|null|n/a|nan|-)$"


def blank_or_null_word(raw: pl.Expr) -> pl.Expr:
    """Trimmed text; empty, whitespace-only or a null word (None, NULL, N/A, NaN, -) is null."""
    text = raw.str.strip_chars()
    return pl.when((text.str.len_bytes() > 0) & ~text.str.contains(NULL_WORD)).then(text)


def _cjk_dates(text: pl.Expr) -> pl.Expr:
    """2024年6月30日 14:05 -> 2024-6-30 14:05."""
    return text.str.replace(
        r"^(\d{2,4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?\s*", "$1-$2-$3 "
    ).str.strip_chars()


def _two_digit_year(year: pl.Expr) -> pl.Expr:
    """Years written with two digits: 00-68 are 2000-2068, 69-99 are 1969-1999 (as strptime)."""
    return (
        pl.when(year < 100)
        .then(pl.when(year < 69).then(year + 2000).otherwise(year + 1900))
        .otherwise(year)
    )


def _numeric_date(text: pl.Expr, date_order: str) -> tuple[pl.Expr, pl.Expr]:
    """(date, time text) of `2024-06-30`, `30.06.2024`, `06/30/24 08:55 PM` ... ."""
    parts = text.str.extract_groups(NUMERIC_DATE)
    a, b, c = (parts.struct.field(str(i)) for i in (1, 2, 3))
    first_is_year = a.str.len_chars() == 4
    day_first = {"DMY": (a, b, c), "MDY": (b, a, c), "YMD": (c, b, a)}[date_order]
    day = pl.when(first_is_year).then(c).otherwise(day_first[0]).cast(pl.Int32, strict=False)
    month = pl.when(first_is_year).then(b).otherwise(day_first[1]).cast(pl.Int32, strict=False)
    year = pl.when(first_is_year).then(a).otherwise(day_first[2]).cast(pl.Int32, strict=False)
    text_date = pl.format(
        "{}-{}-{}",
        _two_digit_year(year).cast(pl.String).str.zfill(4),
        month.cast(pl.String).str.zfill(2),
        day.cast(pl.String).str.zfill(2),
    )
    checked = text_date.str.to_date("%Y-%m-%d", strict=False)  # 2024-02-30 stays unreadable
    return checked, parts.struct.field("4")


def _time_of_day(text: pl.Expr) -> pl.Expr:
    clean = text.str.strip_chars().str.to_uppercase()
    return pl.coalesce([clean.str.to_time(f, strict=False) for f in TIME_FORMATS])


def localized(naive: pl.Expr, timezone: str) -> pl.Expr:
    """A naive local date/time as a UTC instant of `timezone`.

    An ambiguous local time (clocks went back) is the earlier instant. A local time that does
    not exist (clocks jumped forward over it) is read with the offset in force just before the
    jump: a midnight skipped by the jump (São Paulo until 2019, Beirut) is the first instant of
    that day that exists, 02:30 in Berlin's spring gap is 03:30 CEST. Python's zoneinfo reads
    such times the same way (fold=0), so the period boundaries agree.
    """
    local = naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    # the offset of a day before (no zone changes its offset twice within a day)
    day_before = naive - pl.duration(days=1)
    offset = day_before - day_before.dt.replace_time_zone(
        timezone, ambiguous="earliest", non_existent="null"
    ).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    skipped = (naive - offset).dt.replace_time_zone("UTC")
    return pl.coalesce(local.dt.convert_time_zone("UTC"), skipped)


def parse_timestamp(raw: pl.Expr, *, timezone: str, date_order: str = "DMY") -> pl.Expr:
    """A timestamp as UTC: ISO 8601 with a zone, or a local date/time in `timezone`.

    Local forms: ISO without a zone, `2024/6/30`, `30.06.2024`, `06/30/24 08:55 PM` (numeric
    dates that do not start with a 4-digit year are read in `date_order`), `2024年6月30日`,
    and Excel serial numbers (days since 1899-12-30).
    """
    text = _cjk_dates(blank_to_null(raw))
    iso = text.str.replace(" ", "T").str.replace(r"(?i)Z$", "+00:00")
    iso = iso.str.replace(r"([+-]\d{2})(\d{2})$", "$1:$2")
    zoned = pl.coalesce(
        [
            iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
            for f in ZONED_TIMESTAMP_FORMATS
        ]
    )
    date, time_text = _numeric_date(text, date_order)
    time = pl.when(time_text.is_null()).then(pl.time(0, 0, 0)).otherwise(_time_of_day(time_text))
    local = date.cast(pl.Datetime("us")).dt.combine(time)
    serial = pl.when(text.str.contains(EXCEL_SERIAL)).then(
        pl.lit(EXCEL_EPOCH).cast(pl.Datetime("us"))
        + pl.duration(
            microseconds=(text.cast(pl.Float64, strict=False) * 86_400e6).round(0).cast(pl.Int64)
        )
    )
    return pl.coalesce(zoned, localized(pl.coalesce(local, serial), timezone))


def parse_date(raw: pl.Expr, *, date_order: str = "DMY") -> pl.Expr:
    """A calendar date in any of the forms `parse_timestamp` reads (a time part is dropped)."""
    text = _cjk_dates(blank_to_null(raw))
    day, time_text = _numeric_date(text, date_order)
    time_text = time_text.str.replace(ZONE_SUFFIX, "")  # the date as written: 2024-06-20T10:00Z
    date = pl.when(time_text.is_null() | _time_of_day(time_text).is_not_null()).then(day)
    serial = pl.when(text.str.contains(EXCEL_SERIAL)).then(
        pl.lit(EXCEL_EPOCH.date())
        + pl.duration(days=text.cast(pl.Float64, strict=False).floor().cast(pl.Int64))
    )
    return pl.coalesce(date, serial)


def amount_number(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """An amount's number as typed (without currency marks, sign, brackets or multiplier,
    spaces inside it kept), whether it is negative, and its multiplier's name."""
    text = blank_to_null(raw).str.replace_all(CURRENCY_MARKS, "").str.strip_chars()
    negative = text.str.contains(r"^\(.*\)$") | text.str.starts_with("-")
    text = text.str.strip_chars("()").str.strip_chars().str.strip_prefix("-").str.strip_chars()
    suffix = text.str.extract(r"(?i)(万|亿|bn|mn|[kmb])$", 1).str.to_lowercase()
    number = text.str.replace(r"(?i)\s*(万|亿|bn|mn|[kmb])$", "")
    return number, negative, suffix


def amount_pattern(decimal: str, thousands: str) -> str:
    """A number whose separators fit: digits, or groups of three after the first one to
    three digits (a space may group them too), then one decimal mark and digits."""
    group = f"[{re.escape(thousands)}\\s]" if thousands else r"\s"
    mark = re.escape(decimal)
    return rf"^(?:\d+|\d{{1,3}}(?:{group}\d{{3}})+)(?:{mark}\d+)?$|^{mark}\d+$"


def parse_amount(raw: pl.Expr, *, decimal: str = ".", thousands: str = ",") -> pl.Expr:
    """Amounts as people type them: ¥250,000 · 250000.00 · 25万 · 1.2M · (1,000) · 3k; read only
    when the separators fit `decimal` and `thousands` (`12,34` is no amount when the
    thousands separator is a comma) and the value is finite (`amount_problem` says why not)."""
    number, negative, suffix = amount_number(raw)
    valid = number.str.contains(amount_pattern(decimal, thousands))
    digits = number.str.replace_all(r"\s", "")
    if thousands:
        digits = digits.str.replace_all(thousands, "", literal=True)
    if decimal != ".":
        digits = digits.str.replace_all(decimal, ".", literal=True)
    factor = suffix.replace_strict(AMOUNT_MULTIPLIERS, default=1.0, return_dtype=pl.Float64)
    value = digits.cast(pl.Float64, strict=False) * factor
    value = pl.when(valid & value.is_finite()).then(value)
    return pl.when(negative).then(-value).otherwise(value)


def amount_problem(
    raw: pl.Expr, label: str, *, decimal: str = ".", thousands: str = ","
) -> pl.Expr:
    """Why an amount `parse_amount` leaves unread cannot be believed, where it looks like a
    number: separators that do not fit, or a value too large to be finite; null otherwise."""
    number, _, _ = amount_number(raw)
    numeric = number.str.contains(r"^[0-9.,'\s]*[0-9][0-9.,'\s]*$")
    fits = number.str.contains(amount_pattern(decimal, thousands))
    return (
        pl.when(numeric & ~fits)
        .then(pl.format(reasons.SEPARATORS, pl.lit(label), pl.lit(decimal), pl.lit(thousands), raw))
        .when(numeric & fits)
        .then(pl.format(reasons.NOT_FINITE, pl.lit(label), raw))
    )


def parse_boolean(raw: pl.Expr) -> pl.Expr:
    return (
        blank_to_null(raw)
        .str.to_lowercase()
        .replace_strict(BOOLEAN_VALUES, default=None, return_dtype=pl.Boolean)
    )


def _lookup(raw: pl.Expr, mapping: Mapping[str, str]) -> pl.Expr:
    lowered = {k.strip().lower(): v for k, v in mapping.items()}
    return (
        blank_to_null(raw)
        .str.to_lowercase()
        .replace_strict(list(lowered), list(lowered.values()), default=None, return_dtype=pl.String)
    )


def parse_status(raw: pl.Expr, *, options: ParseOptions) -> pl.Expr:
    return _lookup(raw, {**STATUS_VALUES, **options.statuses})


def parse_channel(raw: pl.Expr, *, options: ParseOptions) -> pl.Expr:
    return _lookup(raw, {**CHANNEL_VALUES, **options.channels})


def parse_forecast_category(raw: pl.Expr, *, options: ParseOptions) -> pl.Expr:
    return _lookup(raw, {**FORECAST_CATEGORY_VALUES, **options.forecast_categories})


def infer_date_order(raw: pl.LazyFrame, columns: list[str], *, default: str) -> str:
    """DMY when some date starts with a part over 12, MDY when the middle part is; else default.

    One export uses one format, so every date column of a file votes together.
    """
    present = [c for c in columns if c in raw.collect_schema().names()]
    if not present:
        return default
    votes = (
        raw.select(pl.concat_list([blank_to_null(pl.col(c)) for c in present]).alias("v"))
        .explode("v")
        .select(pl.col("v").str.extract_groups(NUMERIC_DATE).alias("p"))
        .filter(pl.col("p").struct.field("1").str.len_chars() <= 2)
        .select(
            (pl.col("p").struct.field("1").cast(pl.Int32, strict=False) > 12).sum().alias("dmy"),
            (pl.col("p").struct.field("2").cast(pl.Int32, strict=False) > 12).sum().alias("mdy"),
        )
        .collect()
        .row(0, named=True)
    )
    if votes["dmy"] and not votes["mdy"]:
        return "DMY"
    if votes["mdy"] and not votes["dmy"]:
        return "MDY"
    return default


NUMBERING = r"^\s*\d{1,2}\s*[.、:：)）_\-]\s*"


def stage_lookup(funnel: FunnelModel, options: ParseOptions) -> dict[str, str]:
    """Lower-cased input value -> stage id, or "lost": ids, labels, aliases, mapped values."""
    lookup: dict[str, str] = {LOST: LOST}
    for stage in funnel.stages:
        for name in (stage.id, stage.label_en, stage.label_zh, *stage.aliases):
            lookup[name.strip().lower()] = stage.id
    lookup.update({k.strip().lower(): v for k, v in options.stages.items()})
    return lookup


def parse_stage(raw: pl.Expr, *, funnel: FunnelModel, options: ParseOptions) -> pl.Expr:
    """Stage id (or "lost") of a value: as written, or without a numbering like `3.` / `3 -`."""
    lookup = stage_lookup(funnel, options)
    text = blank_to_null(raw).str.to_lowercase()

    def find(value: pl.Expr) -> pl.Expr:
        return value.replace_strict(
            list(lookup), list(lookup.values()), default=None, return_dtype=pl.String
        )

    return pl.coalesce(find(text), find(text.str.replace(NUMBERING, "")))


def parsed_column(
    name: str,
    dtype: pl.DataType,
    *,
    funnel: FunnelModel,
    options: ParseOptions,
    timezone: str,
    date_order: str,
) -> pl.Expr:
    raw = pl.col(name)
    if name == "stage":  # "lost" stays: in the history it records the loss itself
        return parse_stage(raw, funnel=funnel, options=options)
    if name == "status":
        return parse_status(raw, options=options)
    if name == "channel":
        return parse_channel(raw, options=options)
    if name == "forecast_category":
        return parse_forecast_category(raw, options=options)
    if name == CURRENCY:
        return parse_currency(blank_to_null(raw))
    if isinstance(dtype, pl.Datetime):
        return parse_timestamp(raw, timezone=timezone, date_order=date_order)
    if dtype == pl.Date:
        return parse_date(raw, date_order=date_order)
    if dtype == pl.Float64:
        return parse_amount(raw, decimal=options.decimal, thousands=options.thousands)
    return blank_to_null(raw)


KINDS = {
    "stage": "stage",
    "status": f"status ({', '.join(STATUSES[:-1])} or {STATUSES[-1]})",
    "channel": f"channel ({', '.join(CHANNELS[:-1])} or {CHANNELS[-1]})",
    "forecast_category": "forecast category "
    f"({', '.join(FORECAST_CATEGORIES[:-1])} or {FORECAST_CATEGORIES[-1]})",
    CURRENCY: "currency (an ISO 4217 code such as USD, or its name)",
}


def _kind(name: str, dtype: pl.DataType) -> str:
    if name in KINDS:
        return KINDS[name]
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    if dtype == pl.Date:
        return "date"
    return "number"


ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?P<sep>[T ])\d{2}:\d{2}(?P<seconds>:\d{2})?(?P<fraction>\.\d+)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}|[+-]\d{4})?$"
)


def _digits(text: pl.Expr, start: int, length: int) -> pl.Expr:
    """The number written at a fixed position (the shape check makes sure it is digits)."""
    return text.str.slice(start, length).cast(pl.Int64, strict=False)


def iso_timestamp(text: pl.Expr, sample: str, *, timezone: str) -> pl.Expr | None:
    """Timestamps laid out exactly like `sample` (an ISO 8601 timestamp or date), read by
    position: the local part with one fixed format, the fraction and the UTC offset as
    numbers. Any other layout is null (the full parser reads it). None if `sample` is no
    ISO timestamp."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", sample):
        local_format, fraction, zone = "%Y-%m-%d", "", ""
    elif shape := ISO_TIMESTAMP.match(sample):
        local_format = f"%Y-%m-%d{shape['sep']}%H:%M" + (":%S" if shape["seconds"] else "")
        fraction, zone = shape["fraction"] or "", shape["zone"] or ""
    else:
        return None
    if len(fraction) > 7:  # finer than microseconds: left to the full parser
        return None
    local_end = len(sample) - len(fraction) - len(zone)
    instant = text.str.slice(0, local_end).str.to_datetime(
        local_format, strict=False, time_unit="us", cache=False
    )
    if fraction:
        digits = len(fraction) - 1
        micros = _digits(text, local_end + 1, digits) * 10 ** (6 - digits)
        instant = instant + pl.duration(microseconds=micros)
    # the sample's exact shape (digits where it has digits): no space or sign inside a number
    exact = text.str.contains("^" + re.sub(r"\d", r"\\d", re.escape(sample)) + "$")
    if "%S" in local_format:  # a leap second (:60) is left to the full parser, which rejects it
        exact = exact & (_digits(text, 17, 2) < 60)
    if not zone:
        return pl.when(exact).then(localized(instant, timezone))
    at = local_end + len(fraction)  # the shape fixes the zone's form and sign: the sample's
    if zone == "Z":
        offset, zone_ok = pl.lit(0), pl.lit(True)
    else:
        hours = _digits(text, at + 1, 2)
        minutes = _digits(text, at + (4 if ":" in zone else 3), 2)
        offset = (-1 if zone.startswith("-") else 1) * (hours * 60 + minutes)
        zone_ok = (hours < 24) & (minutes < 60)
    utc = (instant - pl.duration(minutes=offset)).dt.replace_time_zone("UTC")
    return pl.when(exact & zone_ok).then(utc)


def exact_lookup(raw: pl.Expr, mapping: Mapping[str, str]) -> pl.Expr:
    """The value of a name written exactly as a lookup key (lower-case, trimmed); null for any
    other spelling, which the full parser reads."""
    return raw.replace_strict(list(mapping), list(mapping.values()), default=None)


def fast_column(
    name: str,
    dtype: pl.DataType,
    sample: str | None,
    *,
    funnel: FunnelModel,
    timezone: str,
    options: ParseOptions,
) -> pl.Expr | None:
    """A cheap parse of the column's common, unambiguous form; null where it does not apply.

    Timestamps are read in the ISO layout of the column's first value (`sample`), one
    layout for the whole column, as one export writes them; dates as YYYY-MM-DD; amounts as
    plain decimals; stages, statuses and channels written exactly as their lookup keys. The
    full parser then reads only the distinct values left over.
    """
    text = pl.col(name)
    if name == "stage":
        return exact_lookup(text, stage_lookup(funnel, options))
    if name == CURRENCY:
        return pl.when(text.str.contains(CODE)).then(text)
    if name in ("status", "channel", "forecast_category"):
        values, extra = {
            "status": (STATUS_VALUES, options.statuses),
            "channel": (CHANNEL_VALUES, options.channels),
            "forecast_category": (FORECAST_CATEGORY_VALUES, options.forecast_categories),
        }[name]
        return exact_lookup(text, {k.strip().lower(): v for k, v in {**values, **extra}.items()})
    if isinstance(dtype, pl.Datetime):
        return iso_timestamp(text, sample.strip(), timezone=timezone) if sample else None
    if dtype == pl.Date:
        return pl.when(text.str.contains(r"^\d{4}-\d{2}-\d{2}$")).then(
            text.str.to_date("%Y-%m-%d", strict=False)
        )
    if dtype == pl.Float64 and options.decimal == ".":
        value = text.cast(pl.Float64, strict=False)
        return pl.when(text.str.contains(r"^\d+(?:\.\d+)?$") & value.is_finite()).then(value)
    return None


def first_values(raw: pl.LazyFrame, names: list[str], rows: int = 1000) -> dict[str, str | None]:
    """Each column's first non-blank value among the first `rows` rows."""
    head = raw.select(names).head(rows).collect()
    return {
        name: next((v for v in head[name] if v is not None and v.strip()), None) for name in names
    }


def unreadable_reason(
    name: str, dtype: pl.DataType, header: str, options: ParseOptions | None = None
) -> pl.Expr:
    """`<column> (<header>): cannot read '<value>' as <kind>` of the raw value in `name`; for
    an amount that looks like a number, why it is not one (`amount_problem`)."""
    label = name if header == name else f"{name} ({header})"
    generic = pl.format(reasons.UNREADABLE, pl.lit(label), pl.lit(_kind(name, dtype)), pl.col(name))
    if dtype != pl.Float64 or name in KINDS:
        return generic
    options = options or ParseOptions()
    specific = amount_problem(
        pl.col(name), label, decimal=options.decimal, thousands=options.thousands
    )
    return pl.coalesce(specific, generic)


def parse_table(
    raw: pl.LazyFrame,
    *,
    columns: Mapping[str, pl.DataType],
    funnel: FunnelModel,
    options: ParseOptions,
    timezone: str,
    headers: Mapping[str, str] | None = None,
    untyped: Collection[str] = (),
) -> pl.LazyFrame:
    """The typed table of `parsed_table`."""
    return parsed_table(
        raw,
        columns=columns,
        funnel=funnel,
        options=options,
        timezone=timezone,
        headers=headers,
        untyped=untyped,
    ).frame


@dataclass(frozen=True)
class ParsedTable:
    """A typed table and, per column, how many of its cells held a null word (read as null)."""

    frame: pl.LazyFrame
    null_words: dict[str, int]


def parsed_table(
    raw: pl.LazyFrame,
    *,
    columns: Mapping[str, pl.DataType],
    funnel: FunnelModel,
    options: ParseOptions,
    timezone: str,
    headers: Mapping[str, str] | None = None,
    untyped: Collection[str] = (),
) -> ParsedTable:
    """The typed table: every canonical column (null when absent), `_row`, `_parse_reasons`.

    `headers` names the input header behind a canonical column, for the reasons; the
    `untyped` text columns (no figure reads them) are kept as they came, neither trimmed nor
    checked. A null word (`NULL_WORD`: None, NULL, N/A, NaN, -) that the column's parser does
    not read as a value is null, without a reason, and counted.

    Each typed column takes one pass of its fast path (`fast_column`); the full parser then
    reads each distinct value the fast path left over once, and its values and reasons are
    joined back (`slow_parsed`), so a million rows in the export's own format cost one pass
    and no reason is built for a value that was read. Text columns: `text_values`.
    """
    headers = headers or {}
    present = [n for n in columns if n in raw.collect_schema().names()]
    typed_names = [n for n in present if columns[n] != pl.String or n in KINDS]
    kept = [n for n in present if n in untyped and n not in typed_names]
    frame, fast, leftovers = fast_parsed(
        raw, {n: columns[n] for n in typed_names}, funnel=funnel, timezone=timezone, options=options
    )
    dated = [n for n in present if isinstance(columns[n], pl.Datetime) or columns[n] == pl.Date]
    date_order = options.date_order or leftover_date_order(leftovers, dated, options)
    frame, values, unreadable, null_words = typed_values(
        frame,
        {n: columns[n] for n in typed_names},
        fast,
        leftovers,
        options=options,
        date_order=date_order,
        funnel=funnel,
        timezone=timezone,
        headers=headers,
    )
    plain_text = [n for n in present if n not in typed_names and n not in kept]
    text, text_null_words = text_values(frame, plain_text)
    values |= {name: pl.col(name) for name in kept} | text
    null_words |= text_null_words
    read = [pl.col(READ_REASON)] if READ_REASON in frame.columns else []
    reason_list = (
        pl.concat_list([*read, *unreadable]).list.drop_nulls()  # the reader's reason first
        if read or unreadable
        else pl.lit([], dtype=pl.List(pl.String))
    )
    typed = [
        values[name].alias(name) if name in values else pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in columns.items()
    ]
    return ParsedTable(
        frame.lazy().select(pl.col("_row"), *typed, reason_list.alias(PARSE_REASONS)),
        {name: null_words[name] for name in columns if name in null_words},
    )


def fast_parsed(
    raw: pl.LazyFrame,
    typed: Mapping[str, pl.DataType],
    *,
    funnel: FunnelModel,
    timezone: str,
    options: ParseOptions,
) -> tuple[pl.DataFrame, dict[str, pl.Expr | None], dict[str, pl.DataFrame]]:
    """One eager pass of every typed column's fast path (`__fast_<column>` beside the raw
    columns), each column's fast expression (None: it has none), and the distinct non-blank
    values each fast path left over (empty where it read every value there is)."""
    samples = first_values(raw, list(typed))
    fast = {
        name: fast_column(
            name, dtype, samples[name], funnel=funnel, timezone=timezone, options=options
        )
        for name, dtype in typed.items()
    }
    frame = raw.with_columns(
        expr.alias(f"__fast_{name}") for name, expr in fast.items() if expr is not None
    ).collect()
    left = [
        name
        for name, expr in fast.items()
        if expr is None or frame[f"__fast_{name}"].null_count() > frame[name].null_count()
    ]
    leftovers = {name: pl.DataFrame(schema={name: pl.String}) for name in fast}
    for name, distinct in zip(
        left,
        pl.collect_all(
            frame.lazy()
            .select(name, *([f"__fast_{name}"] if fast[name] is not None else []))
            .filter(pl.col(f"__fast_{name}").is_null() if fast[name] is not None else True)
            .select(pl.col(name).unique())
            .filter(blank_to_null(pl.col(name)).is_not_null())
            for name in left
        ),
        strict=True,
    ):
        leftovers[name] = distinct
    return frame, fast, leftovers


def leftover_date_order(
    leftovers: Mapping[str, pl.DataFrame], dated: list[str], options: ParseOptions
) -> str:
    """The day/month order of numeric dates, voted on by every date column's values that
    the fast path left over (`infer_date_order`)."""
    votes = (
        pl.concat([leftovers[n].lazy().select(pl.col(n).alias("v")) for n in dated])
        if dated
        else pl.LazyFrame(schema={"v": pl.String})
    )
    return infer_date_order(votes, ["v"], default=options.default_date_order)


def typed_values(
    frame: pl.DataFrame,
    typed: Mapping[str, pl.DataType],
    fast: Mapping[str, pl.Expr | None],
    leftovers: Mapping[str, pl.DataFrame],
    *,
    options: ParseOptions,
    date_order: str,
    funnel: FunnelModel,
    timezone: str,
    headers: Mapping[str, str],
) -> tuple[pl.DataFrame, dict[str, pl.Expr], list[str], dict[str, int]]:
    """Each typed column's value: the fast path's, else the full parser's of its leftovers
    (numeric dates read in `date_order`, joined back by `slow_parsed`); the frame with
    those joined, the reason columns, and the null words counted per column."""
    values: dict[str, pl.Expr] = {}
    unreadable: list[str] = []
    null_words: dict[str, int] = {}
    for name, dtype in typed.items():
        parts = [pl.col(f"__fast_{name}")] if fast[name] is not None else []
        if leftovers[name].height:
            slow = parsed_column(
                name,
                dtype,
                funnel=funnel,
                options=options,
                timezone=timezone,
                date_order=date_order,
            ).cast(dtype)
            frame, words = slow_parsed(
                frame, leftovers[name], name, slow, dtype, headers.get(name, name), options
            )
            null_words |= {name: words} if words else {}
            parts.append(pl.col(f"__slow_{name}"))
            unreadable.append(f"__reason_{name}")
        values[name] = pl.coalesce(parts).cast(dtype) if parts else pl.lit(None, dtype=dtype)
    return frame, values, unreadable, null_words


def slow_parsed(
    frame: pl.DataFrame,
    leftovers: pl.DataFrame,
    name: str,
    slow: pl.Expr,
    dtype: pl.DataType,
    header: str,
    options: ParseOptions,
) -> tuple[pl.DataFrame, int]:
    """`frame` with `__slow_<name>` (the full parser's value of each leftover) and
    `__reason_<name>` (why a leftover that is no null word cannot be read) joined by value;
    and how many cells held a null word."""
    unread = pl.col(f"__slow_{name}").is_null()
    parsed = (
        leftovers.with_columns(slow.alias(f"__slow_{name}"))
        .with_columns((unread & pl.col(name).str.contains(NULL_WORD)).alias("__null"))
        .with_columns(
            pl.when(unread & ~pl.col("__null"))
            .then(unreadable_reason(name, dtype, header, options))
            .alias(f"__reason_{name}")
        )
    )
    words = 0
    if parsed["__null"].any():
        null_values = parsed.filter("__null")[name].implode()
        words = int(frame.select(pl.col(name).is_in(null_values).sum()).item())
    joined = frame.join(parsed.drop("__null"), on=name, how="left", maintain_order="left")
    return joined, words


def text_values(frame: pl.DataFrame, names: list[str]) -> tuple[dict[str, pl.Expr], dict[str, int]]:
    """The text columns trimmed, null words as null (`blank_or_null_word`), and the count of
    null words per column; a column with nothing to trim is kept as it is, without a copy."""
    if not names:
        return {}, {}
    untrimmed = frame.select(
        pl.col(n).str.contains(UNTRIMMED_OR_NULL_WORD).any() for n in names
    ).row(0, named=True)
    values = {n: blank_or_null_word(pl.col(n)) if untrimmed[n] else pl.col(n) for n in names}
    trimmed = [n for n in names if untrimmed[n]]
    if not trimmed:
        return values, {}
    counts = frame.select(pl.col(n).str.contains(NULL_WORD).sum() for n in trimmed)
    return values, {n: int(count) for n, count in counts.row(0, named=True).items() if count}


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant a local day starts, as every parsed date is read (`localized`)."""
    start = pl.lit(datetime.combine(day, time())).cast(pl.Datetime("us"))
    instant: datetime = pl.select(localized(start, timezone)).item()
    return instant


def plausible_dates(
    typed: pl.DataFrame,
    raw: pl.DataFrame,
    *,
    columns: Mapping[str, pl.DataType],
    options: ParseOptions,
    timezone: str,
    headers: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """The typed table (`parsed_table`'s, row for row with `raw`) with each date outside the
    span an export can hold made null, and a reason added: before `options.earliest_date`,
    or after the export's date (`options.export_date`, when known) plus
    `options.latest_after_export_days`. A timestamp is judged by its local date. One min/max
    per date column when every date is inside."""
    headers = headers or {}
    earliest = options.earliest_date
    latest = (
        options.export_date + timedelta(days=options.latest_after_export_days)
        if options.export_date is not None
        else None
    )
    early = f"before {earliest} ([source.parse] earliest_date)"
    late = (
        f"after {latest} (the export's date {options.export_date} plus [source.parse] "
        f"latest_after_export_days = {options.latest_after_export_days})"
    )
    for name, dtype in columns.items():
        if name not in raw.columns or not (isinstance(dtype, pl.Datetime) or dtype == pl.Date):
            continue
        if isinstance(dtype, pl.Datetime):  # a local date's bounds as instants: no date per row
            lowest: date | datetime = local_midnight(earliest, timezone)
            highest: date | datetime | None = (
                local_midnight(latest + timedelta(days=1), timezone) if latest else None
            )
        else:
            lowest, highest = earliest, latest + timedelta(days=1) if latest else None
        value = pl.col(name)
        low, high = typed.select(value.min().alias("low"), value.max().alias("high")).row(0)
        if low is None or (low >= lowest and (highest is None or high < highest)):
            continue
        too_early = value < pl.lit(lowest)
        outside = too_early | (value >= pl.lit(highest) if highest is not None else pl.lit(False))
        header = headers.get(name, name)
        label = name if header == name else f"{name} ({header})"
        reason = pl.format(
            reasons.IMPLAUSIBLE_DATE,
            pl.lit(label),
            pl.when(too_early).then(pl.lit(early)).otherwise(pl.lit(late)),
            pl.lit(raw[name]).str.strip_chars(),
        )
        typed = typed.with_columns(
            pl.when(outside).then(None).otherwise(pl.col(name)).alias(name),
            pl.when(outside)
            .then(pl.concat_list(PARSE_REASONS, reason))
            .otherwise(pl.col(PARSE_REASONS))
            .alias(PARSE_REASONS),
        )
    return typed
