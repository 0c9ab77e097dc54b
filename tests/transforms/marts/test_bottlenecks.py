"""Bottlenecks on literal visits, with the test statistics computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.marts.bottlenecks import (
    bottlenecks,
    median_interval,
    two_proportion_z,
)
from funnel_reports.transforms.periods import Window, parse_period

# June 2024, and W the twelve months 2023-07-01 to 2024-07-01
JUNE = Window(parse_period("2024-06"), 12)
IN_JUNE, BEFORE = datetime(2024, 6, 10, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC)


def visits(stage: str, ended: datetime, outcomes: dict[str, int], days: float) -> list[dict]:
    return [
        {"stage": stage, "is_open": False, "ended_at": ended, "outcome": o, "days": days}
        for o, n in outcomes.items()
        for _ in range(n)
    ]


def test_a_significant_drop_is_called_out_and_priced():
    # proposal in June: 2 forward, 8 lost (20 %); before: 30 forward, 10 lost (75 %).
    # pooled 32/50 = 0.64, z = (0.2 - 0.75) / sqrt(0.64 * 0.36 * (1/10 + 1/40) = 0.0288).
    # At risk: open proposals 1000 × drop 0.55 × p_win(negotiation) 0.5 = 275.
    # Dwell: 20 days in June against 5 before, intervals [20, 20] and [5, 5] do not overlap.
    # lead: 4 of 5 forward both in June and before: nothing to call out.
    rows = (
        visits("proposal", IN_JUNE, {"forward": 2, "lost": 8}, 20.0)
        + visits("proposal", BEFORE, {"forward": 30, "lost": 10}, 5.0)
        + visits("lead", IN_JUNE, {"forward": 4, "lost": 1, "back": 3}, 3.0)
        + visits("lead", BEFORE, {"forward": 4, "lost": 1}, 3.0)
        + [{"stage": "lead", "is_open": True, "ended_at": None, "outcome": "open", "days": 99.0}]
    )
    frame = pl.LazyFrame(rows, schema_overrides={"ended_at": pl.Datetime("us", "UTC")})
    result = bottlenecks(
        frame,
        pl.LazyFrame({"stage": ["proposal", "lead"], "amount": [1000.0, 500.0]}),
        pl.DataFrame(
            {
                "stage": ["lead", "qualified", "proposal", "negotiation"],
                "p_win": [0.2, 0.3, 0.4, 0.5],
            }
        ),
        funnel=RunSettings().funnel,
        window=JUNE,
    ).to_dicts()
    first = result[0]
    assert (first["stage"], first["next_stage"]) == ("proposal", "negotiation")
    assert (first["left_in_period"], first["conversion"]) == (10, 0.2)
    assert (first["baseline_left"], first["baseline_conversion"]) == (40, 0.75)
    assert first["z"] == pytest.approx(-0.55 / 0.0288**0.5)  # -3.2409
    assert first["is_conversion_worse"] and first["is_dwell_worse"] and first["is_called_out"]
    assert (first["median_days"], first["baseline_median_days"]) == (20.0, 5.0)
    assert first["revenue_at_risk"] == pytest.approx(275.0)
    lead = next(r for r in result if r["stage"] == "lead")
    assert (lead["conversion"], lead["baseline_conversion"]) == (0.8, 0.8)  # back moves ignored
    assert not lead["is_called_out"] and lead["revenue_at_risk"] == 0.0
    assert [r["is_called_out"] for r in result] == [True, False, False, False]


def z_of(a1: int, n1: int, a2: int, n2: int) -> float | None:
    return pl.select(two_proportion_z(*(pl.lit(v) for v in (a1, n1, a2, n2)))).item()


def interval_of(values: list[float]) -> tuple[float, float] | None:
    low, high = pl.DataFrame({"days": values}).select(*median_interval(pl.col("days"))).row(0)
    return None if low is None else (low, high)


def test_statistics_helpers():
    assert z_of(5, 10, 5, 10) == 0.0
    assert z_of(1, 0, 1, 1) is None
    assert interval_of([1.0]) is None
    # n = 9: half-width 1.96 * 3 / 2 = 2.94 -> ranks floor(4.5 - 2.94) = 1 and ceil(7.44) = 8
    assert interval_of([float(v) for v in range(9)]) == (1.0, 8.0)
