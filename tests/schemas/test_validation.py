"""A quarantine reason's category is its wording without the raw value, whatever the value
holds: apostrophes, quotes, brackets, line breaks."""

from __future__ import annotations

import polars as pl
import pytest

from funnel_reports.schemas import reasons
from funnel_reports.schemas.validation import reason_category

NASTY = ["Won't buy", "O'Neil's 'big' deal", "a (got 'x')", "two\nlines", "''", ": 'x' "]


def category(reason: str) -> str:
    return pl.select(reason_category(pl.lit(reason))).item()


VALUE = "value"
CATEGORIES = [  # template, its column (and kind), the category
    (reasons.UNREADABLE, ("stage (Stage)", "stage"), "stage (Stage): cannot read as a stage"),
    (reasons.REPEATED_ID, ("id",), f"id: {VALUE} appears more than once (every copy quarantined)"),
    (reasons.NOT_ALLOWED, ("status",), f"status: {VALUE} is not an allowed value"),
    (reasons.NEGATIVE, ("amount",), "amount: negative value"),
    (reasons.FAILS_CHECK, ("amount", "less_than(100)"), "amount: fails less_than(100)"),
    (reasons.OPEN_IN_WON_STAGE, (), f"status: 'open' but the stage {VALUE} is a won stage"),
    (reasons.STAGE_SAID_LOST, (), f"status: {VALUE} but the export's stage says the deal was lost"),
    (reasons.PARENT_QUARANTINED, (), f"opportunity_id: {VALUE} is quarantined in opportunities"),
    (reasons.PARENT_UNKNOWN, (), f"opportunity_id: {VALUE} is not in opportunities"),
]  # fmt: skip


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize(("template", "fields", "expected"), CATEGORIES)
def test_a_reason_s_category_has_no_value_in_it(template, fields, expected, value):
    assert category(template.format(*fields, value)) == expected


def test_reasons_without_a_value_are_their_own_category():
    missing = reasons.MISSING_REQUIRED.format("created_at")
    assert category(missing) == missing
    assert category(reasons.WRONG_FIELD_COUNT.format(7, 5)) == "row: wrong number of fields"
    assert category(reasons.LOST_WITHOUT_CLOSE) == reasons.LOST_WITHOUT_CLOSE
