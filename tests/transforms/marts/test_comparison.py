"""`trend` and `months`: the headline figures of earlier periods, each as of its own end
(`comparison` itself: tests/transforms/marts/test_kpis.py)."""

from __future__ import annotations

from tests.helpers import figures, opp, opportunities


def deals():
    """B won in April, C lost in May, A won in June; D open since January."""
    return opportunities(
        opp("A", "won", "2024-05-01", status="won", closed_at="2024-06-10", amount=100),
        opp("B", "won", "2024-03-01", status="won", closed_at="2024-04-05", amount=50),
        opp("C", "proposal", "2024-05-01", status="lost", closed_at="2024-05-20", amount=70),
        opp("D", "lead", "2024-01-15", amount=300),
    )


def test_trend_is_the_last_six_months_each_as_of_its_own_end_this_one_last():
    rows = figures(deals(), of=("trend",))["trend"]
    assert [r["label"] for r in rows] == [
        "2024-01",
        "2024-02",
        "2024-03",
        "2024-04",
        "2024-05",
        "2024-06",
    ]
    # open at each month's end: D from January, B in March, A in May (C was lost in May)
    assert [r["open_amount"] for r in rows] == [300, 300, 350, 300, 400, 300]
    assert [(r["won_count"], r["won_amount"]) for r in rows] == [
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 50),
        (0, 0),
        (1, 100),
    ]
    assert [r["lost_count"] for r in rows] == [0, 0, 0, 0, 1, 0]
    assert [r["win_rate"] for r in rows] == [None, None, None, 1.0, 0.0, 1.0]


def test_a_quarters_months_side_by_side_each_with_its_own_headline():
    months = figures(deals(), of=("months",), period="2024-Q2")["months"]
    assert [m["period"]["label"] for m in months] == ["2024-04", "2024-05", "2024-06"]
    assert [m["kpis"]["won_amount"] for m in months] == [50, 0, 100]
    assert [m["kpis"]["lost_count"] for m in months] == [0, 1, 0]
    assert [m["kpis"]["open_amount"] for m in months] == [300, 400, 300]
