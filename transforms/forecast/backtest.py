"""The next period's forecast and the backtest that picks its method (docs/metrics.md `forecast`).

At an origin T (a period end) every candidate forecasts the amount won in the following
period from what was known at T: the landmark method (`next_period`), with and without the
CRM's expected close date, its two parts alone, the baselines (the stage-weighted pipeline
closing then by its expected close date, the last period's won amount, the mean of the last
three), and the candidates learned from the earlier origins' record (`learning`). The
backtest does this at every past period end with six months of data before it, scores each
candidate against what was then won, and picks a method from the origins before each one
(`choose`: the blend unless another did clearly better): the report's `method` is the pick
over every origin, and a backtest row's `method` the pick it would have made then.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from funnel_reports.schemas.vocabulary import OPEN, WON
from funnel_reports.transforms.expressions import stable_mean, stable_sum
from funnel_reports.transforms.forecast.categories import forecast_categories
from funnel_reports.transforms.forecast.landmarks import (
    PRICE_KEYS,
    STAGE_AGE,
    STAGE_AGE_CLOSE,
    NewDeals,
    WonByPeriod,
    first_month,
    landmark_cells,
    landmark_deals,
    landmark_instants,
    new_deals,
    priced,
    training_rows,
    within_probabilities,
)
from funnel_reports.transforms.forecast.learning import (
    BLEND,
    Learned,
    corrected,
    kind_of,
    learned_candidates,
    learned_methods,
    scaled_to,
)
from funnel_reports.transforms.forecast.monte_carlo import (
    DRAWS,
    OpenAndNew,
    monte_carlo,
    monte_carlo_of_runs,
)
from funnel_reports.transforms.forecast.pipeline import forecast as stage_weighted_forecast
from funnel_reports.transforms.forecast.pipeline import weighted_open_deals
from funnel_reports.transforms.funnel_model import FunnelModel
from funnel_reports.transforms.intermediate.derived import DerivedTables
from funnel_reports.transforms.intermediate.states import DealStatesAt
from funnel_reports.transforms.marts.win_probabilities import stage_probabilities
from funnel_reports.transforms.periods import Period, Window, add_months

LANDMARK, LANDMARK_CLOSE_DATE = "landmark", "landmark_close_date"
OPEN_DEALS, NEW_DEALS = "open_deals", "new_deals"
STAGE_WEIGHTED, LAST_PERIOD, MEAN_LAST_3 = "stage_weighted", "last_period", "mean_last_3"
MODELS = (LANDMARK, LANDMARK_CLOSE_DATE)
PARTS = (OPEN_DEALS, NEW_DEALS)
BASELINES = (STAGE_WEIGHTED, LAST_PERIOD, MEAN_LAST_3)
# the baselines the pick may take: the mean of the last three. The last period alone is one
# period's luck and the stage-weighted pipeline misses every deal not yet created, so a run
# of origins that favours either is chance (on the forecast benchmark taking them cost 3–26
# points of WAPE where they were taken); both stay on the report card as yardsticks
PICKED_BASELINES = (MEAN_LAST_3,)
# the pick starts from this many earlier origins (a quarter of monthly reports; the ratios
# behind the learned candidates are shrunk, so three origins cannot swing them far)
MIN_ORIGINS_TO_CHOOSE = 3
# another method replaces the default (the blend, `learning.BLEND`) only when its WAPE +
# |bias| over the n earlier origins is lower by this share over √n (35 % at 3 origins, 17 %
# at 12): among methods a few points apart the pick would chase each month's luck, and the
# luck of few origins is larger
SWITCH_MARGIN = 0.6
BACKTEST_DRAWS = 1_000
# a period end is a backtest origin from half a window of data on: before, the landmarks
# behind it are too few and too young (a funnel still filling up) to judge any method by
MIN_HISTORY_MONTHS = 6
COVERAGE = 0.8  # of actuals a P10–P90 range should hold
RELIABILITY_EDGES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class ForecastInputs:
    """What every origin's forecast reads: deal states at any instant, the landmark deals,
    the opportunities' price segments, and the first month with data."""

    states_at: DealStatesAt
    landmarks: pl.DataFrame
    cells: pl.DataFrame  # the landmarks' `landmark_cells`
    segments: pl.DataFrame  # opportunity_id and the PRICE_KEYS
    first: Period  # the first month with a created deal
    funnel: FunnelModel
    window_months: int
    smoothing_strength: float
    min_resolved: int
    has_close_dates: bool
    won: WonByPeriod
    # the forecast categories the history records (opportunity_id, entered_at,
    # forecast_category) and the ones the export gives the deals now
    category_history: pl.DataFrame
    current_categories: pl.DataFrame


