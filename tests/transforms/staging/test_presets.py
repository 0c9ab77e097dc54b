"""Export layouts as data: a mapping that names a preset extends it."""

from __future__ import annotations

from dataclasses import fields

from flows.io.config import load_presets
from schemas.vocabulary import PRESETS
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
