"""`segments`: the period's headline figures (2024-06) per value of each segment dimension."""

from __future__ import annotations

from funnel_reports.schemas.vocabulary import SEGMENT_DIMENSIONS
from tests.helpers import figures, opp, opportunities


def test_each_dimension_by_value_largest_won_then_open_amount_first_blank_as_a_dash():
    deals = opportunities(
        opp(
            "A",
            "won",
            "2024-05-01",
            status="won",
            closed_at="2024-06-10",
            amount=100,
            region="East",
        ),
        opp("B", "proposal", "2024-05-01", amount=500, region="West"),
        opp("C", "proposal", "2024-05-01", amount=200, region="East"),
        opp("D", "lead", "2024-05-01", amount=50),
        # won before the period: no won figure of 2024-06
        opp(
            "E",
            "won",
            "2024-01-01",
            status="won",
            closed_at="2024-02-01",
            amount=900,
            region="North",
        ),
    )
    segments = figures(deals, of=("segments",))["segments"]
    assert set(segments) == set(SEGMENT_DIMENSIONS)
    regions = segments["region"]
    assert [r["value"] for r in regions] == ["East", "West", "—", "North"]
    east = regions[0]
    assert (east["won_count"], east["won_amount"], east["open_count"], east["open_amount"]) == (
        1,
        100,
        1,
        200,
    )
    assert east["win_rate"] == 1.0
    assert (regions[1]["open_amount"], regions[2]["open_amount"]) == (500, 50)
    assert (regions[3]["won_count"], regions[3]["open_count"]) == (0, 0)
    assert regions[3]["win_rate"] is None