@dataclass(frozen=True)
class OriginForecast:
    """Every candidate's forecast at one origin, with the landmark models' details."""

    origin: Period
    values: dict[str, float | None]
    ranges: dict[str, dict[str, float | None]]  # per model: the Monte Carlo figures
    deals: dict[str, pl.DataFrame]  # per model: open deals with p_within, amount_used
    open_parts: dict[str, float | None]  # per model: what the open deals bring
    new: NewDeals


def models_of(inputs: ForecastInputs) -> tuple[str, ...]:
    """The landmark methods of this export: with the expected close date only where it has one."""
    return MODELS if inputs.has_close_dates else MODELS[:1]


def forecast_at(
    inputs: ForecastInputs,
    origin: Period,
    *,
    target: float | None = None,
    spread: float = 1.0,
    draws: int = DRAWS,
    ranges_of: tuple[str, ...] = MODELS,
) -> OriginForecast:
    """Every candidate's forecast of the period after `origin`, from what was known at its
    end; the Monte Carlo ranges of the models in `ranges_of`, widened by `spread`."""
    return with_ranges(
        inputs,
        [forecast_parts(inputs, origin)],
        ranges_of=ranges_of,
        target=target,
        spread=spread,
        draws=draws,
    )[0]


def with_ranges(
    inputs: ForecastInputs,
    forecasts: Sequence[OriginForecast],
    *,
    ranges_of: tuple[str, ...],
    target: float | None,
    spread: float,
    draws: int,
) -> list[OriginForecast]:
    """`forecasts` with the Monte Carlo ranges of their models in `ranges_of`, drawn
    together (every origin's draws start from the same seed)."""
    ranged = [model for model in models_of(inputs) if model in ranges_of]
    runs = [
        OpenAndNew(
            at.deals[LANDMARK]["amount_used"].fill_null(0.0).to_numpy(),
            [
                at.deals[model]["p_within"].fill_null(np.nan).to_numpy()
                if at.open_parts[model] is not None
                else np.array([np.nan])
                for model in ranged
            ],
            at.new.mean_count * at.new.seasonal_factor,
            at.new.amounts.to_numpy(),
        )
        for at in forecasts
    ]
    drawn = monte_carlo_of_runs(runs, target=target, spread=spread, draws=draws)
    return [
        replace(at, ranges=dict(zip(ranged, figures, strict=True)))
        for at, figures in zip(forecasts, drawn, strict=True)
    ]


