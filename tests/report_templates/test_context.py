"""The report's section views, from a literal export: one number per figure wherever the
report shows it, thresholds quoted from the settings, and no door to the raw document."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.context import report_context, report_text, report_views
from funnel_reports.report_templates.mail import headline, mail_content
from funnel_reports.report_templates.render import render_html
from funnel_reports.transforms.funnel_model import FunnelModel
from tests.helpers import SETTINGS, history, metrics_for, opp, opportunities, path

# June 2024: W1 went lead → qualified → proposal → won; L1 was lost after qualifying, L2 as
# a lead; O1 is still a lead. Lead's cohort: W1, L1, L2 (2 advanced, 1 lost: 67 %);
# qualified's: W1, L1 (1 advanced, 1 lost: 50 %, the weakest open step).
DEALS = opportunities(
    opp("W1", "won", "2024-06-01", closed_at="2024-06-20", amount=100),
    opp("L1", "qualified", "2024-06-02", status="lost", closed_at="2024-06-15", amount=50),
    opp("L2", "lead", "2024-06-03", status="lost", closed_at="2024-06-10", amount=30),
    opp("O1", "lead", "2024-06-04", amount=70),
)
HISTORY = history(
    *path("W1", ("lead", "2024-06-01"), ("qualified", "2024-06-05"), ("proposal", "2024-06-10")),
    *path("W1", ("won", "2024-06-20")),
    *path("L1", ("lead", "2024-06-02"), ("qualified", "2024-06-06")),
    *path("L2", ("lead", "2024-06-03")),
    *path("O1", ("lead", "2024-06-04")),
)


def document(settings=SETTINGS, not_recorded: tuple[str, ...] = ()) -> dict:
    metrics = metrics_for(DEALS, HISTORY, settings=settings, not_recorded=not_recorded)
    return metrics | {
        "data_quality": {},
        "source": {
            "preset": "canonical",
            "label": "canonical layout",
            "detected": "canonical",
            "files": {},
            "ignored": [],
        },
    }


def views(lang: str = "en") -> dict:
    return report_views(document(), lang=lang, funnel=SETTINGS.funnel, input_files=[])


def test_the_summary_names_the_weakest_step_with_the_conversion_tables_figure():
    v = views()
    conversion = {(r["from"], r["to"]): r for r in v["funnel"]["conversion"]}
    assert conversion[("lead", "qualified")]["resolved_rate"] == 2 / 3
    weakest = conversion[("qualified", "proposal")]
    assert weakest["resolved_rate"] == 0.5
    leak = next(s for s in v["summary"]["sentences"] if "Needs confirmed" in s)
    assert fmt.percent(weakest["resolved_rate"]) in leak and weakest["to_label"] in leak


def test_the_tiles_carry_the_comparison_views_figures():
    v = views()
    won_amount, won_count = v["summary"]["tiles"][:2]
    assert v["comparison"]["kpis"]["won_amount"] == 100.0
    assert (won_amount["value"], won_count["value"]) == ("100", "1")
    assert v["forecast"]["open_count"] == 1 and v["forecast"]["open_amount"] == 70.0


def test_the_mail_says_what_the_reports_first_page_says():
    v = views("zh")
    head = headline(document(), lang="zh", funnel=SETTINGS.funnel)
    assert head.tiles == v["summary"]["tiles"]
    assert head.summary == v["summary"]["sentences"]
    content = mail_content(document(), lang="zh", funnel=SETTINGS.funnel)
    assert all(sentence in content.text for sentence in v["summary"]["sentences"])


def test_the_notes_quote_the_thresholds_of_the_settings():
    settings = replace(SETTINGS, immature_open_share=0.25, min_resolved_for_p_win=7)
    context = report_context(
        document(settings), input_files=[], lang="en", settings=settings.metrics
    )
    html = render_html(context)
    assert "more than 25% still open is marked immature" in html
    assert "fewer than 7 resolved deals are flagged" in html
    default = render_html(
        report_context(document(), input_files=[], lang="en", settings=SETTINGS.metrics)
    )
    assert "more than 30% still open" in default and "fewer than 20 resolved" in default


def test_the_template_gets_views_not_the_document():
    context = report_context(document(), input_files=[], lang="en", settings=SETTINGS.metrics)
    assert "m" not in context
    assert {"header", "summary", "funnel", "forecast", "stalls", "quality"} <= set(context)


def test_the_movement_sentence_and_the_waterfall_say_the_same_figures():
    """Nothing was open on 1 June; O1 (70) was created and is open; W1, L1 and L2 were
    created and closed inside June, beside the bridge."""
    v = views()
    steps = {step["key"]: step for step in v["movement"]["steps"]}
    assert (steps["open_start"]["amount"], steps["created"]["amount"]) == (0.0, 70.0)
    assert (steps["open_end"]["count"], steps["open_end"]["amount"]) == (1, 70.0)
    assert v["movement"]["closed_inside"]["count"] == 3
    sentence = next(s for s in v["summary"]["sentences"] if "open pipeline" in s)
    assert sentence == (
        "Over 2024-06 the open pipeline grew from USD 0 to USD 70 (new), mostly USD 70 "
        "created (1 deal)."
    )


def test_what_the_export_does_not_hold_reads_as_not_recorded_in_the_movement():
    unheld = ("stage_history.amount", "stage_history.expected_close_date")
    html = render_html(
        report_context(
            document(not_recorded=unheld), input_files=[], lang="en", settings=SETTINGS.metrics
        )
    )
    assert html.count(">not recorded<") == 2  # the increased and decreased columns
    text = report_text("en")
    assert text["expected_not_recorded"].replace("'", "&#39;") in html
    assert text["movement_amounts_not_recorded"] in html


def test_the_html_lays_out_on_a_phone():
    """A viewport as wide as the device, and below 700 px tables that scroll in their own box
    and charts scaled to the width (checked by eye at 390 px in headless Chromium)."""
    html = render_html(
        report_context(document(), input_files=[], lang="en", settings=SETTINGS.metrics)
    )
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    phone = html[html.index('<style media="screen and (max-width: 700px)">') :]
    assert "table { display: block; overflow-x: auto;" in phone
    assert 'svg[role="img"] { width: 100%; height: auto; }' in phone
    # every chart is an img-role drawing; a legend's key drawings are not, and keep their size
    drawings = re.findall(r"<svg [^>]*>", html)
    keys = [d for d in drawings if 'role="img"' not in d]
    assert keys and all("viewBox" not in d for d in keys)
    assert all('role="img"' in d for d in drawings if "viewBox" in d)


@pytest.mark.parametrize(("lang", "term"), [("en", "<dt>WAPE</dt>"), ("zh", "<dt>覆盖率</dt>")])
def test_the_report_explains_its_terms_once_in_its_language(lang, term):
    html = render_html(
        report_context(document(), input_files=[], lang=lang, settings=SETTINGS.metrics)
    )
    assert html.count(report_text(lang)["glossary_title"]) == 1 and term in html
    assert "30%" in html[html.index('class="glossary"') :]  # the settings' immature share
    assert "{months}" not in html and "{immature}" not in html


def test_the_chinese_appendix_names_the_layout_and_tables_in_chinese():
    doc = document() | {
        "source": {
            "preset": "canonical",
            "label": "canonical layout",
            "detected": "canonical layout: opportunities.csv as opportunities (5 columns: …)",
            "files": {"opportunities.csv": "opportunities"},
            "ignored": [],
        }
    }
    files = [
        {
            "name": "opportunities.csv",
            "table": "opportunities",
            "rows": 4,
            "rows_valid": 4,
            "rows_quarantined": 0,
            "sha256": "0" * 64,
        }
    ]
    context = report_context(doc, input_files=files, lang="zh", settings=SETTINGS.metrics)
    appendix = render_html(context)
    appendix = appendix[appendix.index('<section id="data-quality">') :]
    assert "读取方式：标准布局；opportunities.csv 作为商机。" in appendix
    assert "<td>商机</td>" in appendix and "<td>opportunities</td>" not in appendix
    assert "canonical layout" not in appendix and " as " not in appendix


def test_a_funnel_without_stall_limits_says_so_in_the_stalls_note():
    no_limits = [replace(stage, stall_days=None) for stage in SETTINGS.funnel.stages]
    funnel = FunnelModel(tuple(no_limits), won_stage=SETTINGS.funnel.won_stage, named=True)
    settings = replace(SETTINGS, funnel=funnel)
    v = report_views(document(settings), lang="en", funnel=funnel, input_files=[])
    assert v["stalls"]["note"] == report_text("en")["stalls_no_limits"]
    assert not v["stalls"]["has_limits"]
    assert views(lang="en")["stalls"]["note"].startswith("Open deals that have sat")
