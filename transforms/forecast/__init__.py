"""The next period's forecast: what is won from the deals open now and from the deals not yet
created, by every candidate method, each scored on the past month ends it could have been
made at (the backtest), the one the record picks, and its Monte Carlo range.

The entry point is `next_period_forecast(forecast_inputs(...), period=..., target=...)`
(metrics.json `forecast`, beside the stage-weighted pipeline of `pipeline`). Its parts:
`landmarks` (the deals open at each past month end and what became of them),
`backtest` (the candidates at each origin, their scores and the pick), `monte_carlo` (the
range), `pipeline` (the open pipeline weighted by the stage win probabilities).
"""

from funnel_reports.transforms.forecast.backtest import (
    BASELINES,
    LANDMARK,
    MIN_ORIGINS_TO_CHOOSE,
    ForecastInputs,
    forecast_inputs,
    next_period_forecast,
)
from funnel_reports.transforms.forecast.pipeline import forecast, weighted_open_deals

__all__ = [
    "BASELINES",
    "LANDMARK",
    "MIN_ORIGINS_TO_CHOOSE",
    "ForecastInputs",
    "forecast",
    "forecast_inputs",
    "next_period_forecast",
    "weighted_open_deals",
]
