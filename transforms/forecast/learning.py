"""What the backtest teaches a forecast (issue 26): the candidates made from the model's and
the baselines' forecasts by the record of their past ones.

At an origin T the rows of the earlier origins are known whole (each one's following period
ended by T), so everything here reads only them:

- **Corrected** (`landmark_corrected`, `landmark_close_date_corrected`): the model's forecast
  times its shrunk ratio of actual to forecast over the n earlier rows, `1 + (ΣA / ΣF − 1) ·
  n / (n + 1)`: a method that was persistently off by the same share is put right by it,
  and one origin weighs as much as the assumption that it is right (shrinking harder, 3,
  left a real export's forecasts 26 % short after five origins; the forecast benchmark
  compared 1, 2 and 3).
- **Seasonal** (`landmark_<season>`, `mean_last_3_<season>`): the same ratio, over the earlier
  rows whose period holds the same place in the season as the one forecast (month in
  quarter: quarter-end pushes; month of year; quarter of year for quarters), shrunk toward
  the method's overall ratio (the model) or toward 1 (the mean of the last three).
- **Blend** (`blend`): the mean of the corrected model and the mean of the last three. It
  is the default the pick keeps unless another method did clearly better
  (`backtest.choose`): averaging two forecasts that err differently beat every single one
  on most exports of the benchmark, while picking among near-equals chased each month's luck.

Each is a linear change of a model's forecast (`Learned`: scale and shift), so its Monte Carlo
range is the model's range changed the same way (the seasonal mean's and the blend's: the
landmark model's range scaled to them, so that they keep its relative spread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from funnel_reports.transforms.periods import Period

LANDMARK, LANDMARK_CLOSE_DATE = "landmark", "landmark_close_date"
MEAN_LAST_3 = "mean_last_3"
BLEND = "blend"
# origins that weigh as much as the assumption that a method is right (ratio 1) or that a
# season is like the rest (the overall ratio); see the module's docstring
RATIO_SHRINK_ORIGINS = 1.0
# the places of a period in the seasons people have, by the grain of the periods forecast
SEASONS = {"month": ("month_in_quarter", "month_of_year"), "quarter": ("quarter_of_year",)}


def corrected(model: str) -> str:
    return f"{model}_corrected"


def seasonal(method: str, season: str) -> str:
    return f"{method}_{season}"


# how a learned candidate makes its figure (metrics.json `forecast.learned.kind`)
SCALED, SEASONAL_MEAN = "scaled", "seasonal_mean"


def kind_of(method: str) -> str:
    """`method`'s kind: the model scaled by a ratio of its record (`scaled`: the corrected
    models and the model's seasonal variants), the mean of the last three scaled by its
    season (`seasonal_mean`), or the blend."""
    if method == BLEND:
        return BLEND
    return SEASONAL_MEAN if method.startswith(f"{MEAN_LAST_3}_") else SCALED


def learned_methods(models: Sequence[str], grain: str) -> tuple[str, ...]:
    """The learned candidates of an export with `models` (the landmark methods it has), for
    periods of `grain`, in the report card's order."""
    return (
        *(corrected(model) for model in models),
        *(seasonal(LANDMARK, season) for season in SEASONS[grain]),
        *(seasonal(MEAN_LAST_3, season) for season in SEASONS[grain]),
        BLEND,
    )


def place_in(period: Period, season: str) -> int:
    """Where `period` lies in `season`: its month in the quarter (0–2), its month of the year
    (0–11) or its quarter of the year (0–3)."""
    month = period.start_date.month - 1
    return {"month_in_quarter": month % 3, "month_of_year": month, "quarter_of_year": month // 3}[
        season
    ]


def ratio(rows: Sequence[dict[str, Any]], method: str, *, toward: float) -> float:
    """The shrunk ratio of actual to forecast of `method` over `rows`: toward `toward` by
    RATIO_SHRINK_ORIGINS rows; `toward` itself without a row it forecast above 0."""
    pairs = [(r["forecasts"].get(method), r["actual"]) for r in rows]
    pairs = [(f, a) for f, a in pairs if f is not None]
    forecast = sum(f for f, _ in pairs)
    if not pairs or forecast <= 0:
        return toward
    raw = sum(a for _, a in pairs) / forecast
    return toward + (raw - toward) * len(pairs) / (len(pairs) + RATIO_SHRINK_ORIGINS)


@dataclass(frozen=True)
class Learned:
    """A learned candidate as a change of a landmark model's forecast: scale × it + shift."""

    model: str
    scale: float
    shift: float

    def of(self, value: float | None) -> float | None:
        """The candidate's forecast from the model's `value` (needed unless scale is 0)."""
        if not self.scale:
            return self.shift
        return None if value is None else self.scale * value + self.shift


def scaled_to(value: float, model_value: float | None) -> Learned:
    """`value` as a change of the landmark model's forecast: its range scaled to `value`
    (the model's relative spread), or, when the model forecasts nothing, `value` alone."""
    if model_value:
        return Learned(LANDMARK, value / model_value, 0.0)
    return Learned(LANDMARK, 0.0, value)


def learned_candidates(
    values: dict[str, float | None],
    rows: Sequence[dict[str, Any]],
    *,
    following: Period,
    models: Sequence[str],
) -> dict[str, Learned | None]:
    """Each learned candidate of the forecast of `following` (`values`: every other
    candidate's), from the earlier backtest `rows`; None where its base forecast is unknown."""
    mean, landmark = values.get(MEAN_LAST_3), values.get(LANDMARK)
    overall = {model: ratio(rows, model, toward=1.0) for model in models}
    learned: dict[str, Learned | None] = {
        corrected(model): Learned(model, overall[model], 0.0) for model in models
    }
    for season in SEASONS[following.grain]:
        place = place_in(following, season)
        alike = [r for r in rows if place_in(r["following"], season) == place]
        learned[seasonal(LANDMARK, season)] = Learned(
            LANDMARK, ratio(alike, LANDMARK, toward=overall[LANDMARK]), 0.0
        )
        learned[seasonal(MEAN_LAST_3, season)] = (
            None
            if mean is None
            else scaled_to(mean * ratio(alike, MEAN_LAST_3, toward=1.0), landmark)
        )
    learned[BLEND] = (
        None
        if mean is None or landmark is None
        else scaled_to((overall[LANDMARK] * landmark + mean) / 2, landmark)
    )
    return {
        method: None
        if change is None or (change.scale and values.get(change.model) is None)
        else change
        for method, change in learned.items()
    }
