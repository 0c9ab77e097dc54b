"""Render the report: HTML from the Jinja2 templates and a ready context, PDF with WeasyPrint."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import jinja2
from weasyprint import HTML
from weasyprint.urls import URLFetcher

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.formatting import TEMPLATES_DIR


class TemplatesOnlyFetcher(URLFetcher):
    """Fetches `data:` URLs and files inside the templates' folder; refuses everything else."""

    def fetch(self, url: str, headers: Any = None) -> Any:
        if url.startswith("data:"):
            return super().fetch(url, headers)
        if url.startswith("file:"):
            path = Path(url.removeprefix("file://").split("?")[0].split("#")[0]).resolve()
            if path.is_relative_to(TEMPLATES_DIR) and path.is_file():
                return super().fetch(url, headers)
        raise ValueError(f"refused to fetch {url}: reports load nothing from outside the templates")


def environment(lang: str = "en") -> jinja2.Environment:
    """The one Jinja environment: autoescaping for every template, strict undefined values.
    An amount reads one way in a report: in full with thousands separators in English (the
    charts' labels are compact), in 万 and 亿 in Chinese, tables and charts alike."""
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
        amount=fmt.amount if lang != "zh" else partial(fmt.compact_amount, lang="zh"),
        compact_amount=fmt.compact_amount,
        pct=fmt.percent,
        points=fmt.points,
        days=fmt.days,
        score=fmt.score,
        figure=fmt.figure,
        clip=fmt.clip,
        figure_change=fmt.figure_change,
        period_text=fmt.period_text,
    )
    return env


def render_html(context: dict[str, Any]) -> str:
    return environment(context["lang"]).get_template("report.html.j2").render(context)


def render_pdf(html: str) -> bytes:
    """The PDF of a rendered report; nothing outside the templates' folder is fetched."""
    document = HTML(
        string=html, base_url=TEMPLATES_DIR.as_uri() + "/", url_fetcher=TemplatesOnlyFetcher()
    )
    return document.write_pdf()
