"""What the report says in sentences: the executive summary (three to five plain sentences
chosen from the section views of `context.report_views`), the forecast's, the bottlenecks' and
the notes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.transforms.forecast import BASELINES, LANDMARK, MIN_ORIGINS_TO_CHOOSE
from funnel_reports.transforms.forecast.learning import (
    BLEND,
    MEAN_LAST_3,
    SEASONAL_MEAN,
    corrected,
)
from funnel_reports.transforms.funnel_model import FunnelModel


def change_phrase(
    current: float | None, previous: float | None, *, label: str, kind: str, text: dict[str, str]
) -> str:
    """'up 12% on 2024-05' style text; `kind` is amount, count or rate (rates in points)."""
    if current is None or previous is None:
        return text["change_unknown"].format(label=label)
    delta = current - previous
    if abs(delta) < 1e-12:
        return text["change_flat"].format(label=label)
    if kind == "rate":
        value = f"{abs(delta) * 100:.1f} pp"
    elif kind == "amount":
        value = fmt.compact_amount(abs(delta), text["_lang"])
    else:
        value = fmt.count(abs(delta))
    return text["change_up" if delta > 0 else "change_down"].format(value=value, label=label)


def summary_sentences(views: dict[str, Any], *, text: dict[str, str]) -> list[str]:
    """The executive summary, from the report's section views (`context.report_views`): what
    was won (or lost), the pipeline, the weakest step, the stalled deals and the slowest
    stage; at most five sentences."""
    money = Money.of(views["header"]["currency"], text)
    sentences = [
        won_sentence(views["comparison"], text=text, money=money),
        movement_sentence(
            views["movement"], period=views["comparison"]["label"], text=text, money=money
        ),
        leak_sentence(
            views["funnel"]["conversion"], text=text, months=views["header"]["window_months"]
        ),
        stalls_sentence(views["stalls"], text=text, money=money),
        slowest_sentence(views["dwell"]["rows"], text=text),
    ]
    return [sentence for sentence in sentences if sentence is not None][:5]


@dataclass(frozen=True)
class Money:
    """An amount in the report's currency, written compactly in its language."""

    prefix: str
    lang: str

    @classmethod
    def of(cls, currency: str, text: dict[str, str]) -> Money:
        """The report's currency code before each amount, in the report's language."""
        return cls(currency + " ", text["_lang"])

    def __call__(self, amount: float) -> str:
        return self.prefix + fmt.compact_amount(amount, self.lang)


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


def kpi_tiles(views: dict[str, Any], *, text: dict[str, str]) -> list[dict[str, Any]]:
    """The headline figures at the top of the summary, each with its change against the
    previous period, then the forecast and the stalled deals."""
    comparison, forecast, stalls = views["comparison"], views["forecast"], views["stalls"]
    previous, lang, currency = comparison["previous"], text["_lang"], views["header"]["currency"]
    tiles = []
    headline = {key: (title, kind) for key, title, kind in HEADLINE_FIGURES}
    for key in TILE_FIGURES:
        title, kind = headline[key]
        current, before = comparison["kpis"][key], previous["kpis"][key]
        value = fmt.compact_amount(current, lang) if kind == "amount" else fmt.figure(current, kind)
        tiles.append(
            {
                "title": f"{text[title]} ({currency})" if kind == "amount" else text[title],
                "value": value,
                "change": change_phrase(
                    current, before, label=previous["label"], kind=kind, text=text
                ),
                "direction": direction(previous["change"][key]),
            }
        )
    compliance = (
        fmt.percent(stalls["compliance_rate"])
        if stalls["reasons_recorded"]
        else text["not_recorded"]
    )
    return [
        *tiles,
        {
            "title": text["next_period_forecast"].format(label=forecast["next_period_label"])
            + f" ({currency})",
            "value": fmt.compact_amount(forecast["next_period"], lang),
            "change": text["weighted_value"].format(
                value=fmt.compact_amount(forecast["weighted_pipeline"], lang)
            ),
            "direction": None,
        },
        {
            "title": text["stalled_deals"],
            "value": fmt.count(stalls["stalled_count"])
            if stalls["has_limits"]
            else text["not_measured_short"],
            "change": f"{text['compliance']}: {compliance}",
            "direction": None,
        },
    ]


