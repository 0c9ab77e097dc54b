"""funnel.toml's [[reports]]: the report set, checked as it is read."""

from __future__ import annotations

import pytest

from flows.io.config import ConfigError, settings_from_toml
from transforms.funnel_model import ReportSpec

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
        ('name = "east"\nfilter = { city = "Shanghai" }', "filter city: expected one or more of"),
        ('name = "east"', "filter (none): expected one or more of owner, source"),
        ('name = "east"\nfilter = { region = "East" }\nlang = "fr"', "lang 'fr'"),
    ],
)
def test_a_report_that_cannot_be_made_is_refused_by_name(tmp_path, entry, says):
    with pytest.raises(ConfigError, match=r"\[\[reports\]\]") as error:
        settings(tmp_path, f"[[reports]]\n{entry}\n")
    assert says in str(error.value)


def test_two_reports_of_one_name_are_refused(tmp_path):
    entry = '[[reports]]\nname = "east"\nfilter = { region = "East" }\n'
    with pytest.raises(ConfigError, match="two reports have this name"):
        settings(tmp_path, entry * 2)
