"""Chart geometry for the inline SVG charts; the SVG itself is drawn by charts.html.j2."""

from __future__ import annotations

from typing import Any

FUNNEL_WIDTH = 640
FUNNEL_BAR_HEIGHT = 30
FUNNEL_GAP = 24
LABEL_WIDTH = 170


def funnel_chart(metrics: dict[str, Any], stage_labels: dict[str, str]) -> dict[str, Any]:
    """Centred bars, one per shown stage up to won, sized by the deals that reached it in W,
    with the cohort conversion to the next shown stage."""
    # each stage's cohort in W; the last stage (won, in a funnel that ends there) has no row
    # of its own, so it is read from the row into it
    cohorts = {row["to"]: row["cohort_size_to"] for row in metrics["conversion"]}
    cohorts |= {row["from"]: row["cohort_size"] for row in metrics["conversion"]}
    steps = {row["from"]: row for row in metrics["observed_funnel"]["conversion"]}
    won = next(s["id"] for s in metrics["stages"] if not s["is_open"])
    stages = [s["id"] for s in metrics["stages"] if s["is_open"] and s["shown"]] + [won]
    reached = [cohorts[s] for s in stages]
    widest = max(reached) or 1
    plot_width = FUNNEL_WIDTH - LABEL_WIDTH - 70
    bars = []
    for i, (stage, n) in enumerate(zip(stages, reached, strict=True)):
        width = max(plot_width * n / widest, 2)
        y = i * (FUNNEL_BAR_HEIGHT + FUNNEL_GAP)
        step = steps.get(stage) if stage != won else None
        bars.append(
            {
                "label": stage_labels[stage],
                "value": n,
                "x": LABEL_WIDTH + (plot_width - width) / 2,
                "y": y,
                "width": width,
                "is_won": stage == won,
                "rate": step["cohort_rate"] if step else None,
                "rate_y": y + FUNNEL_BAR_HEIGHT + FUNNEL_GAP / 2 + 4,
            }
        )
    return {
        "width": FUNNEL_WIDTH,
        "height": len(bars) * (FUNNEL_BAR_HEIGHT + FUNNEL_GAP) - FUNNEL_GAP,
        "bar_height": FUNNEL_BAR_HEIGHT,
        "label_width": LABEL_WIDTH,
        "centre": LABEL_WIDTH + plot_width / 2,
        "value_x": FUNNEL_WIDTH - 60,
        "bars": bars,
    }


def paired_bars(
    rows: list[dict[str, Any]], first: str, second: str, stage_labels: dict[str, str]
) -> dict[str, Any]:
    """Two horizontal bars per stage (for example open amount and weighted amount)."""
    width, label_width, row_height = 640, 170, 40
    largest = max([r[first] or 0 for r in rows] + [r[second] or 0 for r in rows]) or 1
    plot = width - label_width - 110
    return {
        "width": width,
        "height": len(rows) * row_height,
        "label_width": label_width,
        "rows": [
            {
                "label": stage_labels[r["stage"]],
                "y": i * row_height,
                "first": r[first],
                "second": r[second],
                "first_width": plot * (r[first] or 0) / largest,
                "second_width": plot * (r[second] or 0) / largest,
            }
            for i, r in enumerate(rows)
        ],
    }


def range_chart(monte_carlo: dict[str, Any], forecast: float | None) -> dict[str, Any] | None:
    """The Monte Carlo P10–P90 band, the forecast (the report's one number for the next
    period, not the simulation's P50) and the next period's target, on one axis from 0."""
    if monte_carlo["p50"] is None or forecast is None:
        return None
    target = monte_carlo["target"]
    width, left, right = 640, 20, 20
    top = max(monte_carlo["p90"], target or 0.0, forecast) * 1.1 or 1.0

    def x(value: float) -> float:
        return left + (width - left - right) * value / top

    return {
        "width": width,
        "height": 70,
        "axis_x0": x(0),
        "axis_x1": x(top),
        "p10_x": x(monte_carlo["p10"]),
        "point_x": x(forecast),
        "p90_x": x(monte_carlo["p90"]),
        "target_x": x(target) if target else None,
        "p10": monte_carlo["p10"],
        "point": forecast,
        "p90": monte_carlo["p90"],
        "target": target,
    }


