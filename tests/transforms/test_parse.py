from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from transforms.funnel_model import RunSettings
from transforms.parse import parse_date, parse_stage, parse_timestamp

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


def test_dates_are_iso_only():
    assert parse(parse_date(pl.col("v")), ["2024-06-30", "2024/6/30", " "]) == [
        date(2024, 6, 30),
        None,
        None,
    ]


def test_stage_names_ids_labels_and_aliases():
    values = ["lead", "Negotiation", "方案报价", " WON ", "closed", None]
    assert parse(parse_stage(pl.col("v"), funnel=FUNNEL), values) == [
        "lead",
        "negotiation",
        "proposal",
        "won",
        None,
        None,
    ]
