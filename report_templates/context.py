"""What the report shows: one view model per section, built from metrics.json.

`report_views` builds every section's view model once; the templates, the summary sentences
(`report_templates.narrative`) and the mail (`report_templates.mail`) read only these, never
the document itself. Rows arrive joined, sorted and labelled in the report's language; the
templates only loop and format. Chart geometry comes from `report_templates.charts`.
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
    waterfall_chart,
)
from funnel_reports.report_templates.formatting import TEMPLATES_DIR
from funnel_reports.report_templates.narrative import (
    HEADLINE_FIGURES,
    Money,
    bottleneck_sentence,
    data_as_of_sentence,
    data_is_old,
    expected_sentence,
    folded_note,
    forecast_method_sentence,
    forecast_parts_sentence,
    kpi_tiles,
    learned_sentence,
    method_name,
    null_word_notes,
    source_line,
    source_notes,
    summary_sentences,
    table_name,
    unknown_stage_notes,
)
from funnel_reports.transforms.forecast import LANDMARK, MIN_ORIGINS_TO_CHOOSE
from funnel_reports.transforms.forecast.backtest import MODELS
from funnel_reports.transforms.forecast.learning import BLEND, SEASONS, corrected, learned_methods
from funnel_reports.transforms.funnel_model import COMPANY, FunnelModel, MetricsSettings
from funnel_reports.transforms.metrics_document import NEVER_ENTERED

SEGMENT_ROWS = 6


def report_text(lang: str) -> dict[str, str]:
    """The report's labels in `lang`, with the language itself under `_lang`."""
    return {**fmt.labels(lang), "_lang": lang}


def shown_labels(metrics: dict[str, Any], funnel: FunnelModel, lang: str) -> dict[str, str]:
    """The label of each stage the report shows (a stage folded out of the funnel has none)."""
    shown = {s["id"] for s in metrics["stages"] if s["shown"]}
    return {s.id: s.label(lang) for s in funnel.stages if s.id in shown}


def step_label(labels: dict[str, str], a: str, b: str) -> str:
    return f"{labels[a]} → {labels[b]}"


