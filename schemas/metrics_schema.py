"""The JSON Schema of metrics.json (`schemas/metrics.schema.json`), and the check of a document
against it.

docs/metrics.md defines every key a document can hold; the schema says each key's type,
whether it may be null, which keys every document holds, and that no other key may appear.
The tests hold the two together (every path of the schema is a row of docs/metrics.md, and
every row a path of the schema), and every report a test run writes is checked: the suite
sets CHECK_ENVIRONMENT, and so may anyone who wants each run's document checked.

The schema was first drawn from docs/metrics.md (its structure and where null is allowed)
and from the documents every run of the test suite wrote (types, keys every document holds);
it is edited by hand since, beside docs/metrics.md: a new key is a row there and a property
here, or the tests fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from typing import Any

SCHEMA_FILE = files("funnel_reports.schemas") / "metrics.schema.json"
# set (to anything) to have every report check its metrics.json before it is published
CHECK_ENVIRONMENT = "FUNNEL_CHECK_METRICS_SCHEMA"


@cache
def metrics_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def schema_errors(document: Any) -> list[str]:
    """Where `document` (as written: JSON values) breaks the schema, each as `path: what`,
    sorted by path."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(metrics_schema())
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"{error.json_path}: {error.message}" for error in errors]


def schema_paths(node: dict[str, Any], path: str = "") -> Iterator[str]:
    """The key paths of a schema node as docs/metrics.md writes them: `a.b`, `a[]` for an
    array's items, `a.<name>` for a map's keys (its `x-key`); a `$ref` is a path of its own
    (docs/metrics.md gives it as "the keys of" the place it is defined)."""
    if path:
        yield path
    if "$ref" in node or "anyOf" in node:
        return
    if "items" in node:
        yield from schema_paths(node["items"], f"{path}[]")
    if "x-key" in node:
        yield from schema_paths(node["additionalProperties"], f"{path}.{node['x-key']}")
    for key, child in node.get("properties", {}).items():
        yield from schema_paths(child, f"{path}.{key}" if path else key)


def documented_paths() -> list[str]:
    """Every path of the schema, its definitions included at the place they are defined."""
    schema = metrics_schema()
    paths = list(schema_paths(schema))
    for definition in schema.get("$defs", {}).values():
        paths += list(schema_paths(definition, definition["x-path"]))[1:]
    return paths
