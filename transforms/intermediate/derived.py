"""The intermediate tables of one run, derived once from the valid canonical tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_entries
from funnel_reports.transforms.intermediate.reaches import every_reach, reach_times, stage_reaches
from funnel_reports.transforms.intermediate.states import (
    DealStatesAt,
    deal_facts,
    deal_spans,
    deal_states,
)
from funnel_reports.transforms.intermediate.visits import stage_visits


@dataclass(frozen=True)
class DerivedTables:
    """Stage entries (all known), and stage reaches, deal states and stage visits as of the
    period end; the deal facts, spans and reaches over all entries that deal states and stage
    reaches at any other instant are masked from."""

    as_of: datetime
    entries: pl.DataFrame
    reaches: pl.DataFrame
    states: pl.DataFrame
    visits: pl.DataFrame
    facts: pl.DataFrame
    spans: pl.DataFrame
    all_reaches: pl.DataFrame

    def states_at(self, opportunities: pl.DataFrame, *, funnel: FunnelModel) -> DealStatesAt:
        """Deal states at any instant, masked from what was derived here of `opportunities`
        (the table these were derived from)."""
        return DealStatesAt(self.facts, self.spans, self.all_reaches, funnel=funnel)


def derive_tables(
    opportunities: pl.DataFrame,
    stage_history: pl.DataFrame,
    *,
    as_of: datetime,
    funnel: FunnelModel,
    partial_history: bool = False,
) -> DerivedTables:
    """Every derived table as of `as_of`; `partial_history` as `stage_entries` takes it."""
    # the in-memory engine sorts the history's millions of rows in a third less time
    entries = stage_entries(
        opportunities.lazy(), stage_history.lazy(), funnel=funnel, partial_history=partial_history
    ).collect(engine="in-memory")
    times = reach_times(entries.lazy(), funnel=funnel).collect()
    facts = deal_facts(opportunities.lazy(), times.lazy(), funnel=funnel).collect()
    all_reaches = every_reach(times.lazy(), facts.lazy(), funnel=funnel).collect()
    del times
    # polars 2.1's streaming engine panics on this plan when there is no entry at all (an
    # export whose every deal was quarantined): the in-memory engine gives the empty table
    spans = deal_spans(entries.lazy(), facts.lazy()).collect(
        engine="in-memory" if entries.is_empty() else "auto"
    )
    states = deal_states(
        opportunities.lazy(), facts.lazy(), spans.lazy(), as_of=as_of, funnel=funnel
    ).collect()
    reaches = stage_reaches(all_reaches.lazy(), as_of=as_of).collect()
    visits = stage_visits(entries.lazy(), states.lazy(), as_of=as_of).collect()
    return DerivedTables(as_of, entries, reaches, states, visits, facts, spans, all_reaches)
