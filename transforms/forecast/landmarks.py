"""The next period's forecast (docs/metrics.md `forecast.next_period`): what will be won in the next
period, from the deals open now and from deals not yet created.

- Open deals: the chance to be won *within* the next period, by stage and age in stage,
  learned from landmarks (at each past month end t, the deals then open and whether they were
  won in [t, t + horizon)), shrunk cell → stage → overall where cells are thin.
- Deals not yet created: the run rate of the amount created and won inside one period.
- Amounts: the deal's own, else the expected won amount of comparable deals: the mean won
  amount in W of deals of its product and customer size, shrunk toward its product's, shrunk
  toward all deals'. A sum needs the mean: won amounts are right-skewed, and their median is
  well below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import polars as pl

from funnel_reports.schemas.vocabulary import LOST, WON
from funnel_reports.transforms.expressions import days_between, in_interval, stable_sum
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.entries import stage_index
from funnel_reports.transforms.intermediate.states import DEAL, DealStatesAt, deal_states_at
from funnel_reports.transforms.periods import Period, add_months

# age in stage at a landmark, in days: bins [0, 7) [7, 14) [14, 30) [30, 60) [60, ∞)
AGE_EDGES_DAYS = (7.0, 14.0, 30.0, 60.0)
# where the CRM's expected close date lies against a landmark's horizon
CLOSE_NONE, CLOSE_OVERDUE, CLOSE_DUE, CLOSE_LATER = "none", "overdue", "due", "later"
# the cells of the within-period probability, each shrunk toward the one before it
STAGE_AGE = (("stage",), ("stage", "age_bin"))
STAGE_AGE_CLOSE = (*STAGE_AGE, ("stage", "age_bin", "close"))
# the comparable deals of a deal without an amount: those of its product, then of its product
# and customer size; each level's mean won amount is shrunk toward the one above with the
# weight of this many deals
PRICE_KEYS = ("product", "customer_size")
PRICE_LEVELS = (PRICE_KEYS[:1], PRICE_KEYS)
PRICE_SHRINK_DEALS = 5.0


def landmark_instants(first: Period, last: Period, *, horizon_months: int) -> pl.DataFrame:
    """Every month end from the end of month `first` to the end of month `last`, each with
    the end of its horizon (`horizon_months` later), as UTC instants and local dates."""
    rows, month = [], first
    while month.start_date <= last.start_date:
        ahead = month.shifted(horizon_months)
        rows.append((month.end, month.end_date, ahead.end, ahead.end_date))
        month = month.shifted(1)
    return pl.DataFrame(
        rows,
        schema={
            "landmark": pl.Datetime("us", "UTC"),
            "landmark_date": pl.Date,
            "horizon_end": pl.Datetime("us", "UTC"),
            "horizon_end_date": pl.Date,
        },
        orient="row",
    )


def landmark_deals(
    facts: pl.LazyFrame,
    spans: pl.LazyFrame,
    opportunities: pl.LazyFrame,
    *,
    instants: pl.DataFrame,
    as_of: datetime,
    funnel: FunnelModel,
) -> pl.DataFrame:
    """The deals open at each landmark: one row per (deal, landmark), by landmark then in the
    opportunities' order.

    A deal is open at t in the open-stage visit (as stage visits know it at `as_of`, the
    last landmark) that started before t and had not ended before t (`started_at < t <=
    ended_at`, or no end yet); `age_days` is t − started_at. `won_within` says the deal
    reached won in [t, horizon_end). The expected close date is the latest one the history
    records before t, else the opportunity's; `close` says where it lies against the horizon.
    Everything here is known at horizon_end, so a backtest at any origin T sees the same rows
    for the landmarks whose horizon ends by T.

    `facts` and `spans` are `deal_facts`' and `deal_spans`' tables: the span holding t gives
    the stage the deal was in at t, the entry that started that visit and the latest expected
    close date; the visit ends at the next stage change (not before t), and the one the deal
    was in at as_of at its loss, when it was lost by then.
    """
    held = visits_at_landmarks(facts, spans, instants["landmark"], as_of=as_of, funnel=funnel)
    age = days_between(pl.col("started_at"), pl.col("landmark"))
    close = pl.coalesce("_promised", "expected_close_date")
    return (
        held.join(
            instants.lazy().with_row_index("_mark").with_columns(pl.col("_mark").cast(pl.Int64)),
            on="_mark",
        )
        .join(
            opportunities.select(PRICE_KEYS).with_row_index(DEAL),
            on=DEAL,
            how="left",
        )
        .select(
            "opportunity_id",
            "landmark",
            "horizon_end",
            "stage",
            "stage_index",
            age.alias("age_days"),
            pl.sum_horizontal(*(age >= edge for edge in AGE_EDGES_DAYS)).alias("age_bin"),
            in_interval(pl.col("won_at"), pl.col("landmark"), pl.col("horizon_end"))
            .fill_null(False)
            .alias("won_within"),
            close_against_horizon(close).alias("close"),
            *PRICE_KEYS,
            DEAL,
        )
        .sort("landmark", DEAL)
        .drop(DEAL)
        .collect()
    )


def close_against_horizon(close: pl.Expr) -> pl.Expr:
    """Where an expected close date lies against a landmark's horizon: none, overdue at the
    landmark, due within the horizon, or later."""
    return (
        pl.when(close.is_null())
        .then(pl.lit(CLOSE_NONE))
        .when(close < pl.col("landmark_date"))
        .then(pl.lit(CLOSE_OVERDUE))
        .when(close < pl.col("horizon_end_date"))
        .then(pl.lit(CLOSE_DUE))
        .otherwise(pl.lit(CLOSE_LATER))
    )


def lost_at() -> pl.Expr:
    """When a deal lost by as_of was lost: its close, not before it entered its last stage."""
    return pl.when(pl.col("state") == LOST).then(
        pl.max_horizontal("closed_at", "stage_entered_at_as_of")
    )


def visits_at_landmarks(
    facts: pl.LazyFrame,
    spans: pl.LazyFrame,
    marks: pl.Series,
    *,
    as_of: datetime,
    funnel: FunnelModel,
) -> pl.LazyFrame:
    """Each open-stage visit (as known at `as_of`) once per landmark it holds (`_mark`, the
    landmark's index in `marks`): started before the landmark, not ended before it. A visit
    ends at the next stage change, and the one a deal was in at `as_of` at its loss, when
    it was lost by then."""
    last = len(marks) - 1
    at_end = deal_states_at(facts, spans, as_of=as_of, funnel=funnel).select(
        DEAL,
        "opportunity_id",
        "expected_close_date",
        "won_at",
        pl.col("stage_entered_at_as_of").alias("_last_started"),
        lost_at().alias("_lost_at"),
    )
    # the visit the deal was last in at as_of, when it was lost by then
    ends_at_loss = (pl.col("stage_entered_at_as_of") == pl.col("_last_started")) & pl.col(
        "_lost_at"
    ).is_not_null()
    return (
        spans.filter(pl.col("stage_at").is_in(funnel.open_ids))
        .join(at_end, on=DEAL)
        .select(
            DEAL,
            "opportunity_id",
            "expected_close_date",
            "won_at",
            pl.col("stage_at").alias("stage"),
            stage_index(pl.col("stage_at"), funnel=funnel).alias("stage_index"),
            pl.col("stage_entered_at_as_of").alias("started_at"),
            pl.col("history_expected_close_date").alias("_promised"),
            pl.lit(marks).search_sorted(pl.col("after"), side="right").alias("_first"),
            pl.col("until"),
            ends_at_loss.alias("_ends_at_loss"),
            pl.col("_lost_at"),
        )
        .with_columns(
            pl.when(pl.col("_ends_at_loss"))
            .then(pl.min_horizontal("until", "_lost_at"))
            .otherwise(pl.col("until"))
            .alias("ended_at")
        )
        .with_columns(
            pl.when(pl.col("ended_at").is_null())
            .then(pl.lit(last, dtype=pl.Int64))
            .otherwise(
                pl.lit(marks).search_sorted(pl.col("ended_at"), side="right").cast(pl.Int64) - 1
            )
            .alias("_last")
        )
        .filter(pl.col("_first") <= pl.col("_last"))
        .with_columns(pl.int_ranges("_first", pl.col("_last") + 1).alias("_mark"))
        .explode("_mark")
    )


def landmark_cells(landmarks: pl.DataFrame) -> pl.DataFrame:
    """Landmark cells: one row per landmark and (stage, age_bin, close) cell of its deals,
    with how many deals it holds (`deals`) and how many of them were won within (`won`)."""
    return landmarks.group_by("landmark", "horizon_end", *STAGE_AGE_CLOSE[-1]).agg(
        pl.len().alias("deals"), pl.col("won_within").sum().alias("won")
    )


def training_rows(cells: pl.DataFrame, *, origin: datetime, window_start: datetime) -> pl.DataFrame:
    """The landmark cells a forecast at `origin` learns from: in W, with a horizon ended by
    then."""
    return cells.filter((pl.col("landmark") >= window_start) & (pl.col("horizon_end") <= origin))


def within_probabilities(
    deals: pl.DataFrame,
    training: pl.DataFrame,
    *,
    levels: Sequence[tuple[str, ...]],
    strength: float,
) -> pl.Series:
    """The chance each of `deals` is won within the horizon, learned from the landmark cells
    of `training`.

    Level by level, a cell's rate is (won + m·p_parent) / (landmarks + m), with p_parent the
    rate of the cell one level up (the overall rate above the first level) and m `strength`;
    a deal takes its deepest cell that training saw. Null for every deal when training is
    empty.
    """
    return shrunk_estimates(
        deals,
        training,
        levels=levels,
        total=pl.col("won"),
        weight=pl.col("deals"),
        strength=strength,
    ).alias("p_within")


def shrunk_estimates(
    deals: pl.DataFrame,
    seen: pl.DataFrame,
    *,
    levels: Sequence[tuple[str, ...]],
    total: pl.Expr,
    weight: pl.Expr,
    strength: float,
) -> pl.Series:
    """For each of `deals`, the ratio Σtotal / Σweight over the rows of `seen` that share its
    cell, shrunk level by level toward the cell one level up: (Σtotal + m·parent) /
    (Σweight + m), m `strength`, the first level's parent the ratio over all of `seen`. A deal
    takes its deepest cell that `seen` holds (null keys match null keys); null for every
    deal when `seen` is empty."""
    if seen.height == 0:
        return pl.Series("estimate", [None] * deals.height, dtype=pl.Float64)
    overall = seen.select(stable_sum(total) / stable_sum(weight)).item()
    keyed = deals.with_columns(pl.lit(overall, dtype=pl.Float64).alias("estimate"))
    parent: pl.DataFrame | None = None
    for keys in levels:
        cells = seen.group_by(keys).agg(
            stable_sum(total).alias("_total"), stable_sum(weight).alias("_weight")
        )
        if parent is None:
            cells = cells.with_columns(pl.lit(overall, dtype=pl.Float64).alias("_parent"))
        else:
            cells = cells.join(
                parent.rename({"_e": "_parent"}), on=keys[:-1], how="left", nulls_equal=True
            )
        cells = cells.select(
            *keys,
            ((pl.col("_total") + strength * pl.col("_parent")) / (pl.col("_weight") + strength))
            .cast(pl.Float64)
            .alias("_e"),
        )
        keyed = (
            keyed.join(cells, on=keys, how="left", maintain_order="left", nulls_equal=True)
            .with_columns(pl.coalesce("_e", "estimate").alias("estimate"))
            .drop("_e")
        )
        parent = cells
    return keyed["estimate"]


def priced(open_deals: pl.DataFrame, won: pl.DataFrame) -> pl.DataFrame:
    """`open_deals` with `amount_used`: the deal's amount, else the expected won amount of
    comparable deals in `won` (`shrunk_estimates` of the mean won amount over PRICE_LEVELS,
    PRICE_SHRINK_DEALS deals strong); `is_imputed` marks the estimated ones (null amount
    when nothing priced was won)."""
    priced_won = won.filter(pl.col("amount_at").is_not_null())
    expected = shrunk_estimates(
        open_deals,
        priced_won,
        levels=PRICE_LEVELS,
        total=pl.col("amount_at"),
        weight=pl.col("amount_at").is_not_null().cast(pl.Float64),  # one per won deal
        strength=PRICE_SHRINK_DEALS,
    )
    return open_deals.with_columns(
        pl.coalesce(pl.col("amount_at"), pl.lit(expected)).alias("amount_used"),
        (pl.col("amount_at").is_null() & pl.lit(expected).is_not_null()).alias("is_imputed"),
    )


@dataclass(frozen=True)
class NewDeals:
    """Deals created and won inside one period, over the past periods: the run rate and what
    a Monte Carlo draw needs (the mean count, scaled by the season, and the amounts seen)."""

    periods: int
    mean_amount: float | None  # the run rate: mean amount created and won per period
    seasonal_factor: float  # 1.0 without two years of history
    mean_count: float
    amounts: pl.Series  # every created-and-won amount seen (unpriced as 0)

    @property
    def expected(self) -> float | None:
        return None if self.mean_amount is None else self.mean_amount * self.seasonal_factor


class WonByPeriod:
    """The amount won in each period and the amounts of the deals created and won inside it,
    each as known at the period's end (unpriced as 0), computed once per period."""

    def __init__(self, states_at: DealStatesAt):
        self._states_at = states_at
        self._known: dict[datetime, tuple[float, pl.Series]] = {}

    def __call__(self, period: Period) -> tuple[float, pl.Series]:
        if period.end not in self._known:
            won = (
                self._states_at.states(period.end)
                .filter(
                    (pl.col("state") == WON)
                    & in_interval(pl.col("won_at"), period.start, period.end)
                )
                .select(
                    pl.col("amount_at").fill_null(0.0),
                    (pl.col("created_at") >= period.start).alias("is_new"),
                )
                .collect()
            )
            self._known[period.end] = (
                won.select(stable_sum(pl.col("amount_at"))).item(),
                won.filter("is_new")["amount_at"].sort(),
            )
        return self._known[period.end]


def new_deals(
    won_by_period: WonByPeriod, *, origin: Period, first: Period, window_months: int
) -> NewDeals:
    """The run rate of deals created and won inside one period, from the periods of W that
    end by `origin`'s end and start no earlier than `first` (the first with data). With two
    years of such periods, the seasonal factor is last year's figure for the next period
    over last year's mean (a factor of 1 when last year's mean is 0)."""
    per_year = 12 // origin.months
    in_window = window_months // origin.months
    history = []
    back = 0
    while origin.shifted(-back).start_date >= first.start_date and back < 2 * per_year:
        history.append(won_by_period(origin.shifted(-back))[1])
        back += 1
    recent = history[:in_window]
    if not recent:
        return NewDeals(0, None, 1.0, 0.0, pl.Series("amount_at", [], dtype=pl.Float64))
    totals = list(
        pl.select(stable_sum(pl.lit(a)).alias(str(k)) for k, a in enumerate(history)).row(0)
    )
    mean_amount = sum(totals[:in_window]) / len(recent)
    seasonal = 1.0
    if len(history) >= 2 * per_year:
        # history[k] is the period k steps back; the next period a year ago is per_year − 1
        # steps back, and last year is the per_year periods before the last per_year
        last_year = totals[per_year : 2 * per_year]
        level = sum(last_year) / per_year
        seasonal = totals[per_year - 1] / level if level > 0 else 1.0
    return NewDeals(
        len(recent),
        mean_amount,
        seasonal,
        sum(amounts.len() for amounts in recent) / len(recent),
        pl.concat(recent),
    )


def first_month(opportunities: pl.LazyFrame, *, timezone: str) -> Period | None:
    """The month of the earliest created deal, or None without deals."""
    first = opportunities.select(pl.col("created_at").min()).collect().item()
    if first is None:
        return None
    local = first.astimezone(ZoneInfo(timezone)).date().replace(day=1)
    return Period("month", local, add_months(local, 1), timezone)
