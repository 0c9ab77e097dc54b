"""What the report shows: one view model per section, built from metrics.json.

Rows arrive joined, sorted and labelled in the report's language; the templates only loop
and format. Sentences come from `report_templates.narrative`, chart geometry from
`report_templates.charts`.
"""

from __future__ import annotations

from typing import Any

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.charts import (
    backtest_chart,
    dwell_chart,
    funnel_chart,
    paired_bars,
    range_chart,
    trend_chart,
)
from funnel_reports.report_templates.formatting import TEMPLATES_DIR
from funnel_reports.report_templates.narrative import (
    Money,
    bottleneck_sentence,
    change_phrase,
    data_as_of_sentence,
    data_is_old,
    folded_note,
    forecast_method_sentence,
    forecast_parts_sentence,
    method_name,
    null_word_notes,
    source_notes,
    summary_sentences,
    unknown_stage_notes,
)
from funnel_reports.transforms.forecast import MIN_ORIGINS_TO_CHOOSE
from funnel_reports.transforms.funnel_model import COMPANY, FunnelModel
from funnel_reports.transforms.metrics_document import NEVER_ENTERED

SEGMENT_ROWS = 8

# the headline figures: metrics key, label key, kind (how it formats); the comparison table
# shows them all, the summary tiles the ones in TILE_FIGURES
HEADLINE_FIGURES = (
    ("won_count", "won_deals", "count"),
    ("won_amount", "won_amount", "amount"),
    ("lost_count", "lost_deals", "count"),
    ("win_rate", "win_rate", "rate"),
    ("avg_won_amount", "avg_won", "amount"),
    ("median_cycle_days", "cycle_days", "days"),
    ("open_count", "open_deals", "count"),
    ("open_amount", "open_pipeline", "amount"),
    ("pipeline_velocity", "velocity", "amount"),
)
TILE_FIGURES = ("won_amount", "won_count", "win_rate", "open_amount")


def direction(delta: float | None) -> str | None:
    if delta is None:
        return None
    return "up" if delta > 0 else "down" if delta < 0 else "flat"