def won_sentence(comparison: dict[str, Any], *, text: dict[str, str], money: Money) -> str:
    kpis, previous = comparison["kpis"], comparison["previous"]
    prev_label, prev = previous["label"], previous["kpis"]
    won_change = change_phrase(
        kpis["won_amount"], prev["won_amount"], label=prev_label, kind="amount", text=text
    )
    if not kpis["won_count"]:
        return text["summary_no_won"].format(
            period=comparison["label"],
            won_change=won_change,
            lost_count=fmt.count(kpis["lost_count"]),
        )
    return text["summary_won"].format(
        period=comparison["label"],
        won_count=fmt.count(kpis["won_count"]),
        won_amount=money(kpis["won_amount"]),
        won_change=won_change,
        win_rate=fmt.percent(kpis["win_rate"]),
        rate_change=change_phrase(
            kpis["win_rate"], prev["win_rate"], label=prev_label, kind="rate", text=text
        ),
    )


def leak_sentence(
    conversion: list[dict[str, Any]], *, text: dict[str, str], months: int
) -> str | None:
    """The step out of an open stage with the lowest resolved rate among the shown stages
    (the conversion rows of the funnel view), if any."""
    open_steps = [s for s in conversion if s["resolved_rate"] is not None and s["from_is_open"]]
    if not open_steps:
        return None
    weakest = min(open_steps, key=lambda s: s["resolved_rate"])
    return text["summary_leak"].format(
        **{"from": weakest["from_label"], "to": weakest["to_label"]},
        months=months,
        rate=fmt.percent(weakest["resolved_rate"]),
    )


def stalls_sentence(stalls: dict[str, Any], *, text: dict[str, str], money: Money) -> str:
    if not stalls["has_limits"]:
        return text["summary_no_stall_limits"]
    if not stalls["stalled_count"]:
        return text["summary_no_stalls"]
    recorded = stalls["compliance_rate"] is not None
    return text["summary_stalls" if recorded else "summary_stalls_unrecorded"].format(
        stalled=fmt.count(stalls["stalled_count"]),
        stalled_amount=money(stalls["stalled_amount"]),
        missing=fmt.count(stalls["missing_reason_count"]),
    )


def slowest_sentence(dwell: list[dict[str, Any]], *, text: dict[str, str]) -> str | None:
    """The shown stage with the longest median time in stage (the dwell view's rows)."""
    measured = [d for d in dwell if d["median_days"] is not None]
    if not measured:
        return None
    slowest = max(measured, key=lambda d: d["median_days"])
    return text["summary_slowest"].format(
        stage=slowest["label"], days=fmt.days(slowest["median_days"])
    )


def bottleneck_sentence(
    row: dict[str, Any],
    *,
    text: dict[str, str],
    stage_labels: dict[str, str],
    period: str,
    currency: str,
) -> str | None:
    """One plain sentence for a called-out bottleneck; None for a step that did not worsen."""
    if not row["is_called_out"]:
        return None
    lang = text["_lang"]
    step = f"{stage_labels[row['stage']]} → {stage_labels[row['next_stage']]}"
    parts = []
    if row["is_conversion_worse"]:
        parts.append(
            text["bottleneck_conversion"].format(
                step=step,
                period=period,
                rate=fmt.percent(row["conversion"]),
                left=fmt.count(row["left_in_period"]),
                base=fmt.percent(row["baseline_conversion"]),
            )
        )
    if row["is_dwell_worse"]:
        parts.append(
            text["bottleneck_dwell"].format(
                stage=stage_labels[row["stage"]],
                period=period,
                days=fmt.days(row["median_days"]),
                base=fmt.days(row["baseline_median_days"]),
            )
        )
    if row["revenue_at_risk"]:
        parts.append(
            text["bottleneck_risk"].format(
                amount=f"{currency} {fmt.compact_amount(row['revenue_at_risk'], lang)}"
            )
        )
    return " ".join(parts)


