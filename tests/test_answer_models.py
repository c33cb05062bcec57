"""The answer models (engine.service.models) and their schema generator (engine.service.schema):
a drift between what the engine returns and what the document says is refused, not sent."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.service import cluster_models, models
from engine.service.openapi import document
from engine.service.schema import ModelError, build, dump, json_schema

VOTE = {"distance": 0.1, "decision": "yes"}
MATCH = {"id": "a" * 64, "name": "n", "distance": 0.1, "decision": "accepted", "cluster": 3, "tags": [],
         "algorithms": {"phash": VOTE}}
ITEM = {"item": "b" * 32, "query": "c" * 64, "query_name": "q", "match": "a" * 64, "match_name": "m",
        "distance": 0.2, "algorithms": {"orb": {**VOTE, "reason": "same-template"}}, "recorded": 1.5,
        "verdict": None}


@pytest.mark.parametrize("change, message", [
    ({"colour": "red"}, "unknown field"),
    ({"cluster": "3"}, "cluster: expected"),  # the drift of the old document: a string cluster
    ({"cluster": True}, "cluster: expected"),
    ({"decision": "maybe"}, "decision"),
    ({"algorithms": {"phash": {"distance": 0.1}}}, "missing field 'decision'"),
    ({"tags": "a,b"}, "tags: expected"),
])
def test_build_refuses_what_the_model_does_not_allow(change, message):
    with pytest.raises(ModelError, match=message):
        build(models.Match, {**MATCH, **change})


def test_build_refuses_a_missing_field():
    with pytest.raises(ModelError, match="missing field 'cluster'"):
        build(models.Match, {k: v for k, v in MATCH.items() if k != "cluster"})


def test_optional_fields_are_left_out_and_nullable_ones_sent_as_null():
    match = dump(build(models.Match, MATCH))
    assert "reason" not in match and match["cluster"] == 3
    item = dump(build(models.ReviewItem, ITEM))
    assert item["verdict"] is None and "reviewed" not in item
    assert dump(build(models.Match, {**MATCH, "reason": "same-template"}))["reason"] == "same-template"


def test_the_generated_schema_accepts_the_dump_and_rejects_drifts():
    schemas = json.dumps(document()["components"]["schemas"])
    definitions = json.loads(schemas.replace("#/components/schemas/", "#/$defs/"))

    def valid(name: str, value: dict) -> bool:
        schema = {"$defs": definitions, "$ref": f"#/$defs/{name}"}
        return not list(Draft202012Validator(schema).iter_errors(value))

    assert valid("ReviewItem", dump(build(models.ReviewItem, ITEM)))
    assert valid("ReviewItem", {**ITEM, "verdict": "accepted", "reviewed": 2.0})
    assert not valid("ReviewItem", {**ITEM, "verdict": "maybe"})
    assert not valid("Match", {**MATCH, "cluster": "3"})
    assert not valid("Match", {**MATCH, "extra": 1})
    assert not valid("Match", {**MATCH, "reason": None})  # optional: left out, never null


def test_every_model_is_in_the_document():
    declared = {name for module in (models, cluster_models)
                for name, value in inspect.getmembers(module, dataclasses.is_dataclass)}
    assert declared == set(document()["components"]["schemas"])


def test_schema_of_a_model_names_its_required_fields():
    schema = json_schema(models.Job)
    assert "results" not in schema["required"] and "error" not in schema["required"]
    assert {"job", "status", "total", "done"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


def test_json_bodies_are_sent_only_through_the_models():
    """A view calling ``jsonify`` itself would send a body no model checks (the document is the
    one exception: it is not an answer model)."""
    service = Path(models.__file__).parent
    callers = {p.name for p in service.glob("*.py") if "jsonify(" in p.read_text()}
    assert callers == {"models.py", "openapi.py"}
