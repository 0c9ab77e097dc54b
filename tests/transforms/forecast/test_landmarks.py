"""The next period's forecast: landmark probabilities by stage and age, the new-deal run rate,
borrowed amounts, the Monte Carlo range over both parts, and the method the backtest picks.
Expectations computed by hand in the comments.

The period is 2024-06 in UTC (as_of 2024-07-01, W from 2023-07-01) unless a test says
otherwise; landmarks are the month ends (2024-04-01, 2024-05-01, …), each with a one-month
horizon.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from funnel_reports.transforms.forecast.backtest import forecast_at, spread_factor, widened
from funnel_reports.transforms.forecast.landmarks import PRICE_KEYS, priced
from funnel_reports.transforms.forecast.monte_carlo import monte_carlo
from tests.helpers import figures, history, opp, opportunities, path, world


def inputs_of(w):
    inputs = w.forecast_inputs
    assert inputs is not None
    return inputs


def stalled_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """S1, S2, S3 entered proposal on 03-01; S1 and S2 were lost on 06-20, S3 is still open.
    Y1 and Y2 entered proposal on 05-28 and were won on 06-10; Y3 entered it on 06-27.

    Landmarks whose horizon ended by 07-01 (first month: March): 04-01: S1-S3 aged 31 days
    (bin [30, 60)), not won within; 05-01: S1-S3 aged 61 (bin [60, ∞)), not won; 06-01: S1-S3
    aged 92 (bin [60, ∞)), not won, and Y1, Y2 aged 4 (bin [0, 7)), won within. 11 rows, 2
    won: p0 = 2/11. Proposal (all 11): (2 + 5·2/11) / 16 = 2/11.
    Cell [0, 7): (2 + 5·2/11) / (2 + 5) = 32/77; cell [60, ∞): (0 + 10/11) / (6 + 5) = 10/121.
    At 07-01: Y3 aged 4 days takes 32/77, S3 aged 122 takes 10/121; both have 1,000.
    """
    opps = [
        opp("S1", "proposal", "2024-03-01", status="lost", closed_at="2024-06-20", amount=1000),
        opp("S2", "proposal", "2024-03-01", status="lost", closed_at="2024-06-20", amount=1000),
        opp("S3", "proposal", "2024-03-01", amount=1000),
        opp("Y1", "won", "2024-05-28", closed_at="2024-06-10", amount=1000),
        opp("Y2", "won", "2024-05-28", closed_at="2024-06-10", amount=1000),
        opp("Y3", "proposal", "2024-06-27", amount=1000),
    ]
    rows = []
    for oid in ("S1", "S2", "S3"):
        rows += path(oid, ("proposal", "2024-03-01"))
    for oid in ("Y1", "Y2"):
        rows += path(oid, ("proposal", "2024-05-28"), ("won", "2024-06-10"))
    rows += path("Y3", ("proposal", "2024-06-27"))
    return opportunities(*opps), history(*rows)


def stalled_world():
    return world(*stalled_tables())


def test_a_stalled_deal_is_less_likely_to_close_within_the_period_than_a_fresh_one():
    w = stalled_world()
    deals = forecast_at(inputs_of(w), w.period).deals["landmark"]
    p = dict(zip(deals["opportunity_id"], deals["p_within"], strict=True))
    assert p == {"Y3": pytest.approx(32 / 77), "S3": pytest.approx(10 / 121)}
    assert p["S3"] < p["Y3"]


def test_next_period_is_the_open_deals_part_plus_the_new_deals_part():
    f = figures(*stalled_tables(), of=("forecast",))["forecast"]
    # open deals: 1000 · 32/77 + 1000 · 10/121; no deal was created and won inside one month
    # (Y1 and Y2 were created in May and won in June): the run rate over March–June is 0
    open_part = 1000 * 32 / 77 + 1000 * 10 / 121
    assert f["next_period_components"] == {
        "open_deals": pytest.approx(open_part),
        "new_deals": 0.0,
    }
    # no backtest origin (the first with six months of data behind it ends in September):
    # nothing to choose by, so the default: the blend of the model (nothing to correct it
    # by yet) and the mean of April–June's won amounts (0, 0 and Y1 + Y2's 2,000)
    assert f["method"] == "blend" and f["backtest"]["periods"] == []
    assert f["next_period_by_method"]["landmark"] == pytest.approx(open_part)
    assert f["next_period"] == pytest.approx((open_part + 2000 / 3) / 2)
    assert f["new_deals"]["periods"] == 4
    assert f["imputed_amount_count"] == 0


def test_the_monte_carlo_range_draws_the_open_deals_with_their_chances():
    # Y3 (32/77) and S3 (10/121), 1,000 each, no new deals: 0 with (45/77)(111/121) = 0.536,
    # 1,000 with 0.430, 2,000 with 0.034: P10 0, P50 0, P90 1,000; reaching 1,000 is 0.464
    w = stalled_world()
    at = forecast_at(inputs_of(w), w.period, target=1000)
    mc = at.ranges["landmark"]
    assert (mc["p10"], mc["p50"], mc["p90"]) == (0.0, 0.0, 1000.0)
    hit = 1 - (45 / 77) * (111 / 121)
    assert mc["p_hit_target"] == pytest.approx(hit, abs=4 * (hit * (1 - hit) / 5000) ** 0.5)
    assert forecast_at(inputs_of(w), w.period, target=1000).ranges["landmark"] == mc  # seed


def test_the_monte_carlo_range_draws_new_deals_as_a_poisson_count():
    # 100 per new deal, 2 expected: Poisson(2) cdf 0.135, 0.406, 0.677, 0.857, 0.947 at
    # 0..4 deals: P10 0, P50 200, P90 400
    mc = monte_carlo(
        np.zeros(0),
        np.zeros(0),
        new_deal_count=2.0,
        new_deal_amounts=np.array([100.0]),
        target=300,
    )
    assert (mc["p10"], mc["p50"], mc["p90"]) == (0.0, 200.0, 400.0)
    assert mc["p_hit_target"] == pytest.approx(1 - 0.677, abs=0.03)


def test_deals_created_and_won_inside_a_period_make_the_run_rate():
    """N1 created 03-05 and won 03-20 (1,000); N2 created 04-02 and won 04-10 (3,000); none in
    May; N3 created 06-01 and won 06-15 (2,000). Over March–June: 6,000 / 4 = 1,500 a month,
    0.75 deals. Nothing is open, so the open deals bring 0."""
    opps = [
        opp("N1", "won", "2024-03-05", closed_at="2024-03-20", amount=1000),
        opp("N2", "won", "2024-04-02", closed_at="2024-04-10", amount=3000),
        opp("N3", "won", "2024-06-01", closed_at="2024-06-15", amount=2000),
    ]
    f = figures(opportunities(*opps), of=("forecast",))["forecast"]
    assert f["new_deals"] == {
        "periods": 4,
        "run_rate": 1500.0,
        "seasonal_factor": 1.0,
        "mean_count": 0.75,
    }
    assert f["next_period_components"] == {"open_deals": 0.0, "new_deals": 1500.0}
    by_method = f["next_period_by_method"]
    assert by_method["landmark"] == 1500.0
    # the blend (the default): half the model and half the mean of April–June, 5,000 / 3
    assert f["next_period"] == pytest.approx((1500.0 + 5000 / 3) / 2)
    assert by_method["last_period"] == 2000.0  # won in June
    assert by_method["mean_last_3"] == pytest.approx((3000 + 0 + 2000) / 3)


def test_two_years_of_history_add_a_seasonal_factor():
    """One deal created and won inside each month from 2022-07 to 2024-06, 1,000 each, but
    3,000 in 2023-07. Last year (2023-07 … 2024-06) averages (3000 + 11·1000) / 12 = 14000/12;
    the year before the next period's twin (2022-07 … 2023-06) averages 1,000, and the next
    period's twin 2023-07 brought 3,000: factor 3. Run rate 14000/12 · 3 = 3,500."""
    opps = []
    for i in range(24):
        year, month = 2022 + (6 + i) // 12, (6 + i) % 12 + 1
        day = f"{year}-{month:02d}"
        opps.append(
            opp(
                f"N{i}",
                "won",
                f"{day}-02",
                closed_at=f"{day}-20",
                amount=3000 if day == "2023-07" else 1000,
            )
        )
    f = figures(opportunities(*opps), of=("forecast",))["forecast"]
    assert f["new_deals"]["seasonal_factor"] == pytest.approx(3.0)
    assert f["new_deals"]["run_rate"] == pytest.approx(14000 / 12)
    assert f["next_period_components"]["new_deals"] == pytest.approx(3500.0)