def folded_note(folded: list[str], funnel: FunnelModel, *, text: dict[str, str]) -> str | None:
    """The line that names the stages folded out of the report's funnel, if any."""
    if not folded:
        return None
    lang = text["_lang"]
    separator = "、" if lang == "zh" else ", "
    return text["folded_stages"].format(
        stages=separator.join(funnel.stage(stage).label(lang) for stage in folded)
    )


def table_name(table: str, text: dict[str, str]) -> str:
    """A canonical table's name in the report's language (opportunities: "Opportunities")."""
    return text.get(f"table_{table}", table)


def source_line(source: dict[str, Any], *, text: dict[str, str]) -> str:
    """The appendix's line on the layout read: the preset, and which file fed which table; of
    dated snapshots, how many and the latest's files."""
    preset = text.get(f"preset_{source['preset']}", source["label"])
    folders = sorted({name.split("/", 1)[0] for name in source["files"] if "/" in name})
    files = {
        name.rsplit("/", 1)[-1]: table
        for name, table in source["files"].items()
        if not folders or name.startswith(f"{folders[-1]}/")
    }
    listed = text["list_separator"].join(
        text["source_file"].format(file=name, table=table_name(table, text))
        for name, table in files.items()
    )
    if not folders:
        return text["source_files"].format(preset=preset, files=listed)
    return text["source_snapshots"].format(
        preset=preset, count=len(folders), first=folders[0], last=folders[-1], files=listed
    )


def source_notes(source: dict[str, Any], *, text: dict[str, str]) -> list[str]:
    """What the appendix says of the input files no table uses: which, and of those that look
    like a table, why they were left out."""
    notes = []
    if source.get("ignored"):
        notes.append(text["source_not_used"].format(files=", ".join(source["ignored"])))
    for lookalike in source.get("lookalikes", []):
        fields = {
            "file": lookalike["file"],
            "table": table_name(lookalike["table"], text),
            "by": text[f"by_{lookalike['by']}"],
            "columns": ", ".join(lookalike["missing"]),
            "used": lookalike["used_instead"],
        }
        key = "source_lookalike_missing" if lookalike["missing"] else "source_lookalike_other"
        notes.append(text[key].format(**fields))
    for lookup in source.get("lookups", []):
        fields = {
            "file": lookup["file"],
            "on": lookup["on"],
            "matched": lookup["matched"],
            "unmatched": lookup["unmatched"],
            "columns": ", ".join(c for c, n in lookup["filled"].items() if n and c != "amount"),
        }
        notes.append(text["source_lookup"].format(**fields))
        if lookup["unmatched"]:
            notes.append(text["source_lookup_unmatched"].format(**fields))
        if lookup["filled"].get("amount"):
            notes.append(
                text["source_lookup_estimated"].format(count=lookup["filled"]["amount"], **fields)
            )
    currency = source.get("currency") or {}
    if currency.get("rates_from"):

        def rate(row: dict[str, Any]) -> str:
            low, high = f"{row['rate_min']:,.6g}", f"{row['rate_max']:,.6g}"
            return low if low == high else f"{low}–{high}"

        notes.append(
            text["source_currency"].format(
                currency=currency["report_currency"],
                source=currency["rates_from"],
                rates=", ".join(
                    text["source_currency_rate"].format(
                        code=row["currency"], rate=rate(row), deals=row["deals"]
                    )
                    for row in currency["converted"]
                    if row["currency"] != currency["report_currency"]
                ),
            )
        )
    return notes


