"""Stalled deals: the strict threshold and missing reasons. Expectations computed by hand in the
comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

from dataclasses import replace

from funnel_reports.transforms.funnel_model import FunnelModel
from tests.helpers import (
    SETTINGS,
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


def test_a_funnel_with_no_stall_threshold_has_no_stalled_deals():
    # no stage has stall_days: nothing can stall, and an old open deal is not counted
    # (this crashed: the empty threshold table's stage column had no type to join on)
    funnel = FunnelModel(
        tuple(replace(s, stall_days=None) for s in SETTINGS.funnel.stages), named=True
    )
    m = figures(
        opportunities(opp("S1", "proposal", "2024-01-01", stage_entered_at="2024-01-02")),
        of=("stalls",),
        settings=replace(SETTINGS, funnel=funnel),
    )
    assert (m["stalls"]["stalled_count"], m["stalls"]["compliance_rate"]) == (0, None)
    assert m["stalls"]["deals"] == []
