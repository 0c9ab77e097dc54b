"""The report of a thin export (issue 14): stages nobody was seen in are folded out, steps
that rest on them are marked, and what the export does not hold reads as not recorded."""

from __future__ import annotations

from dataclasses import replace

from funnel_reports.report_templates.context import report_context
from funnel_reports.report_templates.mail import conversion_table
from funnel_reports.report_templates.render import render_html
from tests.helpers import SETTINGS, metrics_for
from tests.transforms.marts.test_thin_exports import THIN

NOT_HELD = ("opportunities.stall_reason", "followups")


def html_of(settings=SETTINGS, not_recorded=NOT_HELD, lang="en") -> str:
    metrics = metrics_for(THIN, settings=settings, not_recorded=not_recorded)
    metrics |= {
        "data_quality": {},
        "source": {
            "preset": "canonical",
            "label": "canonical layout",
            "detected": "",
            "files": {},
            "ignored": [],
        },
    }
    return render_html(
        report_context(metrics, input_files=[], lang=lang, settings=settings.metrics)
    )


def test_unobserved_stages_are_folded_out_with_one_line_saying_so():
    html = html_of()
    assert html.count("Proposal &amp; quote") == 1  # only in the line that folds it
    assert (
        "Not in this export&#39;s funnel: Proposal &amp; quote, Negotiation, After-sales &amp; "
        "retention." in html
    )
    assert "Needs confirmed → Signed" in html
    assert ">inferred<" not in html


def test_what_the_export_does_not_hold_reads_as_not_recorded():
    html = html_of()
    assert "Reason compliance: not recorded in this export" in html
    assert "This export holds no follow-ups" in html
    assert html.count("not recorded in this export") >= 3
    recorded = html_of(not_recorded=())
    assert "not recorded in this export" not in recorded
    assert "This export holds no follow-ups" not in recorded


def test_a_named_funnel_keeps_every_stage_and_marks_the_inferred_steps():
    named = replace(SETTINGS, funnel=replace(SETTINGS.funnel, named=True))
    html = html_of(settings=named)
    assert "Not in this export" not in html
    assert "Proposal &amp; quote → Negotiation" in html
    assert html.count('<span class="flag">inferred</span>') == 3  # through proposal, negotiation
    # won → retention: retention was never entered
    assert "Signed → After-sales &amp; retention" in html
    assert 'colspan="7">not recorded in this export' in html


def test_the_chinese_report_names_the_folded_stages_in_chinese():
    html = html_of(lang="zh")
    assert "本导出的漏斗中没有：方案报价、谈判推进、售后维护。" in html


def test_the_conversion_artifact_has_the_report_steps():
    metrics = metrics_for(THIN, not_recorded=NOT_HELD)
    table = conversion_table(metrics, lang="en", funnel=SETTINGS.funnel)
    assert [(row["step"], row["inferred"]) for row in table] == [
        ("Lead acquired → Needs confirmed", False),
        ("Needs confirmed → Signed", False),
    ]
