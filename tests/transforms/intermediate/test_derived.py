"""The derived tables of an export with no valid deal: empty, not an engine failure."""

from funnel_reports.transforms.intermediate.derived import derive_tables
from funnel_reports.transforms.periods import parse_period
from tests.helpers import SETTINGS, history, metrics_for, opportunities


def test_no_deal_at_all_derives_empty_tables():
    """Every deal of an export can be quarantined; the report still has its (empty) tables."""
    empty = opportunities().head(0)
    derived = derive_tables(
        empty,
        history().head(0),
        as_of=parse_period("2024-06", SETTINGS.timezone).end,
        funnel=SETTINGS.funnel,
    )
    assert (derived.entries.height, derived.states.height, derived.visits.height) == (0, 0, 0)
    assert metrics_for(empty, history().head(0))["kpis"]["won_count"] == 0