def forecast_parts(inputs: ForecastInputs, origin: Period) -> OriginForecast:
    """Every candidate's forecast of the period after `origin`, from what was known at its
    end, without the Monte Carlo ranges (`with_ranges` draws them)."""
    as_of, window_start = origin.end, origin.window_start(inputs.window_months)
    states = inputs.states_at.states(as_of)
    open_now = (
        inputs.landmarks.filter(pl.col("landmark") == as_of)
        .join(
            states.filter(pl.col("state") == OPEN).select("opportunity_id", "amount_at").collect(),
            on="opportunity_id",
            how="left",
        )
        .select(pl.exclude(PRICE_KEYS), *PRICE_KEYS)  # a landmark has the deal's price keys
    )
    won_in_window = (
        states.filter((pl.col("state") == WON) & (pl.col("won_at") >= window_start))
        .select("opportunity_id", "amount_at")
        .join(inputs.segments.lazy(), on="opportunity_id", how="left")
        .collect()
    )
    # in deal order, so that the Monte Carlo draws and every sum are the same on every run
    open_priced = priced(open_now, won_in_window).sort("opportunity_id")
    training = training_rows(inputs.cells, origin=as_of, window_start=window_start)
    new = new_deals(
        inputs.won, origin=origin, first=inputs.first, window_months=inputs.window_months
    )
    values: dict[str, float | None] = {}
    deals, open_parts = {}, {}
    for model, levels in zip(models_of(inputs), (STAGE_AGE, STAGE_AGE_CLOSE), strict=False):
        scored = open_priced.with_columns(
            within_probabilities(
                open_priced, training, levels=levels, strength=inputs.smoothing_strength
            )
        )
        deals[model] = scored
        known = training.height > 0 or scored.height == 0  # no open deal brings 0
        open_part = (
            scored.select(stable_sum(pl.col("p_within") * pl.col("amount_used"))).item()
            if known
            else None
        )
        open_parts[model] = open_part
        values[model] = (
            None if open_part is None or new.expected is None else open_part + new.expected
        )
        if model == LANDMARK:
            values[OPEN_DEALS], values[NEW_DEALS] = open_part, new.expected
    values |= baseline_forecasts(inputs, origin, states)
    return OriginForecast(origin, values, {}, deals, open_parts, new)


def baseline_forecasts(
    inputs: ForecastInputs, origin: Period, states: pl.LazyFrame
) -> dict[str, float | None]:
    """The forecasts the candidates are measured against, from what was known at the end of
    `origin` (`states`): the stage-weighted pipeline, the last period's won amount and the
    mean of the last three (None before three periods of the export)."""
    window = Window(origin, inputs.window_months)
    probabilities = stage_probabilities(
        states,
        funnel=inputs.funnel,
        window=window,
        smoothing_strength=inputs.smoothing_strength,
        min_resolved=inputs.min_resolved,
    )
    recent = [origin.shifted(-back) for back in range(3)]
    return {
        STAGE_WEIGHTED: stage_weighted_forecast(
            weighted_open_deals(states, probabilities),
            funnel=inputs.funnel,
            next_period=window.next_period,
            probabilities_known=probabilities["p_win"].null_count() == 0,
        )
        .select("stage_weighted_next_period")
        .collect()
        .item(),
        LAST_PERIOD: inputs.won(origin)[0],
        MEAN_LAST_3: (
            sum(inputs.won(p)[0] for p in recent) / 3
            if recent[-1].start_date >= inputs.first.start_date
            else None
        ),
    }


def backtest_origins(period: Period, first: Period) -> list[Period]:
    """Every period end before `period`'s with enough history behind it: MIN_HISTORY_MONTHS
    since the first month with data, and data in the two periods before it (for the mean of
    the last three): the origins whose following period ended by `period`'s end."""
    earliest = add_months(first.start_date, MIN_HISTORY_MONTHS)
    origins, origin = [], period.shifted(-1)
    while origin.end_date >= earliest and origin.shifted(-2).end_date > first.start_date:
        origins.append(origin)
        origin = origin.shifted(-1)
    return origins[::-1]


def scores(rows: list[dict[str, Any]], method: str) -> dict[str, Any]:
    """WAPE, bias, MAPE and P10–P90 coverage of `method` over the backtest rows."""
    pairs = [(r["forecasts"][method], r["actual"]) for r in rows]
    pairs = [(f, a) for f, a in pairs if f is not None]
    actual = sum(a for _, a in pairs)
    with_wins = [(f, a) for f, a in pairs if a > 0]
    covered = [
        r["ranges"][method]["p10"] <= r["actual"] <= r["ranges"][method]["p90"]
        for r in rows
        if method in r["ranges"] and r["ranges"][method]["p10"] is not None
    ]
    return {
        "method": method,
        "origins": len(pairs),
        "wape": sum(abs(f - a) for f, a in pairs) / actual if actual else None,
        "bias": sum(f for f, _ in pairs) / actual - 1 if actual else None,
        "mape": sum(abs(f - a) / a for f, a in with_wins) / len(with_wins) if with_wins else None,
        "coverage": sum(covered) / len(covered) if covered else None,
    }


