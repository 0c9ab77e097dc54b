"""Stage reaches: each deal's first reach of each stage (a skipped stage is reached when a
later one is entered), as known at a period's end (2024-07-01)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.helpers import history, opp, opportunities, path, world


def reaches_of(deals, steps, period="2024-06"):
    w = world(deals, steps, period=period)
    return {
        (r["opportunity_id"], r["stage"]): r["reached_at"] for r in w.derived.reaches.to_dicts()
    }


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_a_skipped_stage_is_reached_when_a_later_one_is_entered():
    deals = opportunities(opp("A", "proposal", "2024-05-01"))
    steps = history(*path("A", ("lead", "2024-05-01"), ("proposal", "2024-05-10")))
    assert reaches_of(deals, steps) == {
        ("A", "lead"): at("2024-05-01"),
        ("A", "qualified"): at("2024-05-10"),  # skipped: reached with proposal
        ("A", "proposal"): at("2024-05-10"),
    }


def test_a_first_reach_is_the_earliest_entry_into_the_stage_or_a_later_one():
    deals = opportunities(opp("A", "proposal", "2024-05-01"))
    steps = history(
        *path(
            "A",
            ("lead", "2024-05-01"),
            ("proposal", "2024-05-10"),
            ("qualified", "2024-05-20"),  # back a stage: qualified was reached on 05-10
            ("proposal", "2024-05-30"),
        )
    )
    reached = reaches_of(deals, steps)
    assert reached[("A", "qualified")] == at("2024-05-10")
    assert reached[("A", "proposal")] == at("2024-05-10")


def test_what_happens_after_as_of_is_not_known_yet():
    deals = opportunities(opp("A", "negotiation", "2024-05-01"), opp("B", "lead", "2024-07-05"))
    steps = history(
        *path("A", ("lead", "2024-05-01"), ("negotiation", "2024-07-02")),
        *path("B", ("lead", "2024-07-05")),
    )
    # as of 2024-07-01: A is in lead only, B not created yet
    assert reaches_of(deals, steps) == {("A", "lead"): at("2024-05-01")}
    # as of 2024-08-01 both are known, A through every stage it skipped
    later = reaches_of(deals, steps, period="2024-07")
    assert set(later) == {
        ("A", "lead"),
        ("A", "qualified"),
        ("A", "proposal"),
        ("A", "negotiation"),
        ("B", "lead"),
    }
    assert later[("A", "qualified")] == at("2024-07-02")
