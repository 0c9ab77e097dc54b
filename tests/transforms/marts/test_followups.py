"""Follow-up activity and segments. Expectations computed by hand in the comments.

The period is 2024-06 in UTC unless a test says otherwise (see `tests.helpers.world`).
"""

from __future__ import annotations

from funnel_reports.transforms.funnel_model import RunSettings
from tests.helpers import (
    by_key,
    figures,
    opp,
    opportunities,
    touches,
    typed,
)


def test_followup_activity():
    # Open: F1 (touched 06-25, next action due 06-28: overdue), F2 (last touch 06-10: silent
    # for 21 days), F3 (created 06-20, never touched: silent 11 days, not yet 14).
    # Won W1 had 3 touches, lost L1 had 1 (both resolved in W).
    m = figures(
        opportunities(
            opp("F1", "lead", "2024-06-01", amount=10, owner="Ann", source="Web"),
            opp("F2", "lead", "2024-06-01", amount=20, owner="Ann"),
            opp("F3", "lead", "2024-06-20", amount=40, owner="Bob", source="Web"),
            opp("W1", "won", "2024-05-01", closed_at="2024-06-05", amount=100, owner="Bob"),
            opp("L1", "lead", "2024-05-01", status="lost", closed_at="2024-06-06"),
        ),
        followups=touches(
            {
                "opportunity_id": "F1",
                "occurred_at": "2024-06-25",
                "channel": "phone",
                "next_action_due": "2024-06-28",
            },
            {"opportunity_id": "F2", "occurred_at": "2024-06-10", "channel": "email"},
            {"opportunity_id": "F2", "occurred_at": "2024-06-02", "channel": "email"},
            {"opportunity_id": "W1", "occurred_at": "2024-05-10", "channel": "visit"},
            {"opportunity_id": "W1", "occurred_at": "2024-05-20", "channel": "visit"},
            {"opportunity_id": "W1", "occurred_at": "2024-06-01", "channel": "meeting"},
            {"opportunity_id": "L1", "occurred_at": "2024-05-15", "channel": "phone"},
            {"opportunity_id": "F1", "occurred_at": "2024-07-02", "channel": "phone"},  # later
        ),
        of=("followups", "segments"),
    )
    f = m["followups"]
    assert f["touches_in_period"] == 4  # F1 06-25, F2 06-10 and 06-02, W1 06-01
    assert f["touches_per_open_deal"] == 1.0  # 3 touches on 3 open deals
    assert f["channel_mix"] == [
        {"channel": "email", "touches": 2, "share": 0.5},
        {"channel": "meeting", "touches": 1, "share": 0.25},
        {"channel": "phone", "touches": 1, "share": 0.25},
    ]
    assert (f["silent_open_deals"], f["silent_open_amount"]) == (1, 20.0)
    assert f["overdue_next_actions"] == 1
    assert f["won_vs_lost"] == [
        {"state": "won", "deals": 1, "touches_per_deal": 3.0},
        {"state": "lost", "deals": 1, "touches_per_deal": 1.0},
    ]
    owners = by_key(m["segments"]["owner"], "value")
    assert (owners["Ann"]["open_count"], owners["Ann"]["open_amount"]) == (2, 30.0)
    assert (owners["Bob"]["won_count"], owners["Bob"]["won_amount"]) == (1, 100.0)
    assert owners["—"]["lost_count"] == 1  # L1 has no owner
    sources = by_key(m["segments"]["source"], "value")
    assert sources["Web"]["open_count"] == 2


def test_next_actions_due_on_the_periods_last_local_day_are_overdue_at_its_end():
    # Shanghai: June ends at 2024-07-01 00:00 local (06-30 16:00 UTC). A's next action was due
    # 06-30 (passed: overdue), B's is due 07-01 (not yet).
    shanghai = RunSettings(timezone="Asia/Shanghai")
    opps = typed(
        "opportunities",
        [opp("A", "lead", "2024-06-01"), opp("B", "lead", "2024-06-01")],
        shanghai,
    ).drop("_row")
    followups = typed(
        "followups",
        [
            {
                "opportunity_id": o,
                "occurred_at": "2024-06-25",
                "channel": "phone",
                "next_action_due": due,
            }
            for o, due in (("A", "2024-06-30"), ("B", "2024-07-01"))
        ],
        shanghai,
    ).drop("_row")
    m = figures(opps, settings=shanghai, followups=followups, of=("followups",))
    assert m["followups"]["overdue_next_actions"] == 1