def data_is_old(fresh: dict[str, Any] | None) -> bool:
    """The export's latest record (metrics.json `data_as_of`) lies more than a day before the
    period's end (a report run with --allow-stale): the report says so in red."""
    days = (fresh or {}).get("days_before_period_end")
    return days is not None and days > 1


def data_as_of_sentence(fresh: dict[str, Any] | None, *, text: dict[str, str]) -> str | None:
    """`Data as of 2026-09-30.` (metrics.json `data_as_of`: the export's latest record), with
    a warning when the data is old for the period (`data_is_old`)."""
    fresh = fresh or {}
    if not fresh.get("date"):
        return None
    if data_is_old(fresh):
        days = round(fresh["days_before_period_end"])
        return text["data_as_of_stale"].format(date=fresh["date"], days=days)
    return text["data_as_of"].format(date=fresh["date"])


def stage_mapping_line(unknown: dict[str, Any]) -> str:
    """The `[source.stages]` line of funnel.toml that maps an unknown stage value: to the stage
    its name is most like, or to a placeholder."""
    target = unknown["suggested_stage"] or "<stage id, or lost>"
    return f"{json.dumps(unknown['value'], ensure_ascii=False)} = {json.dumps(target)}"


def unknown_stage_notes(quality: dict[str, Any], *, text: dict[str, str]) -> list[str]:
    """What the appendix says of each stage value the funnel does not know."""
    return [
        text["unknown_stage"].format(
            value=unknown["value"],
            table=table_name(table, text),
            rows=fmt.count(unknown["rows"]),
            line=stage_mapping_line(unknown),
        )
        for table, entry in quality.items()
        for unknown in entry.get("unknown_stages", [])
    ]


NULL_WORD_COLUMNS_SHOWN = 3


def null_word_notes(quality: dict[str, Any], *, text: dict[str, str]) -> list[str]:
    """What the appendix says of the cells that held None, NULL, N/A, NaN or - and were read
    as blank: per table, how many, and the columns with most."""
    notes = []
    for table, entry in quality.items():
        words = entry.get("null_words") or {"cells": 0}
        if not words["cells"]:
            continue
        top = sorted(words["columns"].items(), key=lambda item: -item[1])
        columns = ", ".join(f"{c} {fmt.count(n)}" for c, n in top[:NULL_WORD_COLUMNS_SHOWN])
        more = ", …" if len(top) > NULL_WORD_COLUMNS_SHOWN else ""
        notes.append(
            text["null_words_one" if words["cells"] == 1 else "null_words"].format(
                table=table_name(table, text),
                cells=fmt.count(words["cells"]),
                columns=columns + more,
            )
        )
    return notes


def method_name(method: str, text: dict[str, str]) -> str:
    return text[f"method_{method}"]


def forecast_method_sentence(forecast: dict[str, Any], *, text: dict[str, str]) -> str:
    """Which method gives the next period's forecast, and how far off the report's forecasts
    were: the report card's "as used" WAPE (the method chosen at each past period end, one
    number wherever the report gives the forecast's error) against the best baseline's (or,
    for a baseline, against the landmark method's)."""
    method = forecast["method"]
    if method is None:
        return text["no_forecast"]
    name = method_name(method, text)
    card = forecast["backtest"]
    origins = len(card["periods"])
    if origins == 0:
        return text["method_why_none"].format(method=name)
    if origins < MIN_ORIGINS_TO_CHOOSE:
        return text["method_why_few"].format(
            method=name, origins=origins, needed=MIN_ORIGINS_TO_CHOOSE
        )
    scored = {row["method"]: row for row in card["candidates"] + card["baselines"]}
    others = [scored[LANDMARK]] if method in BASELINES else card["baselines"]
    others = [row for row in others if row["wape"] is not None]
    if card["wape"] is None or not others:
        return text["method_why_unscored"].format(method=name, origins=origins)
    other = min(others, key=lambda row: row["wape"])
    other_name = method_name(other["method"], text)
    return text["method_why_scored"].format(
        method=name,
        origins=origins,
        wape=fmt.percent(card["wape"], 1),
        other=other_name[:1].lower() + other_name[1:],
        other_wape=fmt.percent(other["wape"], 1),
    )