def choose(rows: list[dict[str, Any]], available: tuple[str, ...]) -> str:
    """The method with the lowest WAPE + |bias| over `rows` among those that forecast every
    one of them (ties to the earlier in `available`): a method persistently off to one side
    pays for it twice; the default (the blend, else the landmark model) unless that method's
    cost is lower than the default's by SWITCH_MARGIN / √n over the n rows. Under
    MIN_ORIGINS_TO_CHOOSE rows, or when none can be scored, the default."""
    default = BLEND if BLEND in available else LANDMARK
    if len(rows) < MIN_ORIGINS_TO_CHOOSE:
        return default
    costs = {
        method: s["wape"] + abs(s["bias"])
        for method in available
        if (s := scores(rows, method))["origins"] == len(rows) and s["wape"] is not None
    }
    if not costs:
        return default
    best = min(costs, key=lambda method: (costs[method], available.index(method)))
    margin = SWITCH_MARGIN / len(rows) ** 0.5
    if default in costs and costs[best] > (1 - margin) * costs[default]:
        return default
    return best


def reliability(pairs: list[tuple[pl.Series, pl.Series]]) -> tuple[float | None, list[dict]]:
    """The Brier score of the deal probabilities against whether each deal was won within
    the period, and the reliability table: per probability bin, deals, mean p, won share."""
    if not pairs:
        return None, []
    frame = pl.DataFrame(
        {
            "p": pl.concat([p for p, _ in pairs]),
            "won": pl.concat([w for _, w in pairs]).cast(pl.Float64),
        }
    ).drop_nulls()
    if frame.height == 0:
        return None, []
    brier = frame.select(stable_mean((pl.col("p") - pl.col("won")) ** 2)).item()
    edges = (0.0, *RELIABILITY_EDGES, 1.0)
    table = (
        frame.with_columns(
            pl.sum_horizontal(*(pl.col("p") >= e for e in RELIABILITY_EDGES)).alias("_bin")
        )
        .group_by("_bin")
        .agg(
            pl.len().alias("deals"),
            stable_mean(pl.col("p")).alias("mean_p"),
            pl.col("won").mean().alias("won_share"),
        )
        .sort("_bin")
    )
    return brier, [
        {"from": edges[b], "to": edges[b + 1], "deals": n, "mean_p": p, "won_share": w}
        for b, n, p, w in table.iter_rows()
    ]


def spread_factor(rows: list[dict[str, Any]]) -> float:
    """How much the simulated range must widen to hold COVERAGE of the actuals of `rows`:
    each actual's distance from the simulated P50 in units of the half-range on its side,
    and of the n distances the ⌈(n + 1)·COVERAGE⌉-th smallest (the largest while n < 4): a
    split-conformal bound, under which the next actual lies inside at least COVERAGE of the
    time whatever the distances' law. A plain quantile of few distances is too small: it
    left ranges holding 50–67 % on the forecast benchmark. 1 without a usable row, and never
    less than 1 (a range is never narrowed)."""
    distances = []
    for row in rows:
        p10, p50, p90 = row["simulated"]
        if p10 is None or p50 is None or p90 is None:
            continue
        half = p90 - p50 if row["actual"] >= p50 else p50 - p10
        if half > 0:
            distances.append(abs(row["actual"] - p50) / half)
    if not distances:
        return 1.0
    rank = min(math.ceil((len(distances) + 1) * COVERAGE), len(distances))
    return max(1.0, sorted(distances)[rank - 1])


