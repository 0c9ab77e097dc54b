from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from funnel_reports.schemas.vocabulary import PARSE_REASONS
from funnel_reports.transforms.funnel_model import ParseOptions, RunSettings
from funnel_reports.transforms.periods import parse_period
from funnel_reports.transforms.staging.parse import (
    infer_date_order,
    localized,
    parse_amount,
    parse_boolean,
    parse_channel,
    parse_date,
    parse_forecast_category,
    parse_stage,
    parse_status,
    parse_table,
    parse_timestamp,
)

FUNNEL = RunSettings().funnel


def parse(expr, values):
    return pl.DataFrame({"v": values}, schema={"v": pl.String}).select(expr).to_series().to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-06-30T10:00:00Z", datetime(2024, 6, 30, 10, tzinfo=UTC)),
        ("2024-06-30T10:00:00+08:00", datetime(2024, 6, 30, 2, tzinfo=UTC)),
        ("2024-06-30T10:00:00+0800", datetime(2024, 6, 30, 2, tzinfo=UTC)),
        ("2024-06-30 10:00:00", datetime(2024, 6, 30, 2, tzinfo=UTC)),  # naive: Asia/Shanghai
        ("2024-06-30", datetime(2024, 6, 29, 16, tzinfo=UTC)),  # bare date: local midnight
        ("2024-06-30T10:00:00.250", datetime(2024, 6, 30, 2, 0, 0, 250000, tzinfo=UTC)),
        ("  2024-06-30  ", datetime(2024, 6, 29, 16, tzinfo=UTC)),
        ("2024-02-30", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_timestamps_with_and_without_zone(text, expected):
    assert parse(parse_timestamp(pl.col("v"), timezone="Asia/Shanghai"), [text]) == [expected]


@pytest.mark.parametrize(
    ("zone", "text", "expected"),
    [
        # clocks jumped from 00:00 to 01:00: the day starts at 01:00 (-02:00)
        ("America/Sao_Paulo", "2017-10-15", datetime(2017, 10, 15, 3, tzinfo=UTC)),
        ("America/Sao_Paulo", "2018-11-04", datetime(2018, 11, 4, 3, tzinfo=UTC)),
        ("America/Sao_Paulo", "15/10/2017", datetime(2017, 10, 15, 3, tzinfo=UTC)),
        ("America/Sao_Paulo", "2017年10月15日", datetime(2017, 10, 15, 3, tzinfo=UTC)),
        ("America/Sao_Paulo", "43023", datetime(2017, 10, 15, 3, tzinfo=UTC)),  # Excel serial
        ("America/Sao_Paulo", "2017-10-15 00:30", datetime(2017, 10, 15, 3, 30, tzinfo=UTC)),
        ("America/Sao_Paulo", "2017-10-14", datetime(2017, 10, 14, 3, tzinfo=UTC)),  # -03:00
        # clocks went back from 00:00 to 23:00: 23:30 is the earlier one (-02:00)
        ("America/Sao_Paulo", "2018-02-17 23:30", datetime(2018, 2, 18, 1, 30, tzinfo=UTC)),
        # Berlin's gap (02:00 -> 03:00) is read with the offset before it (+01:00)
        ("Europe/Berlin", "2024-03-31 02:30", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        ("Europe/Berlin", "2024-03-31 03:00", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
        ("Europe/Berlin", "2024-10-27 02:30", datetime(2024, 10, 27, 0, 30, tzinfo=UTC)),
        ("Europe/Berlin", "2024-10-27", datetime(2024, 10, 26, 22, tzinfo=UTC)),
        # Beirut jumps at midnight (+02:00 -> +03:00) and goes back at midnight
        ("Asia/Beirut", "2024-03-31", datetime(2024, 3, 30, 22, tzinfo=UTC)),
        ("Asia/Beirut", "2024-10-26 23:30", datetime(2024, 10, 26, 20, 30, tzinfo=UTC)),
        ("Asia/Beirut", "2024-10-27", datetime(2024, 10, 26, 22, tzinfo=UTC)),
    ],
)
def test_local_times_that_do_not_exist_or_are_ambiguous(zone, text, expected):
    assert parse(parse_timestamp(pl.col("v"), timezone=zone), [text]) == [expected]
    # the fast path (the column's own ISO layout) reads them the same
    raw = pl.LazyFrame({"_row": [0, 1], "t": [text, text]})
    table = parse_table(
        raw,
        columns={"t": pl.Datetime("us", "UTC")},
        funnel=FUNNEL,
        options=ParseOptions(date_order="DMY"),
        timezone=zone,
    ).collect()
    assert table["t"].to_list() == [expected, expected]
    assert table[PARSE_REASONS].to_list() == [[], []]


def test_a_month_that_starts_on_a_skipped_midnight_holds_its_first_day():
    # Paraguay's clocks jumped from 00:00 to 01:00 on Sunday 2017-10-01
    zone = "America/Asuncion"
    october = parse_period("2017-10", zone)
    [first_day] = parse(parse_timestamp(pl.col("v"), timezone=zone), ["2017-10-01"])
    assert october.start == first_day == datetime(2017, 10, 1, 4, tzinfo=UTC)
    assert october.shifted(-1).end == first_day  # September ends where October starts


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("2024-06-30", "DMY", datetime(2024, 6, 30)),
        ("2024/6/30", "DMY", datetime(2024, 6, 30)),
        ("06/30/24", "MDY", datetime(2024, 6, 30)),
        ("30/06/24", "DMY", datetime(2024, 6, 30)),
        ("30.06.2024", "DMY", datetime(2024, 6, 30)),
        ("03/04/24", "DMY", datetime(2024, 4, 3)),
        ("03/04/24", "MDY", datetime(2024, 3, 4)),
        ("24/04/03", "YMD", datetime(2024, 4, 3)),
        ("2024年6月30日", "DMY", datetime(2024, 6, 30)),
        ("2024年6月30日 14:05", "DMY", datetime(2024, 6, 30, 14, 5)),
        ("02/23/26 08:55 PM", "MDY", datetime(2026, 2, 23, 20, 55)),
        ("2/3/26 8:05 am", "MDY", datetime(2026, 2, 3, 8, 5)),
        ("45473", "DMY", datetime(2024, 6, 30)),
        ("45473.75", "DMY", datetime(2024, 6, 30, 18)),
        ("12/31/69", "MDY", datetime(1969, 12, 31)),
        ("06/30/24", "DMY", None),  # no 30th month
        ("2024-02-30", "DMY", None),
        ("30/06/2024 25:00", "DMY", None),
    ],
)
def test_dates_as_people_type_them(text, order, expected):
    got = parse(parse_timestamp(pl.col("v"), timezone="UTC", date_order=order), [text])[0]
    assert got == (expected.replace(tzinfo=UTC) if expected else None)
    day = parse(parse_date(pl.col("v"), date_order=order), [text])[0]
    assert day == (expected.date() if expected else None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250000", 250000.0),
        ("250,000.00", 250000.0),
        ("¥250,000", 250000.0),
        ("￥ 1,234.5", 1234.5),
        ("$1,200", 1200.0),
        ("25万", 250000.0),
        ("25万元", 250000.0),
        ("1.2亿", 120000000.0),
        ("1.2M", 1200000.0),
        ("3k", 3000.0),
        ("RMB 88", 88.0),
        ("(1,000)", -1000.0),
        ("-5", -5.0),
        ("12 345", 12345.0),
        ("", None),
        ("abc", None),
        ("1.2.3", None),
        ("50%", None),
    ],
)
def test_amounts_as_people_type_them(text, expected):
    got = parse(parse_amount(pl.col("v")), [text])[0]
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_european_amounts_with_configured_separators():
    got = parse(parse_amount(pl.col("v"), decimal=",", thousands="."), ["1.234,56", "€ 12,5"])
    assert got == [pytest.approx(1234.56), pytest.approx(12.5)]


