"""prefect.yaml: each deployment points at the report flow with valid parameters and cron."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint

from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from funnel_reports.flows.report_flow import funnel_report
from funnel_reports.flows.requests import ReportRequest
from funnel_reports.flows.serve import SCHEDULES, report_deployments

REPO = Path(__file__).resolve().parents[2]


def test_monthly_and_quarterly_deployments_are_valid():
    document = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in document["deployments"]}
    assert set(deployments) == {"monthly", "quarterly"}
    requests = {}
    for name, deployment in deployments.items():
        flow = load_flow_from_entrypoint(deployment["entrypoint"])  # a module, not a path
        assert flow.name == funnel_report.name
        requests[name] = ReportRequest.model_validate(deployment["parameters"])
        for schedule in deployment["schedules"]:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
        assert (REPO / requests[name].input_dir).is_dir()
    assert requests["monthly"].period == "last-month"
    assert deployments["monthly"]["schedules"][0]["cron"] == "0 6 1 * *"
    assert requests["quarterly"].period == "last-quarter"
    assert deployments["quarterly"]["schedules"][0]["cron"] == "0 6 1 1,4,7,10 *"
    # funnel serve serves the same two
    for name, (period, cron, _) in SCHEDULES.items():
        assert requests[name].period == period
        assert deployments[name]["schedules"][0]["cron"] == cron


def test_served_deployments_take_the_time_zone_from_the_config(tmp_path):
    config = tmp_path / "funnel.toml"
    config.write_text('[source]\ntimezone = "America/Sao_Paulo"\n', encoding="utf-8")
    served = report_deployments(SAMPLE_DIR, tmp_path / "out", config, None, deliver=False)
    assert [d.name for d in served] == ["monthly", "quarterly"]
    for deployment in served:
        [schedule] = deployment.schedules
        assert schedule.schedule.timezone == "America/Sao_Paulo"
        request = ReportRequest.model_validate(deployment.parameters)
        assert request.deliver is False
        assert request.out_dir == (tmp_path / "out").resolve()
    [monthly, _] = report_deployments(SAMPLE_DIR, tmp_path, SAMPLE_CONFIG, "zh", deliver=False)
    assert monthly.schedules[0].schedule.cron == "0 6 1 * *"
    assert monthly.parameters["lang"] == "zh"