def widened(simulated: tuple[float | None, ...], spread: float) -> tuple[float | None, ...]:
    """P10 and P90 moved `spread` times as far from P50 (P10 not below 0: nothing wins less)."""
    p10, p50, p90 = simulated
    if p10 is None or p50 is None or p90 is None:
        return None, None
    return max(p50 + spread * (p10 - p50), 0.0), p50 + spread * (p90 - p50)


def available_methods(inputs: ForecastInputs, grain: str) -> tuple[str, ...]:
    """Every method the pick may take, in the order that breaks its ties: the simpler first,
    so that a learned method with nothing learned yet (a season no earlier origin held: its
    base's figure exactly) never wins over its base (the order of `with_learned`'s values)."""
    models = models_of(inputs)
    return (*models, *PICKED_BASELINES, *learned_methods(models, grain))


def usable(method: str, values: dict[str, float | None]) -> str:
    """`method` where it forecasts, else the landmark model as its record corrects it, else
    as it is, else the last period's won amount: the one figure always known."""
    return next(
        m for m in (method, corrected(LANDMARK), LANDMARK, LAST_PERIOD) if values.get(m) is not None
    )


def change_of(
    method: str, changes: dict[str, Learned | None], values: dict[str, float | None]
) -> Learned:
    """`method` as a change of a landmark model's forecast (`values`: every candidate's),
    for its range: a learned candidate's own; a model as it is; a baseline the landmark
    model's range scaled to the baseline's figure."""
    if method in changes and changes[method] is not None:
        return changes[method]  # type: ignore[return-value]
    if method in MODELS:
        return Learned(method, 1.0, 0.0)
    return scaled_to(values[method] or 0.0, values.get(LANDMARK))


def changed_range(figures: dict[str, Any], change: Learned) -> dict[str, Any]:
    """A model's Monte Carlo figures under `change`: its quantiles moved and scaled alike (the
    chance to reach a target is drawn on the model's scale, see `model_target`); none when
    the change does not scale the model (it forecasts nothing to scale)."""
    if not change.scale:  # a figure the model's draws do not move: no range to give
        return figures | {q: None for q in ("p10", "p50", "p90", "p_hit_target")}
    return figures | {
        q: None if figures[q] is None else change.of(figures[q]) for q in ("p10", "p50", "p90")
    }


def model_target(target: float | None, change: Learned) -> float | None:
    """The target on the model's scale: what the model must reach for `change` of it to
    reach `target`."""
    if target is None or not change.scale:
        return None
    return (target - change.shift) / change.scale


def with_learned(
    at: OriginForecast, rows: list[dict[str, Any]], *, following: Period, models: tuple[str, ...]
) -> tuple[dict[str, float | None], dict[str, Learned | None]]:
    """Every candidate's forecast at `at`, the learned ones (from the earlier `rows`)
    included, and the learned ones' changes."""
    changes = learned_candidates(at.values, rows, following=following, models=models)
    learned = {
        method: None if change is None else change.of(at.values.get(change.model))
        for method, change in changes.items()
    }
    return at.values | learned, changes


def backtest_rows(
    inputs: ForecastInputs, *, period: Period
) -> tuple[list[dict[str, Any]], list[tuple[pl.Series, pl.Series]]]:
    """The candidates' forecasts at every origin before `period`'s end, each origin's pick
    made from the origins before it, and the deal chances with whether each deal was won."""
    models, available = models_of(inputs), available_methods(inputs, period.grain)
    rows: list[dict[str, Any]] = []
    probability_pairs: list[tuple[pl.Series, pl.Series]] = []
    origins = backtest_origins(period, inputs.first)
    # each origin's many small queries overlap with another's (polars lets go of the GIL)
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        parts = list(pool.map(partial(forecast_parts, inputs), origins))
    forecasts = with_ranges(
        inputs, parts, ranges_of=MODELS, target=None, spread=1.0, draws=BACKTEST_DRAWS
    )
    for origin, at in zip(origins, forecasts, strict=True):
        following = origin.shifted(1)
        values, changes = with_learned(at, rows, following=following, models=models)
        method = usable(choose(rows, available), values)
        ranges = at.ranges | {
            m: changed_range(at.ranges[c.model], c)
            for m, c in changes.items()
            if c is not None and c.model in at.ranges
        }
        change = change_of(method, changes, values)
        actual, forecast = inputs.won(following)[0], values[method]
        rows.append(
            {
                "period": following.label,
                "following": following,
                "forecast_at": origin.end_date.isoformat(),
                "method": method,
                "forecast": forecast,
                "actual": actual,
                "error": None if forecast is None else forecast - actual,
                "forecasts": values,
                "ranges": ranges,
                "simulated": tuple(
                    change.of(at.ranges[change.model][q]) for q in ("p10", "p50", "p90")
                ),
            }
        )
        # the range as the report would have shown it then: widened by the origins before it
        rows[-1]["p10"], rows[-1]["p90"] = widened(rows[-1]["simulated"], spread_factor(rows[:-1]))
        deals = at.deals[LANDMARK]
        probability_pairs.append((deals["p_within"], deals["won_within"]))
    return rows, probability_pairs


