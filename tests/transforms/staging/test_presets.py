"""Export layouts as data: a mapping that names a preset extends it; each preset knows its
CRM's stages; stage values nobody maps are listed with the line that would."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import polars as pl
import pytest

from funnel_reports.flows.io.config import load_presets
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.report_templates.narrative import stage_mapping_line
from funnel_reports.schemas.vocabulary import PRESETS
from funnel_reports.transforms.funnel_model import FunnelModel, RunSettings, SourceSettings, Stage
from funnel_reports.transforms.staging.checks import unknown_stages, validate_inputs
from funnel_reports.transforms.staging.layout import candidate_presets, effective_settings
from funnel_reports.transforms.staging.parse import parse_stage
from funnel_reports.transforms.staging.presets import Preset


def test_a_mapping_laid_over_a_preset_keeps_every_setting_it_does_not_set():
    salesforce = load_presets()["salesforce"]
    assert salesforce.closed_before_created == "keep"
    custom = Preset(
        "custom",
        "custom mapping",
        {"opportunities": {"amount": ("Deal Value",)}},
        stages={"Quote Sent": "proposal"},
    )
    merged = salesforce.extended(custom)
    assert (merged.name, merged.label) == ("custom", "custom mapping")
    assert merged.closed_before_created == "keep"
    assert merged.date_order == salesforce.date_order
    assert merged.columns["opportunities"]["amount"] == ("Deal Value",)
    assert (
        merged.columns["opportunities"]["opportunity_id"]
        == (salesforce.columns["opportunities"]["opportunity_id"])
    )
    assert merged.stages == {**salesforce.stages, "Quote Sent": "proposal"}
    # every other field of the preset is kept as it was
    for field in fields(Preset):
        if field.name not in ("name", "label", "columns", "stages"):
            assert getattr(merged, field.name) == getattr(salesforce, field.name), field.name


def test_the_presets_are_the_vocabulary_s_layouts_in_detection_order():
    assert tuple(load_presets()) == PRESETS


@pytest.mark.parametrize("name", [p for p in PRESETS if p != "canonical"])
def test_every_setting_of_every_preset_survives_an_extension(name):
    preset = load_presets()[name]
    custom = Preset("custom", "mapping", {"opportunities": {"owner": ("Rep",)}})
    merged = preset.extended(custom)
    for field in fields(Preset):
        mine, theirs = getattr(preset, field.name), getattr(merged, field.name)
        if field.name == "columns":
            assert theirs == {**mine, "opportunities": {**mine["opportunities"], "owner": ("Rep",)}}
        elif field.name not in ("name", "label"):
            assert theirs == mine, field.name
    # and through funnel.toml: a mapping that names the preset keeps its value maps and knobs
    settings = RunSettings(
        source=SourceSettings(preset=name, columns={"opportunities": {"owner": ("Rep",)}})
    )
    [chosen] = candidate_presets(settings, load_presets())
    assert chosen.name == name
    assert (chosen.stages, chosen.closed_before_created, chosen.date_order) == (
        preset.stages,
        preset.closed_before_created,
        preset.date_order,
    )


DEFAULT_PIPELINES = {
    "pipedrive": {
        "Lead In": "lead",
        "Qualified": "qualified",
        "Contact Made": "qualified",
        "Needs Defined": "qualified",
        "Demo Scheduled": "proposal",
        "Proposal Made": "proposal",
        "Negotiations Started": "negotiation",
    },
    "hubspot": {
        "Appointment Scheduled": "lead",
        "Qualified To Buy": "qualified",
        "Presentation Scheduled": "proposal",
        "Decision Maker Bought-In": "proposal",
        "Contract Sent": "negotiation",
        "Closed Won": "won",
        "Closed Lost": "lost",
        "closedwon": "won",
        # the API's stage ids (hs_object_id, dealstage, ... exports)
        "appointmentscheduled": "lead",
        "qualifiedtobuy": "qualified",
        "presentationscheduled": "proposal",
        "decisionmakerboughtin": "proposal",
        "contractsent": "negotiation",
        "closedlost": "lost",
    },
    "dynamics": {
        "Qualify": "lead",
        "Develop": "qualified",
        "Propose": "proposal",
        "Close": "negotiation",
        "1-Qualify": "lead",
        "2-Develop": "qualified",
        "3-Propose": "proposal",
        "4-Close": "negotiation",
    },
    "salesforce": {
        "Prospecting": "lead",
        "Qualification": "qualified",
        "Needs Analysis": "qualified",
        "Value Proposition": "proposal",
        "Id. Decision Makers": "proposal",
        "Perception Analysis": "proposal",
        "Proposal/Price Quote": "proposal",
        "Negotiation/Review": "negotiation",
        "Closed Won": "won",
        "Closed Lost": "lost",
    },
    "template-zh": {
        "1.线索获取": "lead",
        "2.需求确认": "qualified",
        "3.方案报价": "proposal",
        "4.谈判推进": "negotiation",
        "5.成交签约": "won",
        "6.售后维护": "retention",
        "2、需求确认": "qualified",
        "商务谈判": "negotiation",
        "输单": "lost",
    },
}


@pytest.mark.parametrize("name", DEFAULT_PIPELINES)
def test_each_preset_knows_its_crms_default_stages(name):
    settings = effective_settings(RunSettings(), load_presets()[name])
    values = list(DEFAULT_PIPELINES[name])
    parsed = (
        pl.DataFrame({"v": values})
        .select(parse_stage(pl.col("v"), funnel=settings.funnel, options=settings.parse))
        .to_series()
        .to_list()
    )
    assert dict(zip(values, parsed, strict=True)) == DEFAULT_PIPELINES[name]


def test_unknown_stage_values_are_counted_with_the_line_that_maps_them():
    settings = effective_settings(RunSettings(), load_presets()["pipedrive"])
    raw = pl.DataFrame(
        {"stage": ["Needs Defined", "Discovery Call", " Discovery Call ", "Negotiatons", "", None]}
    )
    unknown = unknown_stages(raw, settings)
    assert unknown == [
        {"value": "Discovery Call", "rows": 2, "suggested_stage": None},
        {"value": "Negotiatons", "rows": 1, "suggested_stage": "negotiation"},
    ]
    assert [stage_mapping_line(u) for u in unknown] == [
        '"Discovery Call" = "<stage id, or lost>"',
        '"Negotiatons" = "negotiation"',
    ]


HUBSPOT_API = (  # a deals export through HubSpot's API: property names and stage ids
    "hs_object_id,dealname,dealstage,createdate,closedate,amount,pipeline,hs_lastmodifieddate,"
    "hubspot_owner_id,deal_currency_code,hs_is_closed_won,hs_is_closed,closed_lost_reason\n"
    "101,Big deal,closedwon,2024-06-01T09:00:00.000Z,2024-06-20T10:00:00.000Z,5000,default,"
    "2024-06-21T08:00:00.000Z,7001,USD,true,true,\n"
    "102,Small deal,contractsent,2024-06-05T09:00:00.000Z,2024-07-30T00:00:00.000Z,800,default,"
    "2024-06-21T08:00:00.000Z,7002,USD,false,false,\n"
    "103,Lost deal,closedlost,2024-06-02T09:00:00.000Z,2024-06-25T00:00:00.000Z,300,default,"
    "2024-06-25T08:00:00.000Z,7001,USD,false,true,Went with a competitor\n"
    "104,New deal,appointmentscheduled,2024-06-10T09:00:00.000Z,,,default,"
    "2024-06-10T09:00:00.000Z,7002,,false,false,\n"
)


def read_folder(tmp_path: Path, name: str, text: str):
    (tmp_path / name).write_text(text, encoding="utf-8")
    inputs = read_inputs(tmp_path, RunSettings())
    return inputs, validate_inputs(inputs)


def test_a_hubspot_api_export_is_detected_by_its_property_names(tmp_path):
    inputs, validated = read_folder(tmp_path, "deals.csv", HUBSPOT_API)
    assert inputs.preset.name == "hubspot"
    [file] = inputs.files
    assert {c: h[0] for c, h in file.match.columns.items()} == {
        "opportunity_id": "hs_object_id",
        "stage": "dealstage",
        "created_at": "createdate",
        "expected_close_date": "closedate",
        "closed_at": "closedate",
        "amount": "amount",
        "owner": "hubspot_owner_id",
        "currency": "deal_currency_code",
        "is_won": "hs_is_closed_won",
        "is_closed": "hs_is_closed",
        "lost_reason": "closed_lost_reason",
    }
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (4, 0)
    rows = {r["opportunity_id"]: r for r in opps.valid.to_dicts()}
    assert {i: (r["stage"], r["status"]) for i, r in rows.items()} == {
        "101": ("won", "won"),
        "102": ("negotiation", "open"),
        "103": ("lead", "lost"),  # a lost stage reads as the outcome
        "104": ("lead", "open"),
    }
    assert (rows["101"]["owner"], rows["101"]["amount"]) == ("7001", 5000.0)
    assert rows["103"]["lost_reason"] == "Went with a competitor"


DYNAMICS_HEADER = (
    "(Do Not Modify) Opportunity,(Do Not Modify) Row Checksum,(Do Not Modify) Modified On,"
    "Topic,Potential Customer,Est. Close Date,Est. Revenue,Actual Revenue,Actual Close Date,"
    "Status,Status Reason,{stage},Probability,Owner,Created On,Currency,Forecast category\n"
)
DYNAMICS_ROWS = [  # Topic, customer, phase, status, est./actual close, est./actual revenue, p
    "ERP rollout,Contoso,3-Propose,Open,9/30/2024,,50000,,60",
    "CRM licences,Fabrikam,4-Close,Won,6/30/2024,6/18/2024,20000,21000,100",
    "Support plan,Litware,2-Develop,Lost,7/15/2024,6/25/2024,8000,0,0",
    "Pilot,Adventure Works,1-Qualify,Open,12/1/2024,,3000,,10",
]


def dynamics_export(stage_header: str) -> str:
    """The export with its Pipeline Phase ("3-Propose"), or its Sales Stage ("Propose")."""
    lines = [DYNAMICS_HEADER.format(stage=stage_header)]
    for n, row in enumerate(DYNAMICS_ROWS, start=1):
        topic, customer, phase, status, est, actual, revenue, real, p = row.split(",")
        stage = phase if stage_header == "Pipeline Phase" else phase.split("-")[1]
        lines.append(
            f"a1f0c3e2-000{n},abc{n},6/26/2024 8:00 AM,{topic},{customer},{est},{revenue},{real},"
            f"{actual},{status},,{stage},{p},Dana Lee,6/{n}/2024 9:30 AM,,Best case\n"
        )
    return "".join(lines)


@pytest.mark.parametrize("stage_header", ["Pipeline Phase", "Sales Stage"])
def test_a_dynamics_365_opportunity_export_is_read_by_its_display_names(tmp_path, stage_header):
    inputs, validated = read_folder(tmp_path, "Opportunities.csv", dynamics_export(stage_header))
    assert inputs.preset.name == "dynamics"
    [file] = inputs.files
    assert {c: h[0] for c, h in file.match.columns.items()} == {
        "opportunity_id": "(Do Not Modify) Opportunity",
        "customer_name": "Potential Customer",
        "stage": stage_header,
        "status": "Status",
        "amount": "Est. Revenue",
        "won_amount": "Actual Revenue",
        "currency": "Currency",
        "created_at": "Created On",
        "expected_close_date": "Est. Close Date",
        "closed_at": "Actual Close Date",
        "owner": "Owner",
        "crm_probability": "Probability",
        "forecast_category": "Forecast category",
    }
    opps = validated["opportunities"]
    assert (opps.rows_valid, opps.rows_quarantined) == (4, 0)
    rows = {r["opportunity_id"][-1]: r for r in opps.valid.to_dicts()}
    assert {i: (r["stage"], r["status"]) for i, r in rows.items()} == {
        "1": ("proposal", "open"),
        "2": ("negotiation", "won"),  # won from the stage it was in, as Pipedrive's
        "3": ("qualified", "lost"),
        "4": ("lead", "open"),
    }
    assert {r["forecast_category"] for r in rows.values()} == {"best_case"}  # "Best case"
    assert rows["2"]["closed_at"].isoformat() == "2024-06-18T00:00:00+00:00"
    assert str(rows["1"]["expected_close_date"]) == "2024-09-30"
    assert rows["1"]["created_at"].isoformat() == "2024-06-01T09:30:00+00:00"
    # a won deal is worth what it closed at (Actual Revenue 21,000, not its estimate of 20,000);
    # a lost one keeps its estimate (its Actual Revenue of 0 is not an amount it was worth)
    assert (rows["2"]["amount"], rows["3"]["amount"]) == (21000.0, 8000.0)
    assert rows["1"]["crm_probability"] == 60.0


SALESFORCE_OPPORTUNITIES = (
    "Id,StageName,CreatedDate,CloseDate,Amount,IsClosed,IsWon\n"
    "006A,Prospecting,2024-06-01,2024-07-01,100,false,false\n"
    "006B,Negotiation/Review,2024-06-02,2024-07-02,200,false,false\n"
    "006C,Closed Won,2024-06-03,2024-06-20,300,true,true\n"
    "006D,Closed Lost,2024-06-04,2024-06-21,400,true,false\n"
)


def test_a_preset_on_a_funnel_of_its_own_reads_stages_by_that_funnels_names(tmp_path):
    """Salesforce's preset maps StageName to the default funnel's ids (Prospecting: lead).
    A funnel of three stages ending at won has none of them: its own aliases read the
    values, "Closed Lost" still means lost, and no deal carries a stage it lacks."""
    funnel = FunnelModel(
        (
            Stage(id="qualify", label_en="Qualify", label_zh="资格", aliases=("Prospecting",)),
            Stage(
                id="negotiate",
                label_en="Negotiate",
                label_zh="谈判",
                aliases=("Negotiation/Review",),
            ),
            Stage(id="won", label_en="Won", label_zh="赢单", aliases=("Closed Won",)),
        ),
        won_stage="won",
        named=True,
    )
    (tmp_path / "Opportunity.csv").write_text(SALESFORCE_OPPORTUNITIES, encoding="utf-8")
    inputs = read_inputs(tmp_path, RunSettings(funnel=funnel))
    assert inputs.preset.name == "salesforce"
    valid = validate_inputs(inputs)["opportunities"].valid
    assert dict(zip(valid["opportunity_id"], valid["stage"], strict=True)) == {
        "006A": "qualify",
        "006B": "negotiate",
        "006C": "won",
        "006D": "qualify",  # lost, its stage unknown: the first stage, as for every funnel
    }
