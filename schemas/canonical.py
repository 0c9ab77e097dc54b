"""The canonical tables of DESIGN §3, as pandera models (polars backend).

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

from schemas.vocabulary import (
    CHANNELS,
    FOLLOWUPS,
    OPPORTUNITIES,
    STAGE_HISTORY,
    STATUSES,
)

if TYPE_CHECKING:  # for the type checker a timestamp field is a datetime
    UTC_TIMESTAMP = datetime
else:  # for pandera, a polars Datetime in UTC with microseconds
    UTC_TIMESTAMP = DateTime(time_zone="UTC", time_unit="us")


def _text(description: str, **checks: Any) -> Any:
    return pa.Field(nullable=True, description=description, **checks)


class Opportunities(pa.DataFrameModel):
    """One row per opportunity as of the export."""

    opportunity_id: str = pa.Field(unique=True, description="Opportunity key, unique in the export")
    stage: str = pa.Field(description="Current stage id (a funnel stage; never 'lost')")
    created_at: UTC_TIMESTAMP = pa.Field(description="When the opportunity was created (UTC)")
    status: str = pa.Field(
        isin=list(STATUSES), description="open, won or lost (derived when absent)"
    )
    owner: str = _text("Sales rep who owns the deal")
    customer_name: str = _text("Customer (company) name")
    stage_entered_at: UTC_TIMESTAMP = _text("When the current stage was entered (UTC)")
    amount: float = _text("Expected deal amount, in `currency`", ge=0)
    currency: str = _text("ISO 4217 code; the configured currency when empty")
    expected_close_date: pl.Date = _text("Expected close date")
    closed_at: UTC_TIMESTAMP = _text("When the deal was won or lost (UTC)")
    lost_reason: str = _text("Why the deal was lost")
    stall_reason: str = _text("Why the deal sits in its stage (阶段停留原因)")
    industry: str = _text("Customer industry")
    customer_size: str = _text("Customer size band")
    source: str = _text("Lead source")
    region: str = _text("Sales region")
    collaborators: str = _text("Other team members on the deal")
    need_description: str = _text("What the customer needs")
    crm_probability: float = _text("The CRM's own win probability in percent (0-100)", ge=0, le=100)
    contact_name: str = _text("Customer contact (personal data: never reported)")
    contact_title: str = _text("Customer contact's title (never reported)")
    contact_phone: str = _text("Customer contact's phone (personal data: never reported)")
    contact_email: str = _text("Customer contact's email (personal data: never reported)")

    class Config:
        strict = "filter"

    @pa.dataframe_check(name="closed_at: before created_at")
    def closed_not_before_created(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("closed_at").is_null() | (pl.col("closed_at") >= pl.col("created_at"))
        )

    @pa.dataframe_check(name="closed_at: missing for a lost deal")
    def lost_has_closed_at(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("status") != "lost") | pl.col("closed_at").is_not_null()
        )


class StageHistory(pa.DataFrameModel):
    """One row per stage entry of an opportunity."""

    opportunity_id: str = pa.Field(description="The opportunity that entered the stage")
    stage: str = pa.Field(description="Stage id entered")
    entered_at: UTC_TIMESTAMP = pa.Field(description="When the stage was entered (UTC)")
    amount: float = _text("Deal amount recorded at that moment", ge=0)
    expected_close_date: pl.Date = _text("Expected close date recorded at that moment")
    changed_by: str = _text("Who made the change")

    class Config:
        strict = "filter"


class Followups(pa.DataFrameModel):
    """One row per customer interaction."""

    opportunity_id: str = pa.Field(description="The opportunity the interaction belongs to")
    occurred_at: UTC_TIMESTAMP = pa.Field(description="When it happened (UTC)")
    channel: str = pa.Field(isin=list(CHANNELS), description=", ".join(CHANNELS))
    followup_id: str = _text("Interaction key")
    summary: str = _text("What was discussed (沟通要点)")
    customer_feedback: str = _text("What the customer said (客户反馈)")
    next_action: str = _text("Agreed next step (下一步行动)")
    next_action_due: pl.Date = _text("When the next step is due")
    owner: str = _text("Who made the contact")

    class Config:
        strict = "filter"


TABLE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    OPPORTUNITIES: Opportunities,
    STAGE_HISTORY: StageHistory,
    FOLLOWUPS: Followups,
}
# columns no figure reads: contact details and free text stay out of the analysis (and out of
# memory once the quarantine is written)
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
    FOLLOWUPS: ("followup_id", "summary", "customer_feedback", "next_action"),
}


def column_types(model: type[pa.DataFrameModel]) -> dict[str, pl.DataType]:
    """Canonical column -> polars dtype, in the model's order."""
    return {name: col.dtype.type for name, col in model.to_schema().columns.items()}


def required_columns(model: type[pa.DataFrameModel]) -> list[str]:
    """Columns an input file must have: the non-nullable ones."""
    return [name for name, col in model.to_schema().columns.items() if not col.nullable]
