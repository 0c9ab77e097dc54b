"""The shared expressions: sums that come out the same to the last bit in any row order."""

import math

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from funnel_reports.transforms.expressions import stable_mean, stable_sum


def total(values: list[float | None]) -> float:
    return (
        pl.DataFrame({"x": values}, schema={"x": pl.Float64}).select(stable_sum(pl.col("x"))).item()
    )


def test_a_sum_the_plain_float_sum_gets_wrong_is_exact():
    # 0.1 + 0.2 + 0.3 is 0.6000000000000001 in floats; the exact sum rounds to 0.6
    assert 0.1 + 0.2 + 0.3 != 0.6
    assert total([0.1, 0.2, 0.3]) == 0.6


def test_the_order_of_the_rows_does_not_change_the_bits():
    values = [1e9 / 3, 0.1, 7.25, 2e-3, 123456.789, 1e9 / 7]
    assert total(values) == total(list(reversed(values))) == total(sorted(values))


def test_nulls_are_left_out_and_nothing_sums_to_zero():
    assert total([None, 1.5, None]) == 1.5
    assert total([]) == 0.0
    assert total([None]) == 0.0


def test_huge_and_cancelling_values_stay_finite():
    assert total([1e300, -1e300, 3.0]) == 0.0  # 3 is below the grid of a 1e300 column
    assert total([1e15, 0.25]) == 1e15 + 0.25


def test_the_mean_is_null_without_values():
    frame = pl.DataFrame({"x": [None, 2.0, 4.0]}, schema={"x": pl.Float64})
    assert frame.select(stable_mean(pl.col("x"))).item() == 3.0
    assert frame.head(1).select(stable_mean(pl.col("x"))).item() is None


def test_group_sums_are_exact_per_group():
    frame = pl.DataFrame({"g": ["a", "b", "a", "b"], "x": [0.1, 0.7, 0.2, 0.1]})
    sums = frame.group_by("g").agg(stable_sum(pl.col("x"))).sort("g")
    assert sums["x"].to_list() == [math.fsum([0.1, 0.2]), math.fsum([0.7, 0.1])]


def test_values_below_the_grids_finest_unit_count_as_zero():
    # the grid's unit is at least 2^-1020 (1e-307): a subnormal float (no amount or share
    # is one) is 0, and beside 2.5 so is 1e-300
    assert total([1e-310]) == 0.0
    assert total([1e-300, 2.5]) == 2.5


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)


@given(st.lists(finite, max_size=60), st.randoms(use_true_random=False))
def test_any_order_gives_the_same_bits_close_to_the_exact_sum(values, random):
    shuffled = values[:]
    random.shuffle(shuffled)
    assert total(values) == total(shuffled)
    # each value loses less than one unit of the grid, 2^(bits - 120) where 2^bits bounds the
    # largest value times the count (never below 2^-1020); the one rounding back to a float
    # may land on either float beside the exact sum
    exact = math.fsum(values)
    count = max(len(values), 1)
    bound = max((abs(v) for v in values), default=0.0) * count
    unit = max(2.0**-1020, 2 * bound * 2.0**-120)
    assert abs(total(values) - exact) <= math.ulp(exact) + count * unit
