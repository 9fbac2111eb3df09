"""Schema derivation, argument validation and wire params: one case per table row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rivya_mcp.manifest import (
    ArgumentError,
    check_wire_params,
    get_manifest,
    input_schema,
    to_wire_params,
    validate_arguments,
)

GOLDEN = Path(__file__).parent / "golden"
MAX = get_manifest("flux-kontext-max")


@pytest.mark.parametrize("model_id", ["flux-kontext-max", "flux-kontext-pro"])
@pytest.mark.parametrize("mode", ["generate", "edit"])
def test_derived_schema_equals_golden(model_id: str, mode: Any) -> None:
    derived = input_schema(get_manifest(model_id), mode)
    golden = json.loads((GOLDEN / f"{model_id}.{mode}.json").read_text(encoding="utf-8"))
    assert derived == golden


# One row per parameter of the table: (key, expected JSON Schema for generate, for edit).
ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "aspectRatio",
        {"type": "string", "enum": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"], "default": "16:9"},
        {"type": "string", "enum": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"], "default": "16:9"},
    ),
    (
        "outputFormat",
        {"type": "string", "enum": ["jpeg", "png"], "default": "jpeg"},
        {"type": "string", "enum": ["jpeg", "png"], "default": "jpeg"},
    ),
    ("enableTranslation", {"type": "boolean", "default": True}, {"type": "boolean", "default": True}),
    ("promptUpsampling", {"type": "boolean", "default": False}, {"type": "boolean", "default": False}),
    (
        "safetyTolerance",
        {"type": "integer", "minimum": 0, "maximum": 6, "default": 2},
        {"type": "integer", "minimum": 0, "maximum": 2, "default": 2},
    ),
    ("watermark", {"type": "string"}, {"type": "string"}),
]


@pytest.mark.parametrize(("key", "generate", "edit"), ROWS, ids=[r[0] for r in ROWS])
def test_each_table_row_derives_its_property(key: str, generate: dict[str, Any], edit: dict[str, Any]) -> None:
    for mode, expected in (("generate", generate), ("edit", edit)):
        prop = dict(input_schema(MAX, mode)["properties"][key])  # type: ignore[arg-type]
        assert prop.pop("description") == MAX.param(key).description
        assert prop == expected


def test_arguments_are_flat_and_keep_the_table_keys() -> None:
    schema = input_schema(MAX, "generate")
    assert list(schema["properties"]) == ["prompt", *(p.key for p in MAX.params)]
    assert schema["required"] == ["prompt"]
    assert schema["additionalProperties"] is False


VALID: list[tuple[str, dict[str, Any]]] = [
    ("generate", {"prompt": "a fox"}),
    ("generate", {"prompt": "a fox", "aspectRatio": "9:16", "outputFormat": "png"}),
    ("generate", {"prompt": "a fox", "enableTranslation": False, "promptUpsampling": True}),
    ("generate", {"prompt": "a fox", "safetyTolerance": 6, "watermark": "rivya"}),
    ("edit", {"prompt": "make it blue", "safetyTolerance": 0}),
]


@pytest.mark.parametrize(("mode", "args"), VALID)
def test_valid_arguments_pass(mode: Any, args: dict[str, Any]) -> None:
    assert validate_arguments(MAX, mode, args) == args


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("generate", {}, "'prompt' is required"),
    ("generate", {"prompt": ""}, "prompt"),
    ("generate", {"prompt": "   "}, "more than whitespace"),
    ("generate", {"prompt": "a", "aspectRatio": "5:4"}, "aspectRatio"),
    ("generate", {"prompt": "a", "outputFormat": "webp"}, "outputFormat"),
    ("generate", {"prompt": "a", "enableTranslation": "true"}, "enableTranslation"),
    ("generate", {"prompt": "a", "promptUpsampling": 1}, "promptUpsampling"),
    ("generate", {"prompt": "a", "safetyTolerance": 7}, "safetyTolerance"),
    ("generate", {"prompt": "a", "safetyTolerance": 2.5}, "safetyTolerance"),
    ("generate", {"prompt": "a", "watermark": 5}, "watermark"),
    ("generate", {"prompt": "a", "seed": 5}, "unknown argument"),
    ("edit", {"prompt": "a", "safetyTolerance": 3}, "safetyTolerance"),
]


@pytest.mark.parametrize(("mode", "args", "mentions"), INVALID)
def test_invalid_arguments_name_the_problem(mode: Any, args: dict[str, Any], mentions: str) -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(MAX, mode, args)
    assert mentions in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ArgumentError) as info:
        validate_arguments(MAX, "generate", {"prompt": "a", "aspectRatio": "5:4", "safetyTolerance": -1})
    assert len(info.value.problems) == 2


def test_wire_params_match_the_documented_minimal_request() -> None:
    # The seed page's minimal request, built from arguments as an agent sends them.
    params = to_wire_params(MAX, "generate", {"prompt": "x", "watermark": "mark"})
    assert params == {
        "aspectRatio": "16:9",
        "outputFormat": "jpeg",
        "enableTranslation": "true",
        "promptUpsampling": "false",
        "safetyTolerance": 2,
        "watermark": "mark",
    }
    assert list(params) == [p.key for p in MAX.params]


def test_wire_params_send_booleans_as_strings_and_append_references() -> None:
    item = {"url": "https://x/y.png", "kind": "image", "name": "y.png", "mimeType": "image/png"}
    params = to_wire_params(MAX, "edit", {"enableTranslation": False, "promptUpsampling": True}, references=[item])
    assert params["enableTranslation"] == "false"
    assert params["promptUpsampling"] == "true"
    assert params["referenceMediaItems"] == [item]
    assert "watermark" not in params


WIRE: list[tuple[str, dict[str, Any], list[str]]] = [
    ("generate", {"aspectRatio": "16:9", "enableTranslation": "true", "safetyTolerance": 6}, []),
    ("generate", {"enableTranslation": True}, []),  # the sandbox also accepts real booleans
    ("generate", {"aspectRatio": "5:4"}, ["params.aspectRatio"]),
    ("generate", {"outputFormat": "gif"}, ["params.outputFormat"]),
    ("generate", {"promptUpsampling": "yes"}, ["params.promptUpsampling"]),
    ("generate", {"safetyTolerance": "2"}, ["params.safetyTolerance"]),
    ("generate", {"safetyTolerance": 2.5}, ["params.safetyTolerance"]),
    ("edit", {"safetyTolerance": 4}, ["params.safetyTolerance"]),
    ("generate", {"watermark": 3}, ["params.watermark"]),
    ("generate", {"steps": 3}, ["params.steps"]),
    ("generate", {"referenceMediaItems": []}, []),
]


@pytest.mark.parametrize(("mode", "params", "faulty"), WIRE)
def test_check_wire_params(mode: Any, params: dict[str, Any], faulty: list[str]) -> None:
    problems = check_wire_params(MAX, mode, params)
    assert [p.split(":")[0] for p in problems] == faulty
