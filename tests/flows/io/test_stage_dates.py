"""`[source.stage_dates]` (issue 14): columns of the date a deal entered a stage give it a
stage history, so a thin export yields dwell times."""

from __future__ import annotations

import pytest

from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.metrics_document import period_metrics
from funnel_reports.transforms.periods import parse_period
from funnel_reports.transforms.staging.checks import check_inputs
from funnel_reports.transforms.staging.layout import UnusableInputError
from tests.helpers import by_key, write_csv

MAPPING = """
[source]
preset = "custom"
[source.columns.opportunities]
opportunity_id = "deal"
stage = "deal_stage"
created_at = "created_on"
closed_at = "close_date"
amount = "value"
[source.stages]
"Prospecting" = "lead"
"Engaging" = "qualified"
"Won" = "won"
"Lost" = "lost"
[source.stage_dates]
qualified = "engage_date"
"""

# P = 2024-06. A: created 06-01, engaged 06-05, open. B: created 06-01, engaged 06-11, won
# 06-21. C: created 06-02, still prospecting. D: created 06-03, engaged 06-04, lost 06-10.
DEALS = [
    {
        "deal": "A",
        "deal_stage": "Engaging",
        "created_on": "2024-06-01",
        "engage_date": "2024-06-05",
    },
    {
        "deal": "B",
        "deal_stage": "Won",
        "created_on": "2024-06-01",
        "engage_date": "2024-06-11",
        "close_date": "2024-06-21",
        "value": "100",
    },
    {"deal": "C", "deal_stage": "Prospecting", "created_on": "2024-06-02", "engage_date": ""},
    {
        "deal": "D",
        "deal_stage": "Lost",
        "created_on": "2024-06-03",
        "engage_date": "2024-06-04",
        "close_date": "2024-06-10",
    },
]


def metrics_of(tmp_path, mapping=MAPPING, deals=DEALS):
    write_csv(tmp_path / "in" / "deals.csv", deals)
    config = tmp_path / "funnel.toml"
    config.write_text(mapping, encoding="utf-8")
    settings = settings_from_toml(config)
    checked = check_inputs(read_inputs(tmp_path / "in", settings))
    period = parse_period("2024-06", settings.timezone)
    tables = checked.tables
    return checked, period_metrics(
        tables[OPPORTUNITIES],
        tables[STAGE_HISTORY],
        tables[FOLLOWUPS],
        period=period,
        settings=checked.settings.metrics,
        history_available=checked.history_available,
        not_recorded=checked.not_recorded,
    )


def test_stage_dates_become_history_rows_and_give_dwell_times(tmp_path):
    checked, m = metrics_of(tmp_path)
    assert checked.history_available
    assert checked.quality[STAGE_HISTORY]["rows_read"] == 3  # A, B, D have an engage date
    dwell = by_key(m["dwell"])
    # lead: A 4 days, B 10 days, D 1 day (created -> engaged); C still open in lead
    assert dwell["lead"]["completed_visits"] == 3
    assert dwell["lead"]["median_days"] == 4.0
    assert dwell["lead"]["open_visits"] == 1
    # qualified: B 10 days (-> won 06-21), D 6 days (-> lost 06-10); A still open there
    assert dwell["qualified"]["completed_visits"] == 2
    assert dwell["qualified"]["mean_days"] == 8.0
    assert dwell["qualified"]["open_visits"] == 1


def test_stage_dates_keep_the_fields_entries_of_other_stages(tmp_path):
    _, m = metrics_of(tmp_path)
    assert (m["kpis"]["won_count"], m["kpis"]["lost_count"]) == (1, 1)
    assert m["kpis"]["median_cycle_days"] == 20.0  # B: created 06-01, won 06-21
    assert m["observed_funnel"]["folded"] == ["proposal", "negotiation", "retention"]


def test_a_stage_date_column_the_file_lacks_stops_the_run(tmp_path):
    with pytest.raises(UnusableInputError, match=r"'engaged_on' named in \[source.stage_dates\]"):
        metrics_of(tmp_path, MAPPING.replace('"engage_date"', '"engaged_on"'))