def test_statuses_channels_and_booleans():
    options = ParseOptions(statuses={"Gewonnen": "won"}, channels={"Zoom": "meeting"})
    values = ["Won", "赢单", "输单", "Closed Lost", "跟进中", "gewonnen", "maybe"]
    assert parse(parse_status(pl.col("v"), options=options), values) == [
        "won",
        "won",
        "lost",
        "lost",
        "open",
        "won",
        None,
    ]
    assert parse(parse_channel(pl.col("v"), options=options), ["电话", "微信", "zoom", "fax"]) == [
        "phone",
        "message",
        "meeting",
        None,
    ]
    assert parse(parse_boolean(pl.col("v")), ["TRUE", "0", "是", "否", "maybe"]) == [
        True,
        False,
        True,
        False,
        None,
    ]


def test_forecast_categories_as_salesforce_hubspot_and_dynamics_write_them():
    options = ParseOptions(forecast_categories={"Upside Plus": "best_case"})
    written = ["Commit", "Forecast", "Best Case", "BEST_CASE", "Committed", "Pipeline"]
    written += ["Omitted", "Closed", "upside plus", "maybe", " "]
    assert parse(parse_forecast_category(pl.col("v"), options=options), written) == [
        "commit",
        "commit",
        "best_case",
        "best_case",
        "commit",
        "pipeline",
        "omitted",
        "closed",
        "best_case",
        None,  # unreadable: quarantined with its reason
        None,  # blank
    ]