def test_a_deal_without_an_amount_is_priced_at_the_shrunk_mean_of_its_size():
    open_deals = pl.DataFrame(
        {
            "opportunity_id": ["A", "B", "C"],
            "product": [None, None, None],
            "customer_size": ["SMB", "Enterprise", "SMB"],
            "amount_at": [None, None, 700.0],
        },
        schema_overrides={"product": pl.String},
    )
    won = pl.DataFrame(
        {
            "product": [None] * 6,
            "customer_size": ["SMB"] * 5 + ["Enterprise"],
            "amount_at": [100.0, 200.0, 300.0, 400.0, 500.0, 10_000.0],
        },
        schema_overrides={"product": pl.String},
    )
    # all six: mean 11,500 / 6; no product: the product level is all six again, so the same;
    # SMB: (1,500 + 5 × 11,500/6) / (5 + 5) = 1,108.33; Enterprise: (10,000 + 5 × 11,500/6)
    # / (1 + 5) = 3,263.89
    result = priced(open_deals, won)
    assert result["amount_used"].to_list() == pytest.approx([1108.3333, 3263.8889, 700.0])
    assert result["is_imputed"].to_list() == [True, True, False]


def test_a_deal_takes_its_products_mean_shrunk_toward_all_deals():
    open_deals = pl.DataFrame(
        {
            "opportunity_id": ["X", "Y", "Z"],
            "product": ["GTK", "MG", "new"],
            "customer_size": [None, None, None],
            "amount_at": [None, None, None],
        },
        schema_overrides={"customer_size": pl.String, "amount_at": pl.Float64},
    )
    won = pl.DataFrame(
        {
            "product": ["MG"] * 5 + ["GTK"] * 2,
            "customer_size": [None] * 7,
            "amount_at": [50.0, 60.0, 55.0, 45.0, 50.0, 26_000.0, 25_000.0],
        },
        schema_overrides={"customer_size": pl.String},
    )
    # all seven: 51,260 / 7 = 7,322.86. Product GTK: (51,000 + 5 × 7,322.86) / (2 + 5) =
    # 12,516.33; its cell with no size holds the same two deals, shrunk toward that:
    # (51,000 + 5 × 12,516.33) / 7 = 16,225.95. MG: (260 + 5 × 7,322.86) / 10 = 3,687.43,
    # then (260 + 5 × 3,687.43) / 10 = 1,869.71. A product never won: all seven's mean.
    result = priced(open_deals, won)
    assert result["amount_used"].to_list() == pytest.approx([16225.9475, 1869.7143, 7322.8571])


