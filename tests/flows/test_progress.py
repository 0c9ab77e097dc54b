"""What a run says as it goes (flows/progress.py): each step timed and said, with its
details, on the `funnel.progress` logger (outside a Prefect run: no run log, no server)."""

from __future__ import annotations

import logging
import re
import time

import pytest

from funnel_reports.flows.progress import PROGRESS, say, step


@pytest.fixture(autouse=True)
def _prefect():
    """Outside any Prefect run: no test server is started."""
    yield


@pytest.fixture
def said(caplog, monkeypatch):
    """The lines said on `funnel.progress`, caught on the logger itself (the CLI may have
    stopped it propagating)."""
    monkeypatch.setattr(PROGRESS, "propagate", False)
    caplog.set_level(logging.INFO, logger=PROGRESS.name)
    PROGRESS.addHandler(caplog.handler)
    yield lambda: [r.getMessage() for r in caplog.records if r.name == PROGRESS.name]
    PROGRESS.removeHandler(caplog.handler)


def test_a_line_is_said_outside_a_run(said):
    say("3 reports, 1 current")
    assert said() == ["3 reports, 1 current"]


def test_a_step_is_said_with_its_scope_details_and_seconds(said):
    timings: dict[str, float] = {}
    with step(timings, "read", "2024-06") as note:
        note("400 rows")
        note("2 files")
    [line] = said()
    assert re.fullmatch(r"2024-06 read: 400 rows; 2 files \(\d+\.\d s\)", line), line


def test_a_step_without_scope_or_details_is_its_name_and_seconds(said):
    with step({}, "render"):
        pass
    [line] = said()
    assert re.fullmatch(r"render \(\d+\.\d s\)", line), line


def test_a_step_is_timed_into_timings_under_its_name(said):
    timings = {"read": 1.5}
    with step(timings, "render"):
        time.sleep(0.05)
    assert set(timings) == {"read", "render"}
    assert 0.05 <= timings["render"] < 5
    assert timings["render"] == round(timings["render"], 4)


def test_a_step_that_fails_is_neither_timed_nor_said(said):
    timings: dict[str, float] = {}
    with pytest.raises(OSError, match="disk full"), step(timings, "publish"):
        raise OSError("disk full")
    assert timings == {}
    assert said() == []