def trend_chart(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Won amount per period as columns, the latest period highlighted."""
    width, height, bottom, top = 640, 170, 40, 22
    slot = width / max(len(rows), 1)
    largest = max((r["won_amount"] or 0.0) for r in rows) or 1.0
    columns = []
    for i, row in enumerate(rows):
        bar = (height - bottom - top) * (row["won_amount"] or 0.0) / largest
        columns.append(
            {
                "label": row["label"],
                "won_amount": row["won_amount"],
                "win_rate": row["win_rate"],
                "x": i * slot + slot * 0.2,
                "width": slot * 0.6,
                "y": height - bottom - bar,
                "height": bar,
                "centre": i * slot + slot / 2,
                "is_latest": i == len(rows) - 1,
            }
        )
    return {"width": width, "height": height, "base_y": height - bottom, "columns": columns}


DAY_STEPS = (1, 2, 5, 7, 10, 14, 30, 60, 90, 180, 365)


def dwell_chart(
    dwell: list[dict[str, Any]], stages: list[dict[str, Any]], stage_labels: dict[str, str]
) -> dict[str, Any] | None:
    """Per open stage on one day axis: the middle half of completed visits (p25–p75) with
    the median and a whisker to p90, the Kaplan–Meier median (open deals counted), and the
    stall threshold."""
    stall = {s["id"]: s.get("stall_days") for s in stages}
    ends = [
        value
        for row in dwell
        for value in (row["p90_days"], row["km_median_days"], stall.get(row["stage"]))
        if value is not None
    ]
    if not any(row["completed_visits"] for row in dwell) or not ends:
        return None
    width, label_width, right, row_height, top = 640, 170, 20, 30, 18
    step = next((d for d in DAY_STEPS if max(ends) / d <= 6), DAY_STEPS[-1])
    axis_days = step * (int(max(ends) * 1.05 // step) + 1)

    def x(days: float | None) -> float | None:
        if days is None:
            return None
        return label_width + (width - label_width - right) * min(days, axis_days) / axis_days

    rows = [
        {
            "label": stage_labels[row["stage"]],
            "y": top + i * row_height,
            "has_visits": bool(row["completed_visits"]),
            "p25_x": x(row["p25_days"]),
            "p75_x": x(row["p75_days"]),
            "p90_x": x(row["p90_days"]),
            "median_x": x(row["median_days"]),
            "median": row["median_days"],
            "km_x": x(row["km_median_days"]),
            "stall_x": x(stall.get(row["stage"])),
        }
        for i, row in enumerate(dwell)
    ]
    axis_y = top + len(rows) * row_height
    return {
        "width": width,
        "height": axis_y + 24,
        "label_width": label_width,
        "row_height": row_height,
        "axis_y": axis_y,
        "axis_x1": x(axis_days),
        "ticks": [{"x": x(d), "days": d} for d in range(0, axis_days + 1, step)],
        "rows": rows,
    }


def backtest_chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Per backtest period: the amount actually won as a column, the forecast of the method
    used then as a dot, and its P10–P90 as a whisker, on one axis from 0, with two labelled
    grid lines (half and all of the largest value drawn)."""
    if not rows:
        return None
    width, height, bottom, top = 640, 180, 30, 12
    slot = width / len(rows)
    values = [r["actual"] for r in rows] + [
        v for r in rows for v in (r["forecast"], r["p90"]) if v is not None
    ]
    largest = max(values) * 1.05 or 1.0
    base = height - bottom

    def y(value: float) -> float:
        return base - (base - top) * value / largest

    every = 1 if len(rows) <= 12 else 2
    drawn = largest / 1.05
    return {
        "width": width,
        "height": height,
        "base_y": base,
        "ticks": [{"y": y(value), "value": value} for value in (drawn / 2, drawn)],
        "columns": [
            {
                "label": r["period"] if (len(rows) - 1 - i) % every == 0 else "",
                "x": i * slot + slot * 0.2,
                "width": slot * 0.6,
                "centre": i * slot + slot / 2,
                "actual_y": y(r["actual"]),
                "forecast_y": None if r["forecast"] is None else y(r["forecast"]),
                "p10_y": None if r["p10"] is None else y(r["p10"]),
                "p90_y": None if r["p90"] is None else y(r["p90"]),
            }
            for i, r in enumerate(rows)
        ],
    }


WATERFALL_WIDTH, WATERFALL_BASE, WATERFALL_TOP = 640, 124, 22
WATERFALL_COLOURS = {
    "open_start": "#1d4ed8",
    "created": "#60a5fa",
    "increased": "#93c5fd",
    "decreased": "#f59e0b",
    "won": "#059669",
    "lost": "#dc2626",
    "open_end": "#1d4ed8",
}


def waterfall_chart(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """One column per step of the pipeline's bridge, on one axis from 0: the open pipeline at
    the start and at the end standing on the axis, each step between them floating from the
    running total, up for what came in and down for what left. A step the export does not
    record (amount None) keeps its slot, empty, so that its label can say so."""
    running, spans = 0.0, []
    for step in steps:
        amount = step["amount"] or 0.0
        if step["kind"] == "total":
            low, high, running = 0.0, amount, amount
        elif step["kind"] == "in":
            low, high, running = running, running + amount, running + amount
        else:
            low, high, running = running - amount, running, running - amount
        spans.append((low, high))
    top = max((high for _, high in spans), default=0.0) or 1.0
    scale = (WATERFALL_BASE - WATERFALL_TOP) / top
    slot = WATERFALL_WIDTH / max(len(steps), 1)
    columns = []
    for i, (step, (low, high)) in enumerate(zip(steps, spans, strict=True)):
        y = WATERFALL_BASE - high * scale
        columns.append(
            {
                **step,
                "x": i * slot + slot * 0.2,
                "width": slot * 0.6,
                "y": y,
                "height": (high - low) * scale,
                "centre": i * slot + slot / 2,
                "colour": WATERFALL_COLOURS[step["key"]],
            }
        )
    return {
        "width": WATERFALL_WIDTH,
        "height": WATERFALL_BASE + 34,
        "base_y": WATERFALL_BASE,
        "columns": columns,
    }
