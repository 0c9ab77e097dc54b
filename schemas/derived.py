"""The derived tables of `transforms.intermediate`, as pandera models (polars backend).

Each model is named after its dataset and its function (`stage_visits` → `StageVisits`) and
says what one row is. They are strict about their own columns; `DealStates` also carries the
opportunity's columns it was built from (see `schemas.canonical.Opportunities`).
"""

from __future__ import annotations

from typing import ClassVar

import pandera.polars as pa
import polars as pl

from funnel_reports.schemas.canonical import UTC_TIMESTAMP, nullable
from funnel_reports.schemas.vocabulary import STATUSES, VISIT_OUTCOMES


class StageEntries(pa.DataFrameModel):
    """One row per entry of an opportunity into a stage (from its history or its own fields)."""

    opportunity_id: str = pa.Field(description="The opportunity")
    stage: str = pa.Field(description="Stage id entered")
    entered_at: UTC_TIMESTAMP = pa.Field(description="When the stage was entered (UTC)")
    amount: float = nullable("Amount the history recorded at that moment", ge=0)
    expected_close_date: pl.Date = nullable("Expected close date recorded at that moment")
    forecast_category: str = nullable("The CRM's forecast category recorded at that moment")
    is_from_history: bool = pa.Field(description="From a stage-history row, not the deal's fields")
    stage_index: pl.Int32 = pa.Field(ge=0, description="The stage's position in the funnel")
    is_stage_change: bool = pa.Field(
        description="False for a row repeating the stage the deal is already in (an update)"
    )

    class Config:
        strict = True


class StageReaches(pa.DataFrameModel):
    """One row per deal known at as_of and stage it had reached by then (skips included)."""

    opportunity_id: str = pa.Field(description="The opportunity")
    stage: str = pa.Field(description="Stage id reached")
    stage_index: pl.Int32 = pa.Field(ge=0, description="The stage's position in the funnel")
    reached_at: UTC_TIMESTAMP = pa.Field(
        description="first_reach: the earliest entry into this stage or a later one (UTC)"
    )

    class Config:
        strict = True
        unique: ClassVar[list[str]] = ["opportunity_id", "stage"]


class DealStates(pa.DataFrameModel):
    """One row per opportunity created before as_of, as it could be known then."""

    opportunity_id: str = pa.Field(unique=True, description="The opportunity")
    state: str = pa.Field(isin=list(STATUSES), description="open, won or lost at as_of")
    stage_at: str = pa.Field(description="Stage of the last entry before as_of")
    stage_entered_at_as_of: UTC_TIMESTAMP = pa.Field(description="When that stage was entered")
    won_at: UTC_TIMESTAMP = nullable("first_reach of the won stage, if before as_of")
    resolved_at: UTC_TIMESTAMP = nullable("won_at for won deals, closed_at for lost ones")
    closed_at_as_of: UTC_TIMESTAMP = nullable("closed_at, if before as_of")
    amount_at: float = nullable("Latest amount recorded before as_of, else the deal's", ge=0)
    expected_close_date_at: pl.Date = nullable("Latest expected close date known at as_of")
    history_amount: float = nullable("Latest amount the history recorded before as_of", ge=0)
    history_expected_close_date: pl.Date = nullable("Latest expected close date in the history")

    class Config:
        strict = False  # the opportunity's own columns come along


class StageVisits(pa.DataFrameModel):
    """One row per stay of a deal in a stage, as known at as_of."""

    opportunity_id: str = pa.Field(description="The opportunity")
    stage: str = pa.Field(description="Stage id of the stay")
    stage_index: pl.Int32 = pa.Field(ge=0, description="The stage's position in the funnel")
    outcome: str = pa.Field(
        isin=list(VISIT_OUTCOMES), description="forward, back, lost, or open at as_of"
    )
    started_at: UTC_TIMESTAMP = pa.Field(description="The entry that started the stay (UTC)")
    ended_at: UTC_TIMESTAMP = nullable("The next entry, or the loss; null while open")
    is_open: bool = pa.Field(description="No end before as_of")
    days: float = pa.Field(ge=0, description="Length of a completed stay, or age at as_of")

    class Config:
        strict = True


DERIVED_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "entries": StageEntries,
    "reaches": StageReaches,
    "states": DealStates,
    "visits": StageVisits,
}
