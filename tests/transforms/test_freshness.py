"""Data as of: the export's latest record, and the periods it is too old for. Expectations
computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from funnel_reports.transforms.freshness import StaleExportError, check_fresh, data_as_of, freshness
from funnel_reports.transforms.periods import parse_period
from tests.helpers import history, opp, opportunities, touches


def test_data_as_of_is_the_newest_record_of_any_table_not_a_date_ahead():
    tables = {
        "opportunities": opportunities(
            opp(
                "A",
                "won",
                "2024-05-01",
                closed_at="2024-06-03T10:00:00Z",
                expected_close_date="2025-01-01",  # a plan, not a record: ignored
            ),
            opp("B", "lead", "2024-05-02"),
        ),
        "stage_history": history(("A", "lead", "2024-05-01T00:00:00Z")),
        # the newest record: a follow-up on 2024-06-20; its due date lies ahead and is ignored
        "followups": touches(
            {
                "opportunity_id": "B",
                "occurred_at": "2024-06-20T09:30:00Z",
                "channel": "phone",
                "next_action_due": "2024-12-01",
            }
        ),
    }
    assert data_as_of(tables) == datetime(2024, 6, 20, 9, 30, tzinfo=UTC)
    assert data_as_of({"opportunities": tables["opportunities"]}) == datetime(
        2024, 6, 3, 10, tzinfo=UTC
    )


def test_a_period_ending_more_than_stale_after_days_after_the_data_is_refused():
    june = parse_period("2024-06")  # ends 2024-07-01T00:00Z
    # exactly 7 days before the end: allowed
    check_fresh(june, datetime(2024, 6, 24, tzinfo=UTC), stale_after_days=7, timezone="UTC")
    # 7 days and an hour: refused, with both dates
    with pytest.raises(StaleExportError) as error:
        check_fresh(june, datetime(2024, 6, 23, 23, tzinfo=UTC), stale_after_days=7, timezone="UTC")
    assert str(error.value) == (
        "the export's latest record is from 2024-06-23, but 2024-06 runs to 2024-06-30, 7 days "
        "later (more than stale_after_days = 7): export again, or run with --allow-stale to "
        "report it anyway"
    )
    # an export reaching past the period (a past month rerun) is never stale
    check_fresh(june, datetime(2026, 1, 1, tzinfo=UTC), stale_after_days=0, timezone="UTC")


def test_freshness_in_metrics_gives_the_local_date_and_the_days_before_the_end():
    june = parse_period("2024-06", "Asia/Shanghai")  # ends 2024-06-30T16:00Z
    # 2024-06-29T20:00Z is 2024-06-30 04:00 in Shanghai; 20 hours = 0.833333 days before the end
    fresh = freshness(june, datetime(2024, 6, 29, 20, tzinfo=UTC), timezone="Asia/Shanghai")
    assert fresh["date"] == "2024-06-30"
    assert fresh["days_before_period_end"] == pytest.approx(20 / 24)
    assert freshness(june, None, timezone="UTC")["date"] is None
