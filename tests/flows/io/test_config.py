"""funnel.toml's [[reports]]: the report set, checked as it is read."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from funnel_reports.flows.io.config import ConfigError, FunnelToml, settings_from_toml
from funnel_reports.transforms.funnel_model import ReportSpec

REPORTS = """
[[reports]]
name = "east"
title = "East China"
filter = { region = ["East China"] }
lang = "zh"
to = ["east-head@example.com"]
target = { "2026-09" = 800000 }

[[reports]]
name = "li-team"
filter = { owner = "Li", source = ["Referral", "Web"] }
"""


def settings(tmp_path, text):
    path = tmp_path / "funnel.toml"
    path.write_text(text, encoding="utf-8")
    return settings_from_toml(path)


def test_reports_are_read_with_their_filters_recipients_and_targets(tmp_path):
    assert settings(tmp_path, REPORTS).reports == (
        ReportSpec(
            name="east",
            title="East China",
            filter={"region": ("East China",)},
            lang="zh",
            to=("east-head@example.com",),
            targets={"2026-09": 800000.0},
        ),
        ReportSpec(name="li-team", filter={"owner": ("Li",), "source": ("Referral", "Web")}),
    )


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('name = "East China"\nfilter = { region = "East" }', "needs a name of lower-case"),
        ('name = "company"\nfilter = { region = "East" }', "other than 'company'"),
        (
            'name = "east"\nfilter = { city = "Shanghai" }',
            "filter city: unknown name; expected one of owner",
        ),
        ('name = "east"', "'east' needs filter"),
        (
            'name = "east"\nfilter = { region = "East" }\nlang = "fr"',
            "lang = 'fr': Input should be 'en' or 'zh'",
        ),
    ],
)
def test_a_report_that_cannot_be_made_is_refused_by_name(tmp_path, entry, says):
    with pytest.raises(ConfigError, match=r"\[\[reports\]\]") as error:
        settings(tmp_path, f"[[reports]]\n{entry}\n")
    assert says in str(error.value)


def test_two_reports_of_one_name_are_refused(tmp_path):
    entry = '[[reports]]\nname = "east"\nfilter = { region = "East" }\n'
    with pytest.raises(ConfigError, match="two reports have the name 'east'"):
        settings(tmp_path, entry * 2)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # a typo is refused with the nearest valid key, never obeyed as silence
        ('[source]\ncurency = "CNY"\n', "[source] curency: unknown key; did you mean currency?"),
        (
            "[funnel]\nwindow_month = 6\n",
            "[funnel] window_month: unknown key; did you mean window_months?",
        ),
        ('[reprot]\nlang = "zh"\n', "[reprot]: unknown section; did you mean [report]?"),
        (
            '[delivery]\nsmtp_host = "h"\nsender = "a@b.c"\nto = ["c@d.e"]\nsmtp_prot = 25\n',
            "[delivery] smtp_prot: unknown key; did you mean smtp_port?",
        ),
        (
            '[[funnel.stages]]\nid = "a"\n[[funnel.stages]]\nid = "won"\nstal_days = 3\n',
            "[[funnel.stages]] #2 stal_days: unknown key; did you mean stall_days?",
        ),
        (
            '[source.files]\noportunities = "x.csv"\n',
            "[source.files] oportunities: unknown name; did you mean opportunities?",
        ),
        # wrong types and values out of range
        (
            '[delivery]\nsmtp_host = "h"\nsender = "a@b.c"\nto = "c@d.e"\n',
            "[delivery] to = 'c@d.e': Input should be a valid list",
        ),
        (
            '[funnel]\nwindow_months = "12"\n',
            "[funnel] window_months = '12': Input should be a valid integer",
        ),
        ("[funnel]\nwindow_months = 0\n", "window_months = 0: Input should be greater than or"),
        (
            '[[funnel.stages]]\nid = "a"\nstall_days = 0\n[[funnel.stages]]\nid = "won"\n',
            "[[funnel.stages]] #1 stall_days = 0: Input should be greater than or equal to 1",
        ),
        ('[source]\ncurrency = "usd"\n', "[source] currency = 'usd': expected an ISO 4217 code"),
        ('[source]\ntimezone = "Mars/Base"\n', "timezone = 'Mars/Base': not a known time zone"),
        ('[source.status]\n"W" = "win"\n', "[source.status] W = 'win': Input should be 'open'"),
        ('[targets]\n"2024-13" = 5\n', "[targets]: '2024-13' is not a period like 2024-06"),
        ('[targets]\n"2024-06" = inf\n', "2024-06 = inf: Input should be a finite number"),
        ('[targets]\n"2024-06" = -5\n', "[targets] 2024-06 = -5: Input should be greater than 0"),
        ("[report]\nstale_after_days = -1\n", "stale_after_days = -1: Input should be greater"),
        ('[[funnel.stages]]\nid = "a"\n[[funnel.stages]]\nid = "b"\n', "won stage 'won' is not"),
        (
            '[delivery]\nsmtp_host = "h"\nsender = "a@b.c"\nto = ["c@d.e"]\npassword = "x"\n',
            "[delivery]: password: secrets never go in a file",
        ),
    ],
)
def test_a_mistake_in_funnel_toml_is_one_line_naming_the_section_and_key(tmp_path, text, line):
    (tmp_path / "funnel.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        settings_from_toml(tmp_path / "funnel.toml")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'funnel.toml'}: ")
    assert line in message
    assert "\n" not in message


def test_every_key_the_readme_shows_is_understood():
    # the README's funnel.toml example is the reference of what a user may write
    readme = (Path(__file__).parents[3] / "README.md").read_text(encoding="utf-8")
    example = readme.split("### funnel.toml", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    settings = FunnelToml.model_validate(tomllib.loads(example))
    assert settings.source.currency == "CNY"
    assert settings.funnel.stages is not None and settings.funnel.stages[0].stall_days == 7


def test_long_titles_and_labels_are_cut_to_one_short_line(tmp_path):
    # a title of megabytes (or with line breaks) must not stall rendering or break a header
    title = "East\nChina " + "x" * 1_000_000
    label = "Lead " * 100_000
    path = tmp_path / "funnel.toml"
    path.write_text(
        f'[[funnel.stages]]\nid = "lead"\nlabel_en = "{label}"\n'
        '[[funnel.stages]]\nid = "won"\n'
        f'[[reports]]\nname = "east"\ntitle = """{title}"""\nfilter = {{ region = "East" }}\n',
        encoding="utf-8",
    )
    settings = settings_from_toml(path)
    [report] = settings.reports
    assert report.title == "East China " + "x" * 68 + "…"
    assert len(report.title) == 80
    lead = settings.funnel.stages[0]
    assert (len(lead.label_en), lead.label_en[-1], lead.label_zh) == (40, "…", lead.label_en)


def test_a_stage_map_to_a_stage_the_funnel_lacks_is_refused_in_one_line(tmp_path):
    """A typo in a [source.stages] target would otherwise pass the parse and break the
    figures: it stops the run, naming the value, the target and the stages there are."""
    path = tmp_path / "funnel.toml"
    path.write_text('[source.stages]\n"Quote Sent" = "proposl"\n"Dead" = "lost"\n', "utf-8")
    with pytest.raises(ConfigError) as error:
        settings_from_toml(path)
    assert str(error.value) == (
        f"{path}: [source.stages] 'Quote Sent' = 'proposl': this funnel has no stage "
        "'proposl'; expected one of lead, qualified, proposal, negotiation, won, retention "
        "or lost"
    )