def labelled(rows: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    """Rows keyed by `stage` of the stages the report shows, with the stage's label."""
    return [{**row, "label": labels[row["stage"]]} for row in rows if row["stage"] in labels]


def unmeasurable(metrics: dict[str, Any]) -> set[str]:
    """The figures the export cannot give (`not_measurable`)."""
    return {f["figure"] for f in metrics["not_measurable"]}


def report_name(metrics: dict[str, Any], text: dict[str, str]) -> str | None:
    """The title of a report of the report set (its name when it has none, the company's in
    the report's language); None for the plain report."""
    report = metrics.get("report")
    if report is None:
        return None
    return report["title"] or (
        text["company_report"] if report["name"] == COMPANY else report["name"]
    )


def header_view(metrics: dict[str, Any], text: dict[str, str]) -> dict[str, Any]:
    """The report's frame: its name, period, currency, window and how fresh its data is."""
    return {
        "kind": text["quarterly" if metrics["period"]["grain"] == "quarter" else "monthly"],
        "report_name": report_name(metrics, text),
        "period": metrics["period"],
        "currency": metrics["currency"],
        "window_months": metrics["window"]["months"],
        "data_as_of": data_as_of_sentence(metrics.get("data_as_of"), text=text),
        "is_stale": data_is_old(metrics.get("data_as_of")),
    }


def comparison_view(metrics: dict[str, Any], text: dict[str, str]) -> dict[str, Any]:
    """This period's headline figures beside the previous period's and a year ago's: each
    other period with its label, figures and changes, and one row per headline figure."""
    kpis, comparison = metrics["kpis"], metrics["comparison"]
    others = {
        key: {
            "label": comparison[key]["period"]["label"],
            "kpis": comparison[key]["kpis"],
            "change": comparison[key]["change"],
        }
        for key in ("previous", "year_ago")
    }
    return {
        "label": metrics["period"]["label"],
        "kpis": kpis,
        **others,
        "rows": [
            {
                "title": text[title],
                "kind": kind,
                "current": kpis[key],
                "others": [(others[o]["kpis"][key], others[o]["change"][key]) for o in others],
            }
            for key, title, kind in HEADLINE_FIGURES
        ],
        "months": metrics.get("months"),
    }


def conversion_rows(metrics: dict[str, Any], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The conversion between the stages the report shows, each row saying whether it rests
    on stages no deal was seen in (`inferred`), measures a stage no deal ever entered, or
    leaves an open stage."""
    never_entered = {f["figure"] for f in metrics["not_measurable"] if f["reason"] == NEVER_ENTERED}
    open_ids = {s["id"] for s in metrics["stages"] if s["is_open"]}
    return [
        {
            **row,
            "label": step_label(labels, row["from"], row["to"]),
            "from_label": labels[row["from"]],
            "to_label": labels[row["to"]],
            "from_is_open": row["from"] in open_ids,
            "never_entered": f"conversion.{row['from']}.{row['to']}" in never_entered,
        }
        for row in metrics["observed_funnel"]["conversion"]
    ]


def funnel_view(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str], funnel: FunnelModel
) -> dict[str, Any]:
    """The funnel chart and the conversion between the shown stages."""
    conversion = conversion_rows(metrics, labels)
    return {
        "chart": funnel_chart(metrics, labels),
        "folded_note": folded_note(metrics["observed_funnel"]["folded"], funnel, text=text),
        "conversion": conversion,
        "has_inferred": any(row["inferred"] and not row["never_entered"] for row in conversion),
    }


def bottlenecks_view(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
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
    rows = [
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
    return {
        "history_available": metrics["history_available"],
        "rows": rows,
        "called_out": [row["sentence"] for row in rows if row["sentence"]],
    }


def dwell_view(metrics: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """Time in each shown stage, and its chart."""
    rows = labelled(metrics["dwell"], labels)
    return {
        "history_available": metrics["history_available"],
        "rows": rows,
        "chart": dwell_chart(rows, metrics["stages"], labels),
    }


def method_rows(forecast: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """The backtest's scores per method, the method used first, then as the card lists them;
    the parts, the seasonal variants and the corrected close-date model (metrics.json has
    them all) only when used."""
    card = forecast["backtest"]
    shown_learned = {corrected(LANDMARK), BLEND}
    details = {"open_deals", "new_deals"} | {
        method
        for grain in SEASONS
        for method in learned_methods(MODELS, grain)
        if method not in shown_learned
    }
    rows = [
        {
            **row,
            "label": method_name(row["method"], text),
            "is_chosen": row["method"] == forecast["method"],
        }
        for row in card["candidates"] + card["baselines"]
        if row["method"] == forecast["method"] or row["method"] not in details
    ]
    return sorted(rows, key=lambda row: not row["is_chosen"])


# what the forecast section shows of metrics.json's `forecast` as it is
FORECAST_KEYS = (
    "method",
    "next_period",
    "next_period_label",
    "next_period_components",
    "new_deals",
    "weighted_pipeline",
    "monte_carlo",
    "backtest",
    "imputed_amount_count",
    "imputed_amount",
    "learned",
    "next_period_by_method",
    "unpriced_count",
    "p_bar",
    "rates_from",
    "resolved_in_window",
)


def forecast_view(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """The next period's forecast, the stage-weighted pipeline, the range and the method's
    record: the forecast section with its rows, charts and sentences (said of the view)."""
    forecast, kpis = metrics["forecast"], metrics["kpis"]
    probabilities = {p["stage"]: p for p in forecast["stage_probabilities"]}
    by_stage = labelled(forecast["by_stage"], labels)
    view = {
        **{key: forecast[key] for key in FORECAST_KEYS},
        "open_count": kpis["open_count"],
        "open_amount": kpis["open_amount"],
        "rows": [{**row, **probabilities[row["stage"]]} for row in by_stage],
        "method_rows": method_rows(forecast, text),
        "min_origins": MIN_ORIGINS_TO_CHOOSE,
        "chart": paired_bars(by_stage, "open_amount", "weighted_amount", labels),
        "range_chart": range_chart(forecast["monte_carlo"], forecast["next_period"]),
        "backtest_chart": backtest_chart(forecast["backtest"]["periods"]),
    }
    money = Money.of(metrics["currency"], text)
    categories = forecast["categories"]
    view["categories"] = (
        None
        if categories is None
        else categories_view(categories, forecast, text=text, money=money)
    )
    return view | {
        "method_sentence": forecast_method_sentence(view, text=text),
        "parts_sentence": forecast_parts_sentence(view, text=text, money=money),
        "learned_sentence": learned_sentence(view, text=text, money=money),
        "imputed_sentence": text["imputed_amounts"].format(
            count=fmt.count(forecast["imputed_amount_count"]),
            amount=money(forecast["imputed_amount"]),
        )
        if forecast["imputed_amount_count"]
        else None,
    }


def categories_view(
    categories: dict[str, Any], forecast: dict[str, Any], *, text: dict[str, str], money: Money
) -> dict[str, Any]:
    """The CRM's forecast categories: the roll-up sentence beside the model's number, the
    overdue deals, and per category its deals expected next period with its record."""
    record = {row["category"]: row for row in categories["record"] or []}
    return {
        "sentence": text["category_rollup"].format(
            label=forecast["next_period_label"],
            commit=money(categories["commit_amount"]),
            best_case=money(categories["best_case_amount"]),
            pipeline=money(categories["pipeline_amount"]),
            forecast=money(forecast["next_period"]),
        ),
        "overdue": text["category_overdue"].format(
            count=fmt.count(categories["overdue_count"]),
            amount=money(categories["overdue_amount"]),
        )
        if categories["overdue_count"]
        else None,
        "rows": [
            {
                **row,
                "label": text[f"category_{row['category']}"],
                "record": record.get(row["category"]),
            }
            for row in categories["rows"]
        ],
        "has_record": categories["record"] is not None,
    }


# the steps of the pipeline's bridge, in the waterfall's order, and how each moves the total
MOVEMENT_STEPS = (
    ("open_start", "total"),
    ("created", "in"),
    ("increased", "in"),
    ("decreased", "out"),
    ("won", "out"),
    ("lost", "out"),
    ("open_end", "total"),
)


def movement_view(
    metrics: dict[str, Any], text: dict[str, str], labels: dict[str, str]
) -> dict[str, Any]:
    """The bridge from the open pipeline at the period's start to its end (a step each, with
    its waterfall chart) and the deals expected to close in the period, with the largest that
    slipped."""
    movement = metrics["pipeline_movement"]
    steps = [
        {
            "key": key,
            "kind": kind,
            "label": text[f"movement_{key}"],
            "count": movement[f"{key}_count"],
            "amount": movement[f"{key}_amount"],
        }
        for key, kind in MOVEMENT_STEPS
    ]
    expected, money = movement["expected"], Money.of(metrics["currency"], text)
    period = metrics["period"]["label"]
    return {
        "steps": steps,
        "chart": waterfall_chart(steps),
        "closed_inside": movement["created_and_closed"],
        "amounts_recorded": movement["increased_amount"] is not None,
        "slipped": [
            {**row, "label": labels.get(row["stage"], row["stage"])}
            for row in (expected["slipped"] if expected else [])
        ],
        "expected_sentence": expected_sentence(expected, period=period, text=text, money=money),
    }


def targets_view(metrics: dict[str, Any], labels: dict[str, str]) -> dict[str, Any] | None:
    """What the period's target asks of the funnel; None without a target."""
    targets = metrics["targets"]
    if not targets:
        return None
    return {
        **{key: value for key, value in targets.items() if key != "stages"},
        "weighted_pipeline": metrics["forecast"]["weighted_pipeline"],
        "rows": labelled(targets["stages"], labels),
    }


def stalls_view(
    metrics: dict[str, Any], labels: dict[str, str], text: dict[str, str]
) -> dict[str, Any]:
    """Stalled deals: the counts, the reasons, the owners and the longest stalled; whether
    any stage has a stall limit (`stall_days`) at all, and the note saying the limits."""
    stalls = metrics["stalls"]
    stall_days = sorted({s["stall_days"] for s in metrics["stages"] if s["stall_days"]})
    return {
        **{key: value for key, value in stalls.items() if key != "deals"},
        "reasons_recorded": "stalls.compliance_rate" not in unmeasurable(metrics),
        "has_limits": bool(stall_days),
        "note": text["stalls_note"].format(days="/".join(str(d) for d in stall_days))
        if stall_days
        else text["stalls_no_limits"],
        "deals": labelled(stalls["deals"], labels),
    }


def segments_view(metrics: dict[str, Any], text: dict[str, str]) -> dict[str, Any]:
    """Each segment dimension with its title and its first SEGMENT_ROWS values."""
    return {
        "tables": [
            {"title": text[f"segment_{dimension}"], "rows": rows[:SEGMENT_ROWS]}
            for dimension, rows in metrics["segments"].items()
        ],
        "rows_shown": SEGMENT_ROWS,
    }


def followups_view(metrics: dict[str, Any], text: dict[str, str]) -> dict[str, Any]:
    """How open deals are worked, and how won and lost deals were."""
    followups, missing = metrics["followups"], unmeasurable(metrics)
    return {
        **followups,
        "recorded": "followups.touches_in_period" not in missing,
        "due_dates_recorded": "followups.overdue_next_actions" not in missing,
        "channel_mix": [
            {**row, "label": text[f"channel_{row['channel']}"]} for row in followups["channel_mix"]
        ],
        "won_vs_lost": [
            {**row, "label": text[f"outcome_{row['state']}"]} for row in followups["won_vs_lost"]
        ],
    }


def quality_rows(metrics: dict[str, Any], part: str, text: dict[str, str]) -> list[dict[str, Any]]:
    """The quarantine reasons (`part` = "reasons") or notes of every table, with the table's
    name."""
    return [
        {"table": table_name(table, text), **row}
        for table, quality in metrics["data_quality"].items()
        for row in quality[part]
    ]


def quality_view(
    metrics: dict[str, Any], text: dict[str, str], input_files: list[dict[str, Any]]
) -> dict[str, Any]:
    """The appendix: the quarantine, the notes on the data, the input files and sources."""
    tables, source = metrics["data_quality"], metrics["source"]
    return {
        "tables": {table_name(name, text): entry for name, entry in tables.items()},
        "quarantine_reasons": quality_rows(metrics, "reasons", text),
        "notes": quality_rows(metrics, "notes", text),
        "null_word_notes": null_word_notes(tables, text=text),
        "point_in_time": [
            text[f"pit_{note['note']}"].format(count=note["count"])
            for note in metrics["point_in_time"]
        ],
        "input_files": [{**f, "table": table_name(f["table"], text)} for f in input_files],
        "source_line": source_line(source, text=text),
        "source_notes": source_notes(source, text=text) + unknown_stage_notes(tables, text=text),
    }


def report_views(
    metrics: dict[str, Any], *, lang: str, funnel: FunnelModel, input_files: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every section's view model, each built once from the document; the summary (its
    tiles and sentences) is built from the others."""
    text, labels = report_text(lang), shown_labels(metrics, funnel, lang)
    views = {
        "header": header_view(metrics, text),
        "comparison": comparison_view(metrics, text),
        "movement": movement_view(metrics, text, labels),
        "trend": {"periods": len(metrics["trend"]), "chart": trend_chart(metrics["trend"])},
        "funnel": funnel_view(metrics, text, labels, funnel),
        "bottlenecks": bottlenecks_view(metrics, text, labels),
        "forecast": forecast_view(metrics, text, labels),
        "targets": targets_view(metrics, labels),
        "dwell": dwell_view(metrics, labels),
        "stalls": stalls_view(metrics, labels, text),
        "segments": segments_view(metrics, text),
        "followups": followups_view(metrics, text),
        "quality": quality_view(metrics, text, input_files),
    }
    views["summary"] = {
        "tiles": kpi_tiles(views, text=text),
        "sentences": summary_sentences(views, text=text),
    }
    return views


def report_context(
    metrics: dict[str, Any],
    *,
    input_files: list[dict[str, Any]],
    lang: str,
    settings: MetricsSettings,
) -> dict[str, Any]:
    """Everything the report's template shows: the section views, the labels, and the
    settings the notes quote (thresholds are values, never retyped in the labels)."""
    return {
        **report_views(metrics, lang=lang, funnel=settings.funnel, input_files=input_files),
        "t": report_text(lang),
        "lang": lang,
        "thresholds": {
            "immature": fmt.percent(settings.immature_open_share),
            "min_resolved": settings.min_resolved_for_p_win,
        },
        "css": (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8"),
        "phone_css": (TEMPLATES_DIR / "phone.css").read_text(encoding="utf-8"),
    }