def test_date_order_is_inferred_from_unambiguous_dates():
    frame = pl.LazyFrame({"a": ["03/04/24", "02/23/26"], "b": ["01/02/03", None]})
    assert infer_date_order(frame, ["a", "b"], default="DMY") == "MDY"
    frame = pl.LazyFrame({"a": ["03/04/24", "23/02/26"]})
    assert infer_date_order(frame, ["a"], default="MDY") == "DMY"
    frame = pl.LazyFrame({"a": ["03/04/24", "2024-12-31"]})
    assert infer_date_order(frame, ["a"], default="MDY") == "MDY"


def test_stage_names_ids_labels_numbered_and_mapped():
    options = ParseOptions(stages={"Quote Sent": "proposal", "Closed - Lost": "lost"})
    values = [
        "lead",
        "Negotiation",
        "方案报价",
        " WON ",
        "3.方案报价",
        "4 - Negotiation",
        "2、需求确认",
        "quote sent",
        "Closed - Lost",
        "lost",
        "closed",
        None,
    ]
    assert parse(parse_stage(pl.col("v"), funnel=FUNNEL, options=options), values) == [
        "lead",
        "negotiation",
        "proposal",
        "won",
        "proposal",
        "negotiation",
        "qualified",
        "proposal",
        "lost",
        "lost",
        None,
        None,
    ]


