"""The intermediate tables of one run, derived once from the valid canonical tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from transforms.funnel_model import FunnelModel
from transforms.intermediate.entries import stage_entries
from transforms.intermediate.reaches import stage_reaches
from transforms.intermediate.states import DealStatesAt, deal_states
from transforms.intermediate.visits import stage_visits


@dataclass(frozen=True)
class DerivedTables:
    """Stage entries (all known), and stage reaches, deal states and stage visits as of the
    period end."""

    as_of: datetime
    entries: pl.DataFrame
    reaches: pl.DataFrame
    states: pl.DataFrame
    visits: pl.DataFrame

    def states_at(self, opportunities: pl.DataFrame, *, funnel: FunnelModel) -> DealStatesAt:
        """Deal states at any instant, starting from the ones derived here."""
        return DealStatesAt(
            opportunities.lazy(),
            self.entries.lazy(),
            funnel=funnel,
            known={self.as_of: (self.states, self.reaches)},
        )


def derive_tables(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    *,
    as_of: datetime,
    funnel: FunnelModel,
) -> DerivedTables:
    entries = stage_entries(opportunities.lazy(), stage_history.lazy(), funnel=funnel).collect()
    states = deal_states(opportunities.lazy(), entries.lazy(), as_of=as_of, funnel=funnel).collect()
    reaches = stage_reaches(entries.lazy(), states.lazy(), as_of=as_of, funnel=funnel).collect()
    visits = stage_visits(entries.lazy(), states.lazy(), as_of=as_of).collect()
    return DerivedTables(as_of, entries, reaches, states, visits)
