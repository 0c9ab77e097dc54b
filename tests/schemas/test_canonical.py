"""The canonical tables' models: what an export must hold, and what is never read."""

from __future__ import annotations

import polars as pl
import pytest

from funnel_reports.schemas.canonical import (
    NOT_ANALYSED,
    TABLE_MODELS,
    column_types,
    required_columns,
)
from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY


@pytest.mark.parametrize(
    ("table", "required"),
    [
        (OPPORTUNITIES, ["opportunity_id", "stage", "created_at", "status"]),
        (STAGE_HISTORY, ["opportunity_id", "stage", "entered_at"]),
        (FOLLOWUPS, ["opportunity_id", "occurred_at", "channel"]),
    ],
)
def test_each_table_requires_its_keys_and_times(table, required):
    assert required_columns(TABLE_MODELS[table]) == required


def test_columns_no_figure_reads_are_in_the_models_and_never_required():
    """A column left in the file (`NOT_ANALYSED`) is mapped and checked like any other when
    its row is quarantined, but a table cannot require what the run never reads."""
    for table, model in TABLE_MODELS.items():
        columns, required = column_types(model), required_columns(model)
        for name in NOT_ANALYSED[table]:
            assert name in columns, (table, name)
            assert name not in required, (table, name)


def test_column_types_are_the_typed_tables_dtypes():
    types = column_types(TABLE_MODELS[OPPORTUNITIES])
    assert types["opportunity_id"] == pl.String
    assert types["created_at"] == pl.Datetime("us", "UTC")
    assert types["amount"] == pl.Float64
    assert types["expected_close_date"] == pl.Date
