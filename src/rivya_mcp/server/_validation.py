"""Argument checks that run before anything reaches the API: invalid input never costs a credit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from rivya_mcp.manifest import ArgumentError, Manifest, Mode, validate_arguments
from rivya_mcp.server._schemas import CONTROL_KEYS, JsonObject


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        return str(error.message).replace("Additional properties are not allowed", "unknown argument(s)")
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    return f"{where}: {error.message}" if where else error.message


def schema_problems(schema: JsonObject, arguments: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [_describe(e) for e in sorted(validator.iter_errors(dict(arguments)), key=str)]


def check(schema: JsonObject, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a non-manifest tool's arguments; raise ArgumentError listing every problem."""
    problems = schema_problems(schema, arguments)
    if problems:
        raise ArgumentError(problems)
    return dict(arguments)


def check_generation(
    manifest: Manifest, mode: Mode, tool_schema: JsonObject, arguments: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split into (model arguments, control arguments) and validate both, reporting all problems.

    Model arguments go through the manifest's own ``validate_arguments`` so its messages are the
    ones the agent sees; control arguments (wait, idempotency key, reference) are checked against
    their part of the tool schema.
    """
    properties = tool_schema["properties"]
    control_names = {k for k in CONTROL_KEYS if k in properties}
    control = {k: v for k, v in arguments.items() if k in control_names}
    model_args = {k: v for k, v in arguments.items() if k not in control_names}
    problems: list[str] = []
    try:
        validate_arguments(manifest, mode, model_args)
    except ArgumentError as exc:
        problems.extend(exc.problems)
    control_schema = {
        "type": "object",
        "properties": {k: properties[k] for k in control_names},
        "required": [k for k in tool_schema.get("required", []) if k in control_names],
    }
    problems.extend(schema_problems(control_schema, control))
    if problems:
        raise ArgumentError(problems)
    return model_args, control