def kpi_tiles(metrics: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """The headline figures at the top of the summary, each with its change."""
    kpis, previous = metrics["kpis"], metrics["comparison"]["previous"]
    label, lang = previous["period"]["label"], text["_lang"]
    kinds = {key: kind for key, _, kind in HEADLINE_FIGURES}
    titles = {key: title for key, title, _ in HEADLINE_FIGURES}
    tiles = []
    for key in TILE_FIGURES:
        kind = kinds[key]
        current, before = kpis[key], previous["kpis"][key]
        value = fmt.compact_amount(current, lang) if kind == "amount" else fmt.figure(current, kind)
        tiles.append(
            {
                "title": text[titles[key]],
                "value": value,
                "change": change_phrase(current, before, label=label, kind=kind, text=text),
                "direction": direction(previous["change"][key]),
            }
        )
    forecast, stalls = metrics["forecast"], metrics["stalls"]
    tiles.append(
        {
            "title": text["next_period_forecast"].format(label=forecast["next_period_label"]),
            "value": fmt.compact_amount(forecast["next_period"], lang),
            "change": text["weighted_value"].format(
                value=fmt.compact_amount(forecast["weighted_pipeline"], lang)
            ),
            "direction": None,
        }
    )
    tiles.append(
        {
            "title": text["stalled_deals"],
            "value": fmt.count(stalls["stalled_count"]),
            "change": f"{text['compliance']}: "
            + (
                text["not_recorded"]
                if "stalls.compliance_rate" in {f["figure"] for f in metrics["not_measurable"]}
                else fmt.percent(stalls["compliance_rate"])
            ),
            "direction": None,
        }
    )
    return tiles


def comparison_rows(metrics: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """One row per headline figure: this period, the previous one and a year ago, with the
    changes."""
    kpis, comparison = metrics["kpis"], metrics["comparison"]
    return [
        {
            "title": text[title],
            "kind": kind,
            "current": kpis[key],
            "others": [
                (comparison[other]["kpis"][key], comparison[other]["change"][key])
                for other in ("previous", "year_ago")
            ],
        }
        for key, title, kind in HEADLINE_FIGURES
    ]


def step_label(labels: dict[str, str], a: str, b: str) -> str:
    return f"{labels[a]} → {labels[b]}"


def forecast_rows(metrics: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The open pipeline per shown stage joined with the stage's win probability."""
    probabilities = {p["stage"]: p for p in metrics["forecast"]["stage_probabilities"]}
    return [
        {**row, **probabilities[row["stage"]], "label": labels[row["stage"]]}
        for row in metrics["forecast"]["by_stage"]
        if row["stage"] in labels
    ]


def method_rows(forecast: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """The backtest's scores per method, the method used first, then as the card lists them."""
    card = forecast["backtest"]
    rows = [
        {
            **row,
            "label": method_name(row["method"], text),
            "is_chosen": row["method"] == forecast["method"],
        }
        for row in card["candidates"] + card["baselines"]
    ]
    return sorted(rows, key=lambda row: not row["is_chosen"])


def bottleneck_rows(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> list[dict[str, Any]]:
    """Each step out of a shown stage with its label and, when called out, its sentence. A
    step counts deals leaving its stage forward or lost: it leads to the next shown stage."""
    order = [s["id"] for s in metrics["stages"]]
    steps = [
        {
            **row,
            "next_stage": next(s for s in order[order.index(row["stage"]) + 1 :] if s in labels),
        }
        for row in metrics["bottlenecks"]
        if row["stage"] in labels
    ]
    return [
        {
            **row,
            "label": step_label(labels, row["stage"], row["next_stage"]),
            "sentence": bottleneck_sentence(
                row,
                text=text,
                stage_labels=labels,
                period=metrics["period"]["label"],
                currency=metrics["currency"],
            ),
        }
        for row in steps
    ]


def labelled(rows: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    """Rows keyed by `stage` of the stages the report shows, with the stage's label (a stage
    folded out of the funnel has no label)."""
    return [{**row, "label": labels[row["stage"]]} for row in rows if row["stage"] in labels]


def conversion_rows(metrics: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The conversion between the stages the report shows, each row saying whether it rests
    on stages no deal was seen in (`inferred`) or measures a stage no deal ever entered."""
    never_entered = {f["figure"] for f in metrics["not_measurable"] if f["reason"] == NEVER_ENTERED}
    return [
        {
            **row,
            "label": step_label(labels, row["from"], row["to"]),
            "never_entered": f"conversion.{row['from']}.{row['to']}" in never_entered,
        }
        for row in metrics["observed_funnel"]["conversion"]
    ]


def segment_tables(metrics: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """Each segment dimension with its title and its first SEGMENT_ROWS values."""
    return [
        {"title": text[f"segment_{dimension}"], "rows": rows[:SEGMENT_ROWS]}
        for dimension, rows in metrics["segments"].items()
    ]


def quality_rows(metrics: dict[str, Any], part: str) -> list[dict[str, Any]]:
    """The quarantine reasons (`part` = "reasons") or notes of every table, with the table."""
    return [
        {"table": table, **row}
        for table, quality in metrics["data_quality"].items()
        for row in quality[part]
    ]


def report_name(metrics: dict[str, Any], text: dict[str, str]) -> str | None:
    """The title of a report of the report set (its name when it has none, the company's in
    the report's language); None for the plain report."""
    report = metrics.get("report")
    if report is None:
        return None
    return report["title"] or (
        text["company_report"] if report["name"] == COMPANY else report["name"]
    )


def report_context(
    metrics: dict[str, Any], *, input_files: list[dict[str, Any]], lang: str, funnel: FunnelModel
) -> dict[str, Any]:
    """Everything the templates show, already computed, joined and sorted: the summary, the
    funnel and its steps, the forecast, the activity and the data's quality, each a part of
    its own."""
    text = {**fmt.labels(lang), "_lang": lang}
    shown = {s["id"] for s in metrics["stages"] if s["shown"]}
    labels = {s.id: s.label(lang) for s in funnel.stages if s.id in shown}
    return {
        "m": metrics,
        "t": text,
        "lang": lang,
        "summary": summary_sentences(metrics, text=text, stage_labels=labels),
        "tiles": kpi_tiles(metrics, text),
        "data_as_of": data_as_of_sentence(metrics, text=text),
        "is_stale": data_is_old(metrics),
        "kind": text["quarterly" if metrics["period"]["grain"] == "quarter" else "monthly"],
        "report_name": report_name(metrics, text),
        **funnel_part(metrics, text, labels, funnel),
        **forecast_part(metrics, text, labels),
        **activity_part(metrics, text, labels),
        **quality_part(metrics, text, input_files),
        "css": (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8"),
    }


def funnel_part(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str], funnel: FunnelModel
) -> dict[str, Any]:
    """The funnel, its conversion and bottlenecks, dwell times and the trend."""
    stall_days = sorted({s["stall_days"] for s in metrics["stages"] if s["stall_days"]})
    bottlenecks = bottleneck_rows(metrics, text, labels)
    return {
        "stall_days": "/".join(str(d) for d in stall_days) or "–",
        "conversion": conversion_rows(metrics, labels),
        "folded_note": folded_note(metrics["observed_funnel"]["folded"], funnel, text=text),
        "bottlenecks": bottlenecks,
        "called_out": [row["sentence"] for row in bottlenecks if row["sentence"]],
        "dwell": labelled(metrics["dwell"], labels),
        "comparison": comparison_rows(metrics, text),
        "funnel_chart": funnel_chart(metrics, labels),
        "trend_chart": trend_chart(metrics["trend"]),
        "dwell_chart": dwell_chart(labelled(metrics["dwell"], labels), metrics["stages"], labels),
    }


def forecast_part(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """The forecast, its method and record, and the target's decomposition."""
    forecast, targets = metrics["forecast"], metrics["targets"]
    return {
        "forecast_rows": forecast_rows(metrics, labels),
        "method_sentence": forecast_method_sentence(forecast, text=text),
        "parts_sentence": forecast_parts_sentence(
            forecast, text=text, money=Money.of(metrics, text)
        ),
        "method_rows": method_rows(forecast, text),
        "min_origins": MIN_ORIGINS_TO_CHOOSE,
        "backtest_chart": backtest_chart(forecast["backtest"]["periods"]),
        "target_rows": labelled(targets["stages"], labels) if targets else [],
        "forecast_chart": paired_bars(
            labelled(forecast["by_stage"], labels), "open_amount", "weighted_amount", labels
        ),
        "range_chart": range_chart(forecast["monte_carlo"], targets["target"] if targets else None),
    }


def activity_part(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """Stalled deals, follow-ups, segments, and what the export records of them."""
    unmeasurable = {f["figure"] for f in metrics["not_measurable"]}
    return {
        "stall_reasons_recorded": "stalls.compliance_rate" not in unmeasurable,
        "followups_recorded": "followups.touches_in_period" not in unmeasurable,
        "due_dates_recorded": "followups.overdue_next_actions" not in unmeasurable,
        "stalled_deals": labelled(metrics["stalls"]["deals"], labels),
        "segments": segment_tables(metrics, text),
        "segment_rows": SEGMENT_ROWS,
        "channel_mix": [
            {**row, "label": text[f"channel_{row['channel']}"]}
            for row in metrics["followups"]["channel_mix"]
        ],
        "won_vs_lost": [
            {**row, "label": text[f"outcome_{row['state']}"]}
            for row in metrics["followups"]["won_vs_lost"]
        ],
    }


def quality_part(
    metrics: dict[str, Any], text: dict[str, str], input_files: list[dict[str, Any]]
) -> dict[str, Any]:
    """The appendix: the quarantine, the notes on the data, the input files and sources."""
    return {
        "quarantine_reasons": quality_rows(metrics, "reasons"),
        "quality_notes": quality_rows(metrics, "notes"),
        "null_word_notes": null_word_notes(metrics["data_quality"], text=text),
        "point_in_time": [
            text[f"pit_{note['note']}"].format(count=note["count"])
            for note in metrics["point_in_time"]
        ],
        "input_files": input_files,
        "source_notes": source_notes(metrics["source"], text=text)
        + unknown_stage_notes(metrics["data_quality"], text=text),
    }
