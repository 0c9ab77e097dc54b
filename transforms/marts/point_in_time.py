"""Point-in-time notes (`point_in_time`): what could not be reconstructed as of the period end."""

from __future__ import annotations

import polars as pl

from funnel_reports.schemas.vocabulary import OPEN
from funnel_reports.transforms.periods import Window

NO_STAGE_HISTORY = "no_stage_history"
STALL_REASON_CURRENT = "stall_reason_current"


def point_in_time_notes(
    opportunities: pl.LazyFrame, states: pl.LazyFrame, *, window: Window, history_available: bool
) -> pl.DataFrame:
    """A note key and how many deals each (a row each): current amounts used for past stages,
    deals closed or created after the period, the missing stage history, stall reasons as
    exported now."""
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
        opportunities.filter(pl.col("created_at") >= window.as_of).select(pl.len()).collect().item()
    )
    notes = [(NO_STAGE_HISTORY, None)] if not history_available else []
    notes += [(key, n) for key, n in counts.items() if n]
    notes.append((STALL_REASON_CURRENT, None))
    return pl.DataFrame(notes, schema={"note": pl.String, "count": pl.Int64}, orient="row")