def test_a_skewed_mix_is_priced_at_its_mean_not_its_median():
    """Won amounts 100, 100, 100, 100, 1,000 and 1,100: median 100, mean 416.67. Three open
    deals like them are worth 3 × 416.67 = 1,250 on average, not 300."""
    open_deals = pl.DataFrame(
        {"opportunity_id": ["A", "B", "C"], "amount_at": [None, None, None]},
        schema={"opportunity_id": pl.String, "amount_at": pl.Float64},
    ).with_columns(pl.lit(None, dtype=pl.String).alias(key) for key in PRICE_KEYS)
    won = pl.DataFrame({"amount_at": [100.0, 100.0, 100.0, 100.0, 1000.0, 1100.0]}).with_columns(
        pl.lit(None, dtype=pl.String).alias(key) for key in PRICE_KEYS
    )
    assert priced(open_deals, won)["amount_used"].sum() == pytest.approx(1250.0)


def test_nothing_priced_won_leaves_a_deal_without_an_amount_unpriced():
    open_deals = pl.DataFrame(
        {"opportunity_id": ["A"], "amount_at": [None]},
        schema={"opportunity_id": pl.String, "amount_at": pl.Float64},
    ).with_columns(pl.lit(None, dtype=pl.String).alias(key) for key in PRICE_KEYS)
    won = open_deals.head(0).drop("opportunity_id")
    result = priced(open_deals, won)
    assert result["amount_used"].to_list() == [None]
    assert result["is_imputed"].to_list() == [False]


