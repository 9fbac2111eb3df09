"""Published output schemas: flat (no ``$ref``, nullable as a type list) and equivalent to pydantic's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from pydantic import BaseModel

from rivya_mcp.server import (
    CreditsOutput,
    RawArguments,
    TaskListOutput,
    TaskOutput,
    UploadOutput,
    build_server,
    flat_output_schema,
)
from rivya_mcp.settings import Settings

STRING = {"type": "string"}
NULL = {"type": "null"}
POINT = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"], "title": "Point"}
POINT_REF = {"$ref": "#/$defs/Point"}
DEFS = {"Point": POINT}
ENUM = {"type": "string", "enum": ["a", "b"]}


@pytest.mark.parametrize(
    ("schema", "flat"),
    [
        # Optional scalar: anyOf with null becomes a type list; the field's own keywords stay.
        ({"anyOf": [STRING, NULL], "default": None, "title": "Name"},
         {"type": ["string", "null"], "default": None, "title": "Name"}),
        ({"anyOf": [NULL, {"type": "integer", "minimum": 0}]}, {"type": ["integer", "null"], "minimum": 0}),
        # A nested model is inlined where it is used, and $defs goes.
        ({"$defs": DEFS, "type": "object", "properties": {"p": POINT_REF}},
         {"type": "object", "properties": {"p": POINT}}),
        # An optional nested model: inlined, then made nullable.
        ({"$defs": DEFS, "properties": {"p": {"anyOf": [POINT_REF, NULL], "default": None}}},
         {"properties": {"p": {**POINT, "type": ["object", "null"], "default": None}}}),
        # Inside arrays too.
        ({"$defs": DEFS, "type": "array", "items": POINT_REF}, {"type": "array", "items": POINT}),
        # enum and const apply to null as well: left as they are.
        ({"anyOf": [ENUM, NULL]}, {"anyOf": [ENUM, NULL]}),
        ({"anyOf": [{"type": "string", "const": "a"}, NULL]}, {"anyOf": [{"type": "string", "const": "a"}, NULL]}),
        # Any other anyOf is not ours to rewrite.
        ({"anyOf": [STRING, {"type": "integer"}]}, {"anyOf": [STRING, {"type": "integer"}]}),
        ({"anyOf": [{"type": ["string", "integer"]}, NULL]}, {"anyOf": [{"type": ["string", "integer"]}, NULL]}),
        ({"type": "object"}, {"type": "object"}),
    ],
)  # fmt: skip
def test_flattening(schema: dict[str, Any], flat: dict[str, Any]) -> None:
    assert flat_output_schema(schema) == flat


def _pydantic_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = FuncMetadata(arg_model=RawArguments, output_model=model).output_schema
    assert schema is not None
    return schema


INSTANCES: dict[type[BaseModel], list[Any]] = {
    TaskOutput: [
        {"task_id": "task_1", "status": "queued", "done": False},
        {"task_id": "task_1", "status": "failed", "done": True, "error": {"code": "moderation", "message": "no"}},
        {"task_id": "task_1", "status": "failed", "done": True, "error": None, "width": None},
        {"task_id": "task_1", "status": "failed", "done": True, "error": {"code": 5}},
        {"task_id": "task_1", "status": "failed", "done": True, "error": {"other": "x"}},
        {"task_id": "task_1", "status": "succeeded", "done": True, "width": "wide"},
        {"task_id": "task_1", "status": "succeeded", "done": True, "surprise": 1},
        {"task_id": None, "status": "queued", "done": False},
        {"status": "queued", "done": False},
    ],
    UploadOutput: [
        {"file": {"id": "file_1", "url": "https://x", "size": 5, "extra": 1}, "reference_item": {}, "next_step": "x"},
        {"file": {"id": "file_1", "url": "https://x", "size": None}, "reference_item": {}, "next_step": "x"},
        {"file": {"id": "file_1", "url": "https://x", "size": "5"}, "reference_item": {}, "next_step": "x"},
        {"file": {"url": "https://x"}, "reference_item": {}, "next_step": "x"},
        {"file": None, "reference_item": {}, "next_step": "x"},
    ],
    TaskListOutput: [
        {"tasks": [{"status": "queued", "task_id": None}], "count": 1},
        {"tasks": [{"status": None}], "count": 1},
        {"tasks": [{"task_id": "task_1"}], "count": 1},
    ],
    CreditsOutput: [{"current_credits": 3}, {"current_credits": None}],
}


@pytest.mark.parametrize("model", list(INSTANCES), ids=lambda model: model.__name__)
def test_flat_schemas_accept_and_refuse_exactly_what_pydantics_do(model: type[BaseModel]) -> None:
    original = Draft202012Validator(_pydantic_schema(model))
    flat = Draft202012Validator(flat_output_schema(_pydantic_schema(model)))
    verdicts = [(original.is_valid(instance), flat.is_valid(instance)) for instance in INSTANCES[model]]
    assert all(a == b for a, b in verdicts), verdicts
    assert {a for a, _ in verdicts} == {True, False}  # the instances test both ways


@pytest.mark.anyio
async def test_published_output_schemas_are_flat(tmp_path: Path) -> None:
    async with Client(build_server(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))) as client:
        tools = (await client.list_tools()).tools
    published = {tool.name: tool.output_schema for tool in tools}
    assert all(schema is not None for schema in published.values()), published
    text = json.dumps(published)
    assert "$ref" not in text and "$defs" not in text and "anyOf" not in text
    assert published["get_task"] == flat_output_schema(_pydantic_schema(TaskOutput))
