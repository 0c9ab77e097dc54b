"""What the report's email says: a subject naming the report and period, and a plain-text and
an HTML body with the headline figures and the summary sentences of the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from report_templates import formatting as fmt
from report_templates.context import kpi_tiles
from report_templates.narrative import summary_sentences
from report_templates.render import environment
from transforms.funnel_model import FunnelModel


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str
    pdf_name: str


def mail_content(metrics: dict[str, Any], *, lang: str, funnel: FunnelModel) -> MailContent:
    text = {**fmt.labels(lang), "_lang": lang}
    labels = {s.id: s.label(lang) for s in funnel.stages}
    period = metrics["period"]["label"]
    kind = text["quarterly" if metrics["period"]["grain"] == "quarter" else "monthly"]
    tiles = kpi_tiles(metrics, text)
    summary = summary_sentences(metrics, text=text, stage_labels=labels)
    pdf_name = f"{text['report_title']} {period}.pdf"
    subject = f"{text['report_title']} · {kind} · {period}"
    attached = text["mail_attached"].format(name=pdf_name)
    plain = "\n".join(
        [
            subject,
            "",
            *(f"{t['title']}: {t['value']} ({t['change']})" for t in tiles),
            "",
            *(f"- {sentence}" for sentence in summary),
            "",
            attached,
            "",
        ]
    )
    html = (
        environment()
        .get_template("mail.html.j2")
        .render(
            lang=lang,
            subject=subject,
            title=text["report_title"],
            kind=kind,
            period=period,
            tiles=tiles,
            summary=summary,
            attached=attached,
        )
    )
    return MailContent(subject, plain, html, pdf_name)
