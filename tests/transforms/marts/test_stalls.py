"""Stalled deals: the strict threshold and missing reasons. Expectations computed by hand in the
comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

from tests.helpers import (
    by_key,
    figures,
    opp,
    opportunities,
)


def test_stalls_threshold_is_strict_and_blank_reason_is_missing():
    m = figures(
        opportunities(
            # exactly 7 days at as_of: not stalled
            opp(
                "S1",
                "negotiation",
                "2024-06-01",
                stage_entered_at="2024-06-24T00:00:00Z",
                amount=50,
            ),
            # 7 days and 1 hour: stalled, with a reason
            opp(
                "S2",
                "negotiation",
                "2024-06-01",
                stage_entered_at="2024-06-23T23:00:00Z",
                amount=100,
                stall_reason="Budget approval",
            ),
            # 30 days, whitespace-only reason: stalled and missing
            opp(
                "S3",
                "proposal",
                "2024-06-01",
                stage_entered_at="2024-06-01",
                amount=200,
                stall_reason="   ",
                owner="Li",
            ),
            # won deals never stall
            opp("S4", "won", "2024-01-01", closed_at="2024-02-01"),
        ),
        of=("stalls",),
    )
    stalls = m["stalls"]
    assert stalls["stalled_count"] == 2
    assert stalls["stalled_amount"] == 300.0
    assert stalls["missing_reason_count"] == 1
    assert stalls["compliance_rate"] == 0.5
    assert stalls["reasons"] == [{"reason": "Budget approval", "count": 1, "amount": 100.0}]
    assert by_key(stalls["by_owner"], "owner")["Li"]["missing_reason"] == 1
    assert [d["opportunity_id"] for d in stalls["deals"]] == ["S3", "S2"]