TIMESTAMP_FORMS = st.sampled_from(
    [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S+08:00",
        "%Y-%m-%dT%H:%M:%S-0530",
        "%Y-%m-%dT%H:%M:%S.%f+00:00",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d",
        "%d/%m/%Y %H:%M",
        "%y-%m-%d %H:%M:%S",
        " %Y-%m-%dT%H:%M:%SZ ",
        "%Y-%m-%dT%H:%M:%S.%fZ",
        "%Y-%m-%dT%H:%M:%S.%f",
        "%Y-%m-%d %H:%M:%S+05:45",
        "%Y-%m-%dT%H:%M-03:30",
        "%Y-%m-%dT%H:%M:%S.000+0800",
        "%Y-%m-%dT%H:%M:%S+08:00 ",
        "%Y-%m-%dT%H:%M:%S+24:00",
    ]
)
MOMENTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 12, 31))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(TIMESTAMP_FORMS, MOMENTS).map(lambda f: f[1].strftime(f[0])),
            st.sampled_from(
                [
                    "",
                    "  ",
                    "soon",
                    "2024-02-30T10:00:00Z",
                    "2024-13-01",
                    "2024-06-30T10:00:00+08x00",
                    "2024-06-30T10:00:00.1a3Z",
                    "2024-06-30T10:00:00.-12Z",
                    "2024-06-30T10:00:00?08:00",
                    "2024-06- 3T14:05:00",
                    "2024-06- 3T14:05:00+08:00",
                    "2024-06-\xa03T14:5:00",
                    "2024-06-30\t14:05:00",
                    "2024-06-30T23:59:60",
                    "2024-06-30T23:59:60Z",
                    "2024- 6-30",
                    None,
                ]
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_fast_path_reads_timestamps_as_the_full_parser_does(values):
    """parse_table reads the column in the first value's format and the rest in full: the
    result must be the full parser's, value by value, whatever the mix of forms."""
    raw = pl.LazyFrame({"_row": range(len(values)), "t": values}, schema_overrides={"t": pl.String})
    table = parse_table(
        raw,
        columns={"t": pl.Datetime("us", "UTC")},
        funnel=FUNNEL,
        options=ParseOptions(date_order="DMY"),
        timezone="Asia/Shanghai",
    ).collect()
    expected = parse(parse_timestamp(pl.col("v"), timezone="Asia/Shanghai"), values)
    assert table["t"].to_list() == expected


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.dates().map(lambda d: d.strftime("%Y-%m-%d")),
            st.floats(0, 1e9, allow_nan=False).map(lambda x: f"{x:.2f}"),
            st.sampled_from(
                ["24-06-30", "1,250.50", "25万", " 12 ", "", "2024-6-3", "2024-06- 3", "x", None]
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_the_fast_path_reads_dates_and_amounts_as_the_full_parser_does(values):
    raw = pl.LazyFrame(
        {"_row": range(len(values)), "d": values, "a": values},
        schema_overrides={"d": pl.String, "a": pl.String},
    )
    table = parse_table(
        raw,
        columns={"d": pl.Date, "a": pl.Float64},
        funnel=FUNNEL,
        options=ParseOptions(date_order="YMD"),
        timezone="Asia/Shanghai",
    ).collect()
    assert table["d"].to_list() == parse(parse_date(pl.col("v"), date_order="YMD"), values)
    assert table["a"].to_list() == parse(parse_amount(pl.col("v")), values)


def test_timestamp_columns_read_in_full_vote_on_the_date_order():
    # US-style timestamps in the only date column: 06/30 and 12/31 say month first, so 03/04
    # is 4 March, not 3 April, although the default order is DMY
    values = ["06/30/2024 14:05", "03/04/2024 10:00", "12/31/2024 09:00"]
    table = parse_table(
        pl.LazyFrame({"_row": [1, 2, 3], "t": values}),
        columns={"t": pl.Datetime("us", "UTC")},
        funnel=FUNNEL,
        options=ParseOptions(default_date_order="DMY"),
        timezone="UTC",
    ).collect()
    assert table["t"].to_list() == [
        datetime(2024, 6, 30, 14, 5, tzinfo=UTC),
        datetime(2024, 3, 4, 10, 0, tzinfo=UTC),
        datetime(2024, 12, 31, 9, 0, tzinfo=UTC),
    ]


def transition_days(zone: ZoneInfo, first: int, last: int) -> list[date]:
    """The days of the years `first`..`last` on which `zone` changes its UTC offset."""

    def offset(d: date):
        return datetime(d.year, d.month, d.day, 12, tzinfo=zone).utcoffset()

    days, week = [], date(first, 1, 1)
    while week.year <= last:
        following = week + timedelta(days=7)
        if offset(week) != offset(following):
            days += [
                week + timedelta(days=i)
                for i in range(-1, 7)
                if offset(week + timedelta(days=i)) != offset(week + timedelta(days=i + 1))
            ]
        week = following
    return sorted(set(days))


def test_every_zone_reads_local_times_around_its_clock_changes_as_zoneinfo_does():
    """Every IANA zone, every half hour of every day it changed its clocks in 2016-2024: the
    parser's instant is zoneinfo's reading (fold=0: the offset before a
    jump, the earlier of two instants), so nothing that exists is lost."""
    checked = 0
    for name in sorted(available_timezones()):
        zone = ZoneInfo(name)
        days = transition_days(zone, 2016, 2024)
        if not days:
            continue
        local = [
            datetime(d.year, d.month, d.day) + timedelta(minutes=30 * i)
            for d in days
            for i in range(48)
        ]
        expected = [t.replace(tzinfo=zone).astimezone(UTC) for t in local]
        read = pl.DataFrame({"t": local}).select(localized(pl.col("t"), name)).to_series()
        assert read.to_list() == expected, name
        checked += len(local)
    assert checked > 50_000
