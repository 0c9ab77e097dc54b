"""The canonical tables (README, "The canonical tables"), as pandera models (polars backend).

Raw CSV strings are parsed to these types by `transforms.staging.parse` first (pandera coercion from
strings fails on polars 2); the models then check the typed frames. A nullable field may be
missing from the input file; a non-nullable one is required.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import (
    CHANNELS,
    FOLLOWUPS,
    FORECAST_CATEGORIES,
    OPPORTUNITIES,
    STAGE_HISTORY,
    STATUSES,
)

if TYPE_CHECKING:  # for the type checker a timestamp field is a datetime
    UTC_TIMESTAMP = datetime
else:  # for pandera, a polars Datetime in UTC with microseconds
    UTC_TIMESTAMP = DateTime(time_zone="UTC", time_unit="us")


def nullable(description: str, **checks: Any) -> Any:
    """A field that may be null (and, in an input, absent)."""
    return pa.Field(nullable=True, description=description, **checks)


class Opportunities(pa.DataFrameModel):
    """One row per opportunity as of the export."""

    opportunity_id: str = pa.Field(unique=True, description="Opportunity key, unique in the export")
    stage: str = pa.Field(description="Current stage id (a funnel stage; never 'lost')")
    created_at: UTC_TIMESTAMP = pa.Field(description="When the opportunity was created (UTC)")
    status: str = pa.Field(
        isin=list(STATUSES), description="open, won or lost (derived when absent)"
    )
    owner: str = nullable("Sales rep who owns the deal")
    customer_name: str = nullable("Customer (company) name")
    stage_entered_at: UTC_TIMESTAMP = nullable("When the current stage was entered (UTC)")
    amount: float = nullable("Expected deal amount, in `currency`", ge=0)
    won_amount: float = nullable(
        "What a won deal closed at, where the export keeps it apart from the expected amount "
        "(Dynamics' Actual Revenue): a won deal's amount when present",
        ge=0,
    )
    currency: str = nullable(
        "ISO 4217 code of the amount as exported; the report currency once converted"
    )
    expected_close_date: pl.Date = nullable("Expected close date")
    closed_at: UTC_TIMESTAMP = nullable("When the deal was won or lost (UTC)")
    lost_reason: str = nullable("Why the deal was lost")
    stall_reason: str = nullable("Why the deal sits in its stage (阶段停留原因)")
    industry: str = nullable("Customer industry")
    customer_size: str = nullable("Customer size band")
    product: str = nullable("Product or product line sold")
    source: str = nullable("Lead source")
    region: str = nullable("Sales region")
    collaborators: str = nullable("Other team members on the deal")
    need_description: str = nullable("What the customer needs")
    crm_probability: float = nullable(
        "The CRM's own win probability in percent (0-100)", ge=0, le=100
    )
    forecast_category: str = nullable(
        "The CRM's forecast category as exported: commit, best_case, pipeline, omitted or closed",
        isin=list(FORECAST_CATEGORIES),
    )
    contact_name: str = nullable("Customer contact (personal data: never reported)")
    contact_title: str = nullable("Customer contact's title (never reported)")
    contact_phone: str = nullable("Customer contact's phone (personal data: never reported)")
    contact_email: str = nullable("Customer contact's email (personal data: never reported)")

    class Config:
        strict = "filter"

    @pa.dataframe_check(name=reasons.CLOSED_BEFORE_CREATED)
    def closed_not_before_created(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("closed_at").is_null() | (pl.col("closed_at") >= pl.col("created_at"))
        )

    @pa.dataframe_check(name=reasons.LOST_WITHOUT_CLOSE)
    def lost_has_closed_at(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") != "lost") | pl.col("closed_at").is_not_null()
        )


class StageHistory(pa.DataFrameModel):
    """One row per stage entry of an opportunity."""

    opportunity_id: str = pa.Field(description="The opportunity that entered the stage")
    stage: str = pa.Field(description="Stage id entered")
    entered_at: UTC_TIMESTAMP = pa.Field(description="When the stage was entered (UTC)")
    amount: float = nullable("Deal amount recorded at that moment", ge=0)
    currency: str = nullable("ISO 4217 code of that amount; the deal's currency when empty")
    expected_close_date: pl.Date = nullable("Expected close date recorded at that moment")
    forecast_category: str = nullable(
        "The forecast category recorded at that moment", isin=list(FORECAST_CATEGORIES)
    )
    changed_by: str = nullable("Who made the change")

    class Config:
        strict = "filter"


class Followups(pa.DataFrameModel):
    """One row per customer interaction."""

    opportunity_id: str = pa.Field(description="The opportunity the interaction belongs to")
    occurred_at: UTC_TIMESTAMP = pa.Field(description="When it happened (UTC)")
    channel: str = pa.Field(isin=list(CHANNELS), description=", ".join(CHANNELS))
    followup_id: str = nullable("Interaction key")
    summary: str = nullable("What was discussed (沟通要点)")
    customer_feedback: str = nullable("What the customer said (客户反馈)")
    next_action: str = nullable("Agreed next step (下一步行动)")
    next_action_due: pl.Date = nullable("When the next step is due")
    owner: str = nullable("Who made the contact")

    class Config:
        strict = "filter"


TABLE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    OPPORTUNITIES: Opportunities,
    STAGE_HISTORY: StageHistory,
    FOLLOWUPS: Followups,
}
# columns no figure reads: contact details, free text and who logged a row stay out of the
# analysis (and out of memory once the quarantine is written)
NOT_ANALYSED: dict[str, tuple[str, ...]] = {
    OPPORTUNITIES: (
        "collaborators",
        "need_description",
        "contact_name",
        "contact_title",
        "contact_phone",
        "contact_email",
    ),
    STAGE_HISTORY: ("changed_by",),
    FOLLOWUPS: ("followup_id", "summary", "customer_feedback", "next_action", "owner"),
}


def column_types(model: type[pa.DataFrameModel]) -> dict[str, pl.DataType]:
    """Canonical column -> polars dtype, in the model's order."""
    return {name: col.dtype.type for name, col in model.to_schema().columns.items()}


def required_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """Columns an input file must have: the non-nullable ones."""
    return [name for name, col in model.to_schema().columns.items() if not col.nullable]