def test_open_deals_without_amounts_still_forecast_a_number():
    """W1 (won 05-20, 4,000) and the open O1 without an amount: O1 borrows 4,000, the only
    won amount, and is counted."""
    opps = [
        opp("W1", "won", "2024-05-02", closed_at="2024-05-20", amount=4000),
        opp("O1", "qualified", "2024-05-02"),
    ]
    rows = path("W1", ("lead", "2024-05-02"), ("won", "2024-05-20"))
    rows += path("O1", ("lead", "2024-05-02"), ("qualified", "2024-05-03"))
    f = figures(opportunities(*opps), history(*rows), of=("forecast",))["forecast"]
    assert (f["imputed_amount_count"], f["imputed_amount"]) == (1, 4000.0)
    # landmark 06-01: O1 in qualified aged 29 days, not won by 07-01: p0 = 0, so p = 0 at
    # every level; W1 was created and won inside May: run rate (0 + 4000) / 2 = 2,000
    assert f["next_period_components"] == {"open_deals": 0.0, "new_deals": 2000.0}
    assert f["next_period"] == 2000.0


def test_the_first_period_with_no_history_forecasts_the_last_period():
    """Everything starts in June: no landmark's horizon has ended, so the open deals have no
    chance to learn from; the forecast falls back to June's won amount, 5,000."""
    opps = [
        opp("W1", "won", "2024-06-03", closed_at="2024-06-20", amount=5000),
        opp("O1", "proposal", "2024-06-05", amount=8000),
    ]
    f = figures(opportunities(*opps), of=("forecast",))["forecast"]
    assert f["method"] == "last_period"
    assert f["next_period"] == 5000.0
    assert f["next_period_components"] == {"open_deals": None, "new_deals": 5000.0}
    assert f["backtest"]["periods"] == []
    assert f["monte_carlo"]["p50"] is None


def test_the_range_widens_to_hold_four_in_five_earlier_actuals():
    """Ten earlier origins, each simulated as P10 90, P50 100, P90 110: actuals 100, 105,
    95, 120, 70, 100, 100, 100, 115 and 140 lie 0, 0.5, 0.5, 2, 3, 0, 0, 0, 1.5 and 4
    half-ranges from P50. Sorted, (0, 0, 0, 0, 0.5, 0.5, 1.5, 2, 3, 4): the ⌈11 · 0.8⌉ = 9th
    is 3, so the range triples (a plain 80th percentile, 2.2, held 7 of the 10). Of the first
    six, ⌈7 · 0.8⌉ = 6th of (0, 0, 0.5, 0.5, 2, 3): 3 again; of the first three, the
    largest, 0.5: never narrowed, 1. When every actual lies on P50 it stays as simulated."""
    actuals = (100, 105, 95, 120, 70, 100, 100, 100, 115, 140)
    rows = [{"simulated": (90.0, 100.0, 110.0), "actual": a} for a in actuals]
    assert spread_factor(rows) == pytest.approx(3.0)
    assert spread_factor(rows[:6]) == pytest.approx(3.0)
    assert spread_factor(rows[:4]) == pytest.approx(2.0)  # ⌈5 · 0.8⌉ = 4th: the largest
    assert spread_factor(rows[:3]) == 1.0
    assert spread_factor([{**r, "actual": 100} for r in rows]) == 1.0
    assert widened((90.0, 100.0, 110.0), 2.0) == (80.0, 120.0)


def test_no_deal_before_the_period_end_forecasts_nothing():
    """D0 is created after June: there is nothing to forecast from, yet every key is there."""
    f = figures(opportunities(opp("D0", "lead", "2024-07-05")), of=("forecast",))["forecast"]
    assert (f["next_period"], f["method"]) == (None, None)
    assert f["next_period_components"] == {"open_deals": None, "new_deals": None}
    assert f["backtest"]["periods"] == [] and f["backtest"]["method"] is None
    assert f["backtest"]["wape"] is None and f["backtest"]["spread_factor"] == 1.0
    assert f["new_deals"]["periods"] == 0 and f["monte_carlo"]["p50"] is None
