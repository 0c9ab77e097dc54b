"""The flows' requests (flows/requests.py) and the backfill's plan (a pure function of the
request, the settings and today)."""

from __future__ import annotations

import inspect
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from funnel_reports.flows.backfill_flow import backfill_plan, funnel_backfill
from funnel_reports.flows.report_flow import funnel_report
from funnel_reports.flows.requests import BackfillRequest, ReportRequest, request_of
from funnel_reports.transforms.funnel_model import ReportSpec, RunSettings

BASE = {"inputs_sha256": "abc", "lang": "en", "version": "0.1.0"}


def backfill(**asked) -> BackfillRequest:
    return BackfillRequest(input_dir=Path("in"), out_dir=Path("out"), **asked)


def test_a_report_request_takes_its_keys_typed():
    request = ReportRequest.model_validate(
        {"input_dir": "in", "period": "2024-06", "out_dir": "out", "target": "250000"}
    )
    assert request.input_dir == Path("in")
    assert request.target == 250000.0
    assert (request.config, request.lang, request.deliver, request.allow_stale) == (
        None,
        None,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"perod": "2024-06"}, "perod"),  # a mistyped key is refused, not ignored
        ({"lang": "fr"}, "lang"),
        ({"source": "salesforc"}, "source"),
        ({"target": 0}, "target"),
        ({"deliver": "maybe"}, "deliver"),
    ],
)
def test_a_report_request_refuses_what_it_does_not_understand(extra, named):
    asked = {"input_dir": "in", "period": "2024-06", "out_dir": "out", **extra}
    with pytest.raises(ValidationError) as refused:
        ReportRequest.model_validate(asked)
    assert named in str(refused.value)


def test_a_backfill_request_refuses_an_unknown_grain():
    with pytest.raises(ValidationError, match="grain"):
        backfill(first="2024-01", last="2024-03", grain="week")


@pytest.mark.parametrize(
    ("flow", "request_model"), [(funnel_report, ReportRequest), (funnel_backfill, BackfillRequest)]
)
def test_a_flows_parameters_are_its_requests_fields(flow, request_model):
    """Keyword-only, with the same names, types and defaults: the flow makes them one request
    (and an operator overrides one of them as a deployment's parameter)."""
    signature = inspect.signature(flow.fn, eval_str=True)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    fields = request_model.model_fields
    assert set(signature.parameters) == set(fields)
    for name, parameter in signature.parameters.items():
        field = fields[name]
        assert parameter.default == (
            inspect.Parameter.empty if field.is_required() else field.default
        ), name
        # the field's type, with its constraints
        assert parameter.annotation == field.rebuild_annotation(), name


def test_request_of_reads_a_runs_parameters_and_nothing_else():
    request = ReportRequest(input_dir=Path("in"), period="2024-06", out_dir=Path("out"))
    assert request_of(ReportRequest, dict(request)) == request
    assert request_of(ReportRequest, request.model_dump(mode="json")) == request
    assert request_of(ReportRequest, {"period": "2024-06"}) is None
    assert request_of(ReportRequest, {}) is None


def test_the_plan_is_every_month_of_the_range_oldest_first():
    plan = backfill_plan(
        backfill(first="2024-01", last="2024-03"), RunSettings(), BASE, date(2024, 12, 1)
    )
    assert [job.label for job in plan.jobs] == ["2024-01", "2024-02", "2024-03"]
    assert plan.expected["2024-02"] == BASE


def test_the_plan_of_both_grains_puts_each_quarter_after_its_last_month():
    plan = backfill_plan(
        backfill(first="2024-01", last="2024-06", grain="both"),
        RunSettings(),
        BASE,
        date(2024, 12, 1),
    )
    first_half = ["2024-01", "2024-02", "2024-03", "2024-Q1", "2024-04", "2024-05", "2024-06"]
    assert [job.label for job in plan.jobs] == [*first_half, "2024-Q2"]


def test_the_plan_resolves_last_month_as_of_today_in_the_time_zone():
    plan = backfill_plan(
        backfill(first="last-month", last="last-month", grain=None),
        RunSettings(timezone="Asia/Shanghai"),
        BASE,
        date(2025, 1, 15),
    )
    assert [job.label for job in plan.jobs] == ["2024-12"]


def test_the_plan_makes_one_report_per_period_and_report_each_in_its_own_language():
    east = ReportSpec("east", filter={"region": ("East",)}, lang="zh")
    settings = RunSettings(reports=(east,))
    plan = backfill_plan(
        backfill(first="2024-05", last="2024-06", reports="all"), settings, BASE, date(2024, 12, 1)
    )
    assert [job.label for job in plan.jobs] == [
        "company 2024-05",
        "east 2024-05",
        "company 2024-06",
        "east 2024-06",
    ]
    assert plan.expected["east 2024-06"] == {**BASE, "lang": "zh"}
    assert plan.expected["company 2024-06"] == {**BASE, "lang": "en"}
    given = backfill_plan(
        backfill(first="2024-06", last="2024-06", reports="east", lang="en"),
        settings,
        BASE,
        date(2024, 12, 1),
    )
    assert [job.label for job in given.jobs] == ["east 2024-06"]
    assert given.expected["east 2024-06"]["lang"] == "en"  # the command line's wins
