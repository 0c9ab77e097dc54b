"""What the report says outside the PDF: the headline (a subject naming the report and period,
the headline figures with their change, the summary sentences) as an email with a plain-text
and an HTML body, and as the markdown of the run's Prefect artifact."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from funnel_reports.report_templates.context import (
    conversion_rows,
    report_text,
    report_views,
    shown_labels,
)
from funnel_reports.report_templates.render import environment
from funnel_reports.transforms.funnel_model import FunnelModel


@dataclass(frozen=True)
class Headline:
    subject: str
    title: str
    kind: str  # monthly or quarterly, in the report's language
    report: str | None  # the title of a report of the report set
    period: str
    tiles: list[dict[str, Any]]
    summary: list[str]
    data_as_of: str | None  # the export's latest record, with a warning when it is old
    text: dict[str, str]  # the report's labels


def headline(metrics: dict[str, Any], *, lang: str, funnel: FunnelModel) -> Headline:
    """The report's header and summary views (`context.report_views`), as the mail and the
    artifact say them: the same tiles and sentences as the report's first page."""
    text = report_text(lang)
    views = report_views(metrics, lang=lang, funnel=funnel, input_files=[])
    header, summary = views["header"], views["summary"]
    period, name, kind = header["period"]["label"], header["report_name"], header["kind"]
    return Headline(
        subject=" · ".join([text["report_title"], *([name] if name else []), kind, period]),
        title=text["report_title"],
        kind=kind,
        report=name,
        period=period,
        tiles=summary["tiles"],
        summary=summary["sentences"],
        data_as_of=header["data_as_of"],
        text=text,
    )


def one_line(text: str) -> str:
    """Text for a mail header: no line breaks or control characters (a title from funnel.toml
    may hold them), whitespace as single spaces."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())


def file_name(text: str) -> str:
    """Text safe as an attachment's file name: one line, no path separators, no `..`, none of
    the characters Windows refuses, no leading dot."""
    name = re.sub(r'[/\\:*?"<>|]', "-", one_line(text))
    while ".." in name:
        name = name.replace("..", ".")
    return name.strip(" .") or "report"


@dataclass(frozen=True)
class MailContent:
    subject: str
    text: str
    html: str
    # the attachments' names, by what they are ([delivery] attach: pdf, xlsx)
    names: dict[str, str]


def mail_content(
    metrics: dict[str, Any],
    *,
    lang: str,
    funnel: FunnelModel,
    attach: tuple[str, ...] = ("pdf",),
) -> MailContent:
    """The mail of a report: subject, text and HTML bodies, and the names of the files it
    carries (`attach`): the report's title, team and period, as `.pdf` and `.xlsx`."""
    head = headline(metrics, lang=lang, funnel=funnel)
    stem = file_name(" ".join([head.title, *([head.report] if head.report else []), head.period]))
    names = {kind: f"{stem}.{kind}" for kind in attach}
    attached = head.text["mail_attached"].format(
        name=head.text["list_separator"].join(names.values())
    )
    plain = "\n".join(
        [
            head.subject,
            *([head.data_as_of] if head.data_as_of else []),
            "",
            *(f"{t['title']}: {t['value']} ({t['change']})" for t in head.tiles),
            "",
            *(f"- {sentence}" for sentence in head.summary),
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
            subject=head.subject,
            title=head.title,
            kind=head.kind,
            period=head.period,
            tiles=head.tiles,
            summary=head.summary,
            data_as_of=head.data_as_of,
            attached=attached,
        )
    )
    return MailContent(one_line(head.subject), plain, html, names)


def markdown_cell(value: Any) -> str:
    """A value inside a markdown table cell: no line breaks, pipes and markup escaped."""
    text = " ".join(str(value).split())
    for char in "\\|*_`[]<>#":
        text = text.replace(char, "\\" + char)
    return text


def artifact_markdown(
    metrics: dict[str, Any], *, lang: str, funnel: FunnelModel, report_dir: str
) -> str:
    """The run's markdown artifact: the headline figures, the summary and where the report is."""
    head = headline(metrics, lang=lang, funnel=funnel)
    return "\n".join(
        [
            f"# {markdown_cell(head.subject)}",
            "",
            f"| {markdown_cell(head.period)} | {markdown_cell(head.text['this_period'])} "
            f"| {markdown_cell(head.text['change'])} |",
            "|---|---|---|",
            *(
                f"| {markdown_cell(t['title'])} | {markdown_cell(t['value'])} "
                f"| {markdown_cell(t['change'])} |"
                for t in head.tiles
            ),
            "",
            *(f"- {markdown_cell(sentence)}" for sentence in head.summary),
            "",
            f"`{report_dir}`: report.pdf, report.html, metrics.json, manifest.json",
            "",
        ]
    )


CONVERSION_COLUMNS = (
    "flow_rate",
    "cohort_rate",
    "resolved_rate",
    "cohort_size",
    "advanced",
    "lost",
    "inferred",
)


def conversion_table(metrics: dict[str, Any], *, lang: str, funnel: FunnelModel) -> list[dict]:
    """The run's table artifact: each step between the stages the report shows, with its
    conversion figures, as the report's conversion table has them."""
    return [
        {"step": row["label"]} | {key: row.get(key) for key in CONVERSION_COLUMNS}
        for row in conversion_rows(metrics, shown_labels(metrics, funnel, lang))
    ]