def forecast_parts_sentence(forecast: dict[str, Any], *, text: dict[str, str], money: Money) -> str:
    """What the open deals and the deals not yet created each bring."""
    parts, new = forecast["next_period_components"], forecast["new_deals"]
    factor = new["seasonal_factor"]
    return text["next_components"].format(
        open=text["open_part_unknown"]
        if parts["open_deals"] is None
        else money(parts["open_deals"]),
        new=money(parts["new_deals"]),
        periods=new["periods"],
        seasonal="" if factor == 1.0 else text["seasonal_factor"].format(factor=f"{factor:.2f}"),
    )


def learned_sentence(forecast: dict[str, Any], *, text: dict[str, str], money: Money) -> str | None:
    """How a learned method (`forecast.learned`, by its `kind`) made its figure from the
    model's (`monte_carlo.model`) or the mean of the last three periods'; None for a model
    or a baseline as it is."""
    learned = forecast["learned"]
    if learned is None:
        return None
    by_method = forecast["next_period_by_method"]
    if learned["kind"] == BLEND:
        return text["learned_blend"].format(
            model=money(by_method[corrected(LANDMARK)]), mean=money(by_method[MEAN_LAST_3])
        )
    if learned["kind"] == SEASONAL_MEAN:
        mean = by_method[MEAN_LAST_3]
        return text["learned_seasonal_mean"].format(
            mean=money(mean), scale=f"{forecast['next_period'] / mean:.2f}" if mean else "–"
        )
    return text["learned_scaled"].format(
        model=money(by_method[forecast["monte_carlo"]["model"]]), scale=f"{learned['scale']:.2f}"
    )


def movement_sentence(
    movement: dict[str, Any], *, period: str, text: dict[str, str], money: Money
) -> str:
    """How the open pipeline changed over the period, and its largest movements (the two
    steps of the movement view with the largest amounts)."""
    steps = {step["key"]: step for step in movement["steps"]}
    start, end = steps["open_start"]["amount"], steps["open_end"]["amount"]
    moves = sorted(
        (s for s in movement["steps"] if s["kind"] != "total" and s["amount"]),
        key=lambda s: -s["amount"],
    )[:2]
    if not moves and start == end:
        return text["summary_movement_still"].format(period=period, end=money(end))
    direction = "up" if end > start else "down" if end < start else "flat"
    change = f"{(end - start) / start * 100:+.0f}%" if start else text["movement_new"]
    return text["summary_movement"].format(
        period=period,
        start=money(start),
        end=money(end),
        direction=text[f"movement_{direction}"],
        change=change,
        moves=text["list_separator"].join(
            text[f"movement_move_{s['key']}" + ("_one" if s["count"] == 1 else "")].format(
                amount=money(s["amount"]), count=fmt.count(s["count"])
            )
            for s in moves
        )
        or text["movement_none"],
    )


def expected_sentence(
    expected: dict[str, Any] | None, *, period: str, text: dict[str, str], money: Money
) -> str:
    """What became of the deals expected to close in the period, and the wins nobody
    expected in it."""
    if expected is None:
        return text["expected_not_recorded"]
    return text["expected_outcome"].format(
        period=period,
        count=fmt.count(expected["expected_count"]),
        amount=money(expected["expected_amount"]),
        won=fmt.count(expected["won_count"]),
        lost=fmt.count(expected["lost_count"]),
        pushed=fmt.count(expected["pushed_out_count"]),
        overdue=fmt.count(expected["overdue_count"]),
        pulled_in=fmt.count(expected["pulled_in_count"]),
        new_won=fmt.count(expected["new_won_count"]),
    )
