"""Point-in-time notes (`point_in_time`): what could not be reconstructed as of the period end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN

NO_STAGE_HISTORY = "no_stage_history"
STALL_REASON_CURRENT = "stall_reason_current"


def point_in_time_notes(
    opportunities: pl.LazyFrame, states: pl.LazyFrame, *, as_of: datetime, history_available: bool
) -> list[dict[str, Any]]:
    """A note key and how many deals each: current amounts used for past stages, deals closed
    or created after the period, the missing stage history, stall reasons as exported now."""
    counts = (
        states.select(
            (pl.col("history_amount").is_null() & pl.col("amount").is_not_null())
            .sum()
            .alias("current_amount_used"),
            ((pl.col("status") != OPEN) & (pl.col("state") == OPEN))
            .sum()
            .alias("closed_after_period"),
        )
        .collect()
        .row(0, named=True)
    )
    counts["created_after_period"] = (
        opportunities.filter(pl.col("created_at") >= as_of).select(pl.len()).collect().item()
    )
    notes: list[dict[str, Any]] = (
        [{"note": NO_STAGE_HISTORY, "count": None}] if not history_available else []
    )
    notes += [{"note": key, "count": n} for key, n in counts.items() if n]
    notes.append({"note": STALL_REASON_CURRENT, "count": None})
    return notes
