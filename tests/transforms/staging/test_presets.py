"""Export layouts as data: a mapping that names a preset extends it; each preset knows its
CRM's stages; stage values nobody maps are listed with the line that would."""

from __future__ import annotations

from dataclasses import fields

import polars as pl
import pytest

from flows.io.config import load_presets
from report_templates.narrative import stage_mapping_line
from schemas.vocabulary import PRESETS
from transforms.funnel_model import RunSettings, SourceSettings
from transforms.staging.checks import unknown_stages
from transforms.staging.layout import candidate_presets, effective_settings
from transforms.staging.parse import parse_stage
from transforms.staging.presets import Preset


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
