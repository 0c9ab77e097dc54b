"""Render the report: context from metrics, HTML from Jinja2 templates, PDF with WeasyPrint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from flows import formatting as fmt
from flows.charts import dwell_chart, funnel_chart, paired_bars, range_chart, trend_chart
from flows.formatting import TEMPLATES_DIR
from flows.narrative import change_phrase, summary_sentences

SEGMENT_ROWS = 8


class TemplatesOnlyFetcher(URLFetcher):
    """Fetches `data:` URLs and files inside report_templates/; refuses everything else."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("data:"):
            return super().fetch(url, headers)
        if url.startswith("file:"):
            path = Path(url.removeprefix("file://").split("?")[0].split("#")[0]).resolve()
            if path.is_relative_to(TEMPLATES_DIR) and path.is_file():
                return super().fetch(url, headers)
        raise ValueError(f"refused to fetch {url}: reports load nothing from outside the templates")


def environment() -> jinja2.Environment:
    """The one Jinja environment: autoescaping for every template, strict undefined values."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "j2", "svg"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        count=fmt.count,
        amount=fmt.amount,
        compact_amount=fmt.compact_amount,
        pct=fmt.percent,
        points=fmt.points,
        days=fmt.days,
        score=fmt.score,
    )
    return env


def kpi_tiles(metrics: dict[str, Any], text: dict[str, str]) -> list[dict[str, Any]]:
    """The headline figures at the top of the summary, each with its change."""
    kpis = metrics["kpis"]
    previous = metrics["comparison"]["previous"]
    label = previous["period"]["label"]
    lang = text["_lang"]
    tiles = []
    for key, title, kind, show in (
        ("won_amount", "won_amount", "amount", lambda v: fmt.compact_amount(v, lang)),
        ("won_count", "won_deals", "count", fmt.count),
        ("win_rate", "win_rate", "rate", fmt.percent),
        ("open_amount", "open_pipeline", "amount", lambda v: fmt.compact_amount(v, lang)),
    ):
        current, before = kpis[key], previous["kpis"][key]
        delta = previous["change"][key]
        tiles.append(
            {
                "title": text[title],
                "value": show(current),
                "change": change_phrase(current, before, label=label, kind=kind, text=text),
                "direction": None
                if delta is None
                else ("up" if delta > 0 else "down" if delta < 0 else "flat"),
            }
        )
    tiles.append(
        {
            "title": text["weighted_pipeline"],
            "value": fmt.compact_amount(metrics["forecast"]["weighted_pipeline"], lang),
            "change": text["next_period_forecast"].format(
                label=metrics["forecast"]["next_period_label"]
            )
            + ": "
            + fmt.compact_amount(metrics["forecast"]["next_period"], lang),
            "direction": None,
        }
    )
    stalls = metrics["stalls"]
    tiles.append(
        {
            "title": text["stalled_deals"],
            "value": fmt.count(stalls["stalled_count"]),
            "change": f"{text['compliance']}: {fmt.percent(stalls['compliance_rate'])}",
            "direction": None,
        }
    )
    return tiles


def report_context(
    metrics: dict[str, Any], *, input_files: list[dict[str, Any]], lang: str
) -> dict[str, Any]:
    """Everything the templates show, already computed and sorted; they only format it."""
    text = {**fmt.labels(lang), "_lang": lang}
    stage_labels = {s["id"]: s["label"] for s in metrics["stages"]}
    stall_days = sorted({s.get("stall_days") for s in metrics["stages"] if s.get("stall_days")})
    return {
        "m": metrics,
        "t": text,
        "lang": lang,
        "stage_labels": stage_labels,
        "stall_days": "/".join(str(d) for d in stall_days) or "–",
        "tiles": kpi_tiles(metrics, text),
        "summary": summary_sentences(metrics, text=text, stage_labels=stage_labels),
        "funnel_chart": funnel_chart(metrics, stage_labels),
        "trend_chart": trend_chart(metrics["trend"]),
        "forecast_chart": paired_bars(
            metrics["forecast"]["by_stage"], "open_amount", "weighted_amount", stage_labels
        ),
        "range_chart": range_chart(
            metrics["forecast"]["monte_carlo"],
            metrics["targets"]["target"] if metrics.get("targets") else None,
        ),
        "dwell_chart": dwell_chart(metrics["dwell"], metrics["stages"], stage_labels),
        "input_files": input_files,
        "segment_rows": SEGMENT_ROWS,
        "kind": text["quarterly" if metrics["period"]["grain"] == "quarter" else "monthly"],
        "css": (TEMPLATES_DIR / "report.css").read_text(encoding="utf-8"),
    }


def render_html(context: dict[str, Any]) -> str:
    return environment().get_template("report.html.j2").render(context)


def render_pdf(html: str) -> bytes:
    """The PDF of a rendered report; nothing outside report_templates/ is fetched."""
    document = HTML(
        string=html, base_url=TEMPLATES_DIR.as_uri() + "/", url_fetcher=TemplatesOnlyFetcher()
    )
    return document.write_pdf()