def backtest(inputs: ForecastInputs, *, period: Period) -> dict[str, Any]:
    """The candidates scored at every origin before `period`'s end, and the method they pick."""
    rows, probability_pairs = backtest_rows(inputs, period=period)
    return report_card(
        rows,
        probability_pairs,
        models=models_of(inputs),
        learned=learned_methods(models_of(inputs), period.grain),
        method=choose(rows, available_methods(inputs, period.grain)),
    )


def report_card(
    rows: list[dict[str, Any]],
    probability_pairs: list[tuple[pl.Series, pl.Series]],
    *,
    models: tuple[str, ...],
    learned: tuple[str, ...],
    method: str | None,
) -> dict[str, Any]:
    """`forecast.backtest`: the rows, their scores as used, and each candidate's scores."""
    brier, table = reliability(probability_pairs)
    online = [{**r, "forecasts": {"chosen": r["forecast"]}, "ranges": {"chosen": r}} for r in rows]
    hidden = ("ranges", "simulated", "following")
    return {
        "method": method,
        "periods": [{k: v for k, v in r.items() if k not in hidden} for r in rows],
        **{k: v for k, v in scores(online, "chosen").items() if k != "method"},
        "spread_factor": spread_factor(rows),
        "brier": brier,
        # the pairs the Brier score is over: a deal without a chance is not scored
        "scored_deals": sum(row["deals"] for row in table),
        "reliability": table,
        "candidates": [scores(rows, m) for m in (*models, *learned, *PARTS)],
        "baselines": [scores(rows, m) for m in BASELINES],
    }


def forecast_inputs(
    opportunities: pl.DataFrame,
    derived: DerivedTables,
    states_at: DealStatesAt,
    *,
    period: Period,
    funnel: FunnelModel,
    timezone: str,
    window_months: int,
    smoothing_strength: float,
    min_resolved: int,
) -> ForecastInputs | None:
    """What the forecasts read, built once per report on the deal states the rest of the
    report reads (`states_at`); None without a deal created by then."""
    first = first_month(opportunities.lazy(), timezone=timezone)
    last = period.month_periods()[-1]
    if first is None or first.start_date > last.start_date:
        return None
    instants = landmark_instants(first, last, horizon_months=period.months)
    landmarks = landmark_deals(
        derived.facts.lazy(),
        derived.spans.lazy(),
        opportunities.lazy(),
        instants=instants,
        as_of=derived.as_of,
        funnel=funnel,
    )
    has_close_dates = (
        opportunities["expected_close_date"].is_not_null().any()
        or derived.entries["expected_close_date"].is_not_null().any()
    )
    return ForecastInputs(
        states_at,
        landmarks,
        landmark_cells(landmarks),
        opportunities.select("opportunity_id", *PRICE_KEYS),
        first,
        funnel,
        window_months,
        smoothing_strength,
        min_resolved,
        bool(has_close_dates),
        WonByPeriod(states_at),
        derived.entries.filter(
            pl.col("is_from_history") & pl.col("forecast_category").is_not_null()
        ).select("opportunity_id", "entered_at", "forecast_category"),
        opportunities.select("opportunity_id", "forecast_category"),
    )


