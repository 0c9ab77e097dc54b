"""What the report says outside the PDF: the mail's subject, bodies and attachment name, and
the run's markdown artifact, from a literal document."""

from __future__ import annotations

import pytest

from funnel_reports.report_templates.mail import (
    artifact_markdown,
    file_name,
    mail_content,
    markdown_cell,
    one_line,
)
from tests.helpers import SETTINGS
from tests.report_templates.test_context import document


def test_header_text_is_one_line_without_control_characters():
    assert one_line("Funnel\r\nBcc: someone\tnow\x00") == "Funnel Bcc: someone now"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Funnel report 2024-06", "Funnel report 2024-06"),
        ("../../etc/passwd", "-.-etc-passwd"),
        ('a:b*c?"d"<e>|f\\g', "a-b-c--d--e--f-g"),
        (" .hidden. ", "hidden"),
        ("...", "report"),
    ],
)
def test_attachment_names_are_safe_file_names(text, expected):
    assert file_name(text) == expected


def test_markdown_cells_escape_markup_and_line_breaks():
    assert markdown_cell("a|b\n*c*") == "a\\|b \\*c\\*"
    assert markdown_cell(0.5) == "0.5"


def test_the_mail_names_the_report_in_its_subject_and_attachment():
    content = mail_content(document(), lang="en", funnel=SETTINGS.funnel)
    assert content.subject == "Sales funnel report · Monthly report · 2024-06"
    assert content.names == {"pdf": "Sales funnel report 2024-06.pdf"}
    assert content.text.startswith(content.subject + "\n")
    assert "Sales funnel report 2024-06.pdf" in content.text
    assert "<li>" in content.html and "2024-06" in content.html


def test_the_chinese_mail_is_in_chinese():
    content = mail_content(document(), lang="zh", funnel=SETTINGS.funnel)
    assert content.subject.startswith("销售漏斗报告")
    assert content.names["pdf"].endswith("2024-06.pdf")


def test_the_artifact_lists_the_tiles_and_where_the_report_is():
    markdown = artifact_markdown(
        document(), lang="en", funnel=SETTINGS.funnel, report_dir="out/2024-06"
    )
    lines = markdown.splitlines()
    assert lines[0] == "# Sales funnel report · Monthly report · 2024-06"
    assert lines[3] == "|---|---|---|"
    assert any(line.startswith("| Won amount (USD) | 100 |") for line in lines)
    assert "`out/2024-06`: report.pdf, report.html, metrics.json, manifest.json" in lines


def test_a_mail_that_carries_the_workbook_names_both_files():
    english = mail_content(document(), lang="en", funnel=SETTINGS.funnel, attach=("pdf", "xlsx"))
    assert english.names == {
        "pdf": "Sales funnel report 2024-06.pdf",
        "xlsx": "Sales funnel report 2024-06.xlsx",
    }
    assert (
        "The full report is attached: Sales funnel report 2024-06.pdf, "
        "Sales funnel report 2024-06.xlsx." in english.text
    )
    chinese = mail_content(document(), lang="zh", funnel=SETTINGS.funnel, attach=("xlsx",))
    assert list(chinese.names) == ["xlsx"]
    assert f"完整报告见附件：{chinese.names['xlsx']}。" in chinese.text
