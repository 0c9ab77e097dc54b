"""metrics.json's JSON Schema (schemas/metrics.schema.json) and its definitions
(docs/metrics.md): every path of one is a row of the other, the documents real runs write
hold to the schema, and a key nobody documented fails."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from funnel_reports.schemas.metrics_schema import (
    CHECK_ENVIRONMENT,
    documented_paths,
    metrics_schema,
    schema_errors,
)

DEFINITIONS = Path(__file__).parents[2] / "docs" / "metrics.md"


def definition_rows() -> list[str]:
    """The key paths in the first column of docs/metrics.md's tables."""
    text = DEFINITIONS.read_text(encoding="utf-8")
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def sample_documents(tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("out")
    documents = {}
    for period in ("2026-09", "2026-Q3"):
        arguments = ["run", "--input", str(SAMPLE_DIR), "--config", str(SAMPLE_CONFIG)]
        assert main([*arguments, "--period", period, "--out", str(out)]) == 0
        documents[period] = json.loads((out / period / "metrics.json").read_text(encoding="utf-8"))
    return documents


def test_the_schema_is_a_valid_2020_12_schema():
    Draft202012Validator.check_schema(metrics_schema())


def test_every_path_of_the_schema_is_defined_in_docs_metrics_md_and_back():
    rows, paths = definition_rows(), documented_paths()
    assert len(rows) == len(set(rows)), "a key defined twice"
    assert sorted(set(paths) - set(rows)) == [], "in the schema, not defined in docs/metrics.md"
    assert sorted(set(rows) - set(paths)) == [], "defined in docs/metrics.md, not in the schema"


def test_every_object_of_the_schema_refuses_keys_it_does_not_name():
    def objects(node):
        if isinstance(node, dict):
            if "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(metrics_schema()))
    assert len(found) > 30
    assert all(node["additionalProperties"] is False for node in found)


def test_the_sample_documents_hold_to_the_schema(sample_documents):
    for period, document in sample_documents.items():
        assert schema_errors(document) == [], period


def test_an_undocumented_key_fails_naming_where_it_is(sample_documents):
    document = copy.deepcopy(sample_documents["2026-09"])
    document["kpis"]["won_amount_usd"] = 1.0
    document["forecast"]["backtest"]["periods"][0]["note"] = "x"
    assert schema_errors(document) == [
        "$.forecast.backtest.periods[0]: Additional properties are not allowed ('note' was "
        "unexpected)",
        "$.kpis: Additional properties are not allowed ('won_amount_usd' was unexpected)",
    ]


def test_a_key_every_document_holds_may_not_go_missing(sample_documents):
    document = copy.deepcopy(sample_documents["2026-Q3"])
    del document["window"]["timezone"]
    document["stages"][0]["label_en"] = None
    assert schema_errors(document) == [
        "$.stages[0].label_en: None is not of type 'string'",
        "$.window: 'timezone' is a required property",
    ]


def test_every_report_a_test_run_writes_is_checked_against_the_schema():
    """tests/conftest.py sets it for the whole session, subprocesses included."""
    assert os.environ.get(CHECK_ENVIRONMENT)


def test_a_run_that_checks_its_document_stops_at_a_key_the_schema_does_not_name(
    tmp_path, sample_documents
):
    from funnel_reports.flows.io.outputs import MetricsSchemaError, check_against_schema

    document = copy.deepcopy(sample_documents["2026-09"])
    document["extra"] = 1
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(MetricsSchemaError) as raised:
        check_against_schema(path)
    assert str(raised.value) == (
        f"{path}: breaks schemas/metrics.schema.json at $: Additional properties are not "
        "allowed ('extra' was unexpected)"
    )