def imputed(deals: pl.DataFrame) -> dict[str, Any]:
    """How many open deals were priced at comparable deals' amount, and at what in all."""
    return {
        "imputed_amount_count": int(deals["is_imputed"].sum()),
        "imputed_amount": deals.select(
            stable_sum(pl.col("amount_used").filter(pl.col("is_imputed")))
        ).item(),
    }


def categories_of(inputs: ForecastInputs, period: Period) -> dict[str, Any] | None:
    """`forecast.categories`, its record over the periods after the backtest's origins."""
    return forecast_categories(
        inputs.states_at,
        inputs.category_history,
        inputs.current_categories,
        period=period,
        windows=[
            Window(origin.shifted(1), inputs.window_months)
            for origin in backtest_origins(period, inputs.first)
        ],
    )


def no_forecast(target: float | None = None) -> dict[str, Any]:
    """`forecast`'s keys for an export without a deal created by the period's end."""
    return {
        "next_period": None,
        "method": None,
        "next_period_components": {"open_deals": None, "new_deals": None},
        "learned": None,
        "next_period_by_method": {},
        "imputed_amount_count": 0,
        "imputed_amount": 0.0,
        "new_deals": {"periods": 0, "run_rate": None, "seasonal_factor": 1.0, "mean_count": 0.0},
        "monte_carlo": {
            **monte_carlo(
                np.zeros(0),
                np.array([np.nan]),
                new_deal_count=0,
                new_deal_amounts=np.zeros(0),
                target=None,
            ),
            # the keys of a forecast's range, nothing in them: metrics.json has one shape
            "method": None,
            "target": target,
            "model": None,
            "scale": None,
            "shift": None,
        },
        "backtest": report_card([], [], models=(), learned=(), method=None),
        "categories": None,
    }


def next_period_forecast(
    inputs: ForecastInputs | None, *, period: Period, target: float | None
) -> dict[str, Any]:
    """`forecast.next_period` and what explains it: the method the backtest picks, the value
    of every candidate, the model's two components, its Monte Carlo range (with the chance to
    reach `target`, the next period's), the backtest."""
    if inputs is None:
        return no_forecast(target)
    rows, probability_pairs = backtest_rows(inputs, period=period)
    models, learned = models_of(inputs), learned_methods(models_of(inputs), period.grain)
    method = choose(rows, available_methods(inputs, period.grain))
    card = report_card(rows, probability_pairs, models=models, learned=learned, method=method)
    parts = forecast_parts(inputs, period)
    values, changes = with_learned(parts, rows, following=period.shifted(1), models=models)
    method = usable(method, values)
    change = change_of(method, changes, values)
    now = with_ranges(
        inputs,
        [parts],
        ranges_of=(change.model, LANDMARK),
        target=model_target(target, change),
        spread=card["spread_factor"],
        draws=DRAWS,
    )[0]
    return {
        "next_period": values[method],
        "method": method,
        "next_period_components": {
            "open_deals": now.open_parts[change.model],
            "new_deals": now.new.expected,
        },
        "learned": None
        if method not in changes
        else {"kind": kind_of(method), "scale": change.scale, "shift": change.shift},
        "next_period_by_method": values,
        **imputed(now.deals[change.model]),
        "new_deals": {
            "periods": now.new.periods,
            "run_rate": now.new.mean_amount,
            "seasonal_factor": now.new.seasonal_factor,
            "mean_count": now.new.mean_count,
        },
        "monte_carlo": {
            **changed_range(now.ranges[change.model], change),
            "method": method if method not in MODELS else change.model,
            "target": target,
            # the model's simulated range, mapped to the method's figure: scale × it + shift
            "model": change.model,
            "scale": change.scale,
            "shift": change.shift,
        },
        "backtest": card,
        "categories": categories_of(inputs, period),
    }
