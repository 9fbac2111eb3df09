"""Argument checks that run before anything reaches the API: invalid input never costs a credit."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


# Validators by the id of their schema (the schema is kept alongside, so the id stays its own).
# The tool schemas are built once per server; compiling a validator on every call cost ~0.5 ms.
_VALIDATORS: dict[int, tuple[JsonObject, Any]] = {}
_MAX_VALIDATORS = 64


def _validator(schema: JsonObject) -> Any:
    cached = _VALIDATORS.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    # Imported here: jsonschema costs ~30 ms at start-up and no call has been made yet then.
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    if len(_VALIDATORS) >= _MAX_VALIDATORS:
        _VALIDATORS.clear()
    _VALIDATORS[id(schema)] = (schema, validator)
    return validator


def schema_problems(schema: JsonObject, arguments: Mapping[str, Any]) -> list[str]:
    return [_describe(e) for e in sorted(_validator(schema).iter_errors(dict(arguments)), key=str)]


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
}


def coerce_scalars(schema: JsonObject, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``"2"``/``"true"``/``'{"x": 1}'`` into 2/true/an object where the schema wants one.

    Some hosts send every argument as a string; a strict refusal there would only make the agent
    retry. Anything that does not parse to the wanted type is left for validation to report.
    """
    coerced = dict(arguments)
    properties = schema.get("properties", {})
    for key, value in arguments.items():
        wanted = _JSON_TYPES.get(str(properties.get(key, {}).get("type")))
        if wanted is None or not isinstance(value, str):
            continue
        try:
            parsed = json.loads(value.strip().lower() if wanted == (bool,) else value)
        except (ValueError, RecursionError):
            continue
        is_bool = isinstance(parsed, bool)
        if isinstance(parsed, wanted) and (is_bool == (wanted == (bool,))):
            coerced[key] = parsed
    return coerced


def check(schema: JsonObject, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a non-manifest tool's arguments; raise ArgumentError listing every problem."""
    arguments = coerce_scalars(schema, arguments)
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
    arguments = coerce_scalars(tool_schema, arguments)
    control_names = {k for k in CONTROL_KEYS if k in tool_schema["properties"]}
    control = {k: v for k, v in arguments.items() if k in control_names}
    model_args = {k: v for k, v in arguments.items() if k not in control_names}
    problems: list[str] = []
    try:
        validate_arguments(manifest, mode, model_args)
    except ArgumentError as exc:
        problems.extend(exc.problems)
    problems.extend(schema_problems(_control_schema(tool_schema), control))
    if problems:
        raise ArgumentError(problems)
    return model_args, control


_CONTROL_SCHEMAS: dict[int, tuple[JsonObject, JsonObject]] = {}


def _control_schema(tool_schema: JsonObject) -> JsonObject:
    """The control arguments' part of a tool schema, built once per schema (so its validator is reused)."""
    cached = _CONTROL_SCHEMAS.get(id(tool_schema))
    if cached is not None and cached[0] is tool_schema:
        return cached[1]
    properties = tool_schema["properties"]
    control_names = [k for k in CONTROL_KEYS if k in properties]
    control_schema: JsonObject = {
        "type": "object",
        "properties": {k: properties[k] for k in control_names},
        "required": [k for k in tool_schema.get("required", []) if k in control_names],
    }
    if len(_CONTROL_SCHEMAS) >= _MAX_VALIDATORS:
        _CONTROL_SCHEMAS.clear()
    _CONTROL_SCHEMAS[id(tool_schema)] = (tool_schema, control_schema)
    return control_schema
