"""Derivations from a manifest: tool input schemas, argument validation, wire params.

The rules (also in manifests/README.md):

- ``select`` → ``enum`` of the options with the documented default; a select whose options are
  exactly ``true``/``false`` is a JSON ``boolean`` for agents and the strings ``"true"``/``"false"``
  on the wire, as the documented examples send them.
- ``number`` → ``minimum``/``maximum``; with ``step: 1`` it is an ``integer``.
- ``text`` → ``string``.
- A parameter may be narrowed per mode (``narrow.edit``); the edit tool declares the narrower range.
- Arguments are flat and keep the table's keys next to ``prompt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rivya_mcp.manifest._loader import ensure_meta_valid
from rivya_mcp.manifest._model import Manifest, Mode, Param

if TYPE_CHECKING:
    import jsonschema

# Documented request-level key for reference files (rivya-api.md §3.2); not a table row.
REFERENCE_ITEMS_KEY = "referenceMediaItems"
PROMPT_KEY = "prompt"

JsonObject = dict[str, Any]


class ArgumentError(ValueError):
    """Arguments do not match the model's parameter table. ``problems`` holds one line per fault."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _is_integer_step(param: Param) -> bool:
    return param.step is not None and float(param.step) == 1.0


def _number(value: float | None) -> float | int | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def param_property(param: Param) -> JsonObject:
    """The JSON Schema of one parameter row (already narrowed to a mode)."""
    prop: JsonObject
    if param.is_boolean:
        prop = {"type": "boolean"}
        if param.default is not None:
            prop["default"] = str(param.default) == "true"
    elif param.type == "select":
        prop = {"type": "string", "enum": list(param.options or ())}
        if param.default is not None:
            prop["default"] = param.default
    elif param.type == "number":
        prop = {"type": "integer" if _is_integer_step(param) else "number"}
        if param.min is not None:
            prop["minimum"] = _number(param.min)
        if param.max is not None:
            prop["maximum"] = _number(param.max)
        if param.step is not None and not _is_integer_step(param):
            prop["multipleOf"] = param.step
        if param.default is not None:
            prop["default"] = param.default
    else:
        prop = {"type": "string"}
        if param.max_length is not None:
            prop["maxLength"] = param.max_length
        if param.default is not None:
            prop["default"] = param.default
    prop["description"] = param.description
    return prop


def prompt_property(manifest: Manifest) -> JsonObject:
    """The JSON Schema of the prompt argument."""
    prop: JsonObject = {"type": "string", "minLength": 1, "description": manifest.prompt_description}
    if manifest.max_prompt_length is not None:
        prop["maxLength"] = manifest.max_prompt_length
    return prop


def input_schema(manifest: Manifest, mode: Mode) -> JsonObject:
    """The flat object schema of ``prompt`` plus the parameter table, for one mode.

    Tools add their own control arguments (references, wait time) on top of this.
    """
    properties: JsonObject = {PROMPT_KEY: prompt_property(manifest)}
    required = [PROMPT_KEY] if manifest.prompt_required else []
    for param in manifest.params_for(mode):
        properties[param.key] = param_property(param)
        if param.required:
            required.append(param.key)
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _describe(error: jsonschema.ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    message = str(error.message)
    if error.validator == "additionalProperties":
        return message.replace("Additional properties are not allowed", "unknown argument(s)")
    if error.validator == "required":
        return message.replace("is a required property", "is required")
    return f"{where}: {message}" if where else message


def validate_arguments(manifest: Manifest, mode: Mode, arguments: Mapping[str, Any]) -> JsonObject:
    """Check arguments against the derived schema; return them as a plain dict.

    Raises ArgumentError with every problem found, so an agent can fix them all at once.
    """
    import jsonschema  # deferred: a stdio host pays its import at every spawn, a first call barely notices

    ensure_meta_valid(manifest)
    schema = input_schema(manifest, mode)
    validator = jsonschema.Draft202012Validator(schema)
    problems = [_describe(e) for e in sorted(validator.iter_errors(dict(arguments)), key=str)]
    prompt = arguments.get(PROMPT_KEY)
    if isinstance(prompt, str) and prompt and not prompt.strip():
        problems.append("prompt: must contain more than whitespace")
    if problems:
        raise ArgumentError(problems)
    return dict(arguments)


def _wire_value(param: Param, value: Any) -> Any:
    if param.is_boolean:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if param.type == "number" and _is_integer_step(param):
        return int(value)
    return value


def to_wire_params(
    manifest: Manifest,
    mode: Mode,
    arguments: Mapping[str, Any],
    *,
    references: Sequence[Mapping[str, Any]] | None = None,
) -> JsonObject:
    """The ``params`` object of a create request, in table order.

    Every parameter with a value (given, or the documented default) is sent explicitly, as in the
    documented minimal request, so the result never depends on an upstream default changing.
    Parameters with neither (e.g. ``watermark``) are left out.
    """
    ensure_meta_valid(manifest)
    params: JsonObject = {}
    for param in manifest.params_for(mode):
        value = arguments.get(param.key, param.default)
        if value is None:
            continue
        params[param.key] = _wire_value(param, value)
    if references:
        params[REFERENCE_ITEMS_KEY] = [dict(item) for item in references]
    return params


def check_wire_params(manifest: Manifest, mode: Mode, params: Mapping[str, Any]) -> list[str]:
    """Problems with a wire ``params`` object, as the upstream API would judge them.

    Used by the sandbox. Booleans are accepted as the documented strings and, leniently, as JSON
    booleans (the docs do not say whether real booleans are refused; the sandbox accepts both).
    Unknown keys are refused (the sandbox's choice: the docs list the allowed keys).
    """
    ensure_meta_valid(manifest)
    problems: list[str] = []
    by_key = {p.key: p for p in manifest.params_for(mode)}
    for key, value in params.items():
        if key == REFERENCE_ITEMS_KEY:
            continue
        param = by_key.get(key)
        if param is None:
            problems.append(f"params.{key}: unknown parameter for {manifest.id}")
            continue
        problem = _check_wire_value(param, value)
        if problem:
            problems.append(f"params.{key}: {problem}")
    for param in by_key.values():
        if param.required and param.key not in params:
            problems.append(f"params.{param.key}: is required")
    return problems


def _check_wire_value(param: Param, value: Any) -> str | None:
    if param.type == "select":
        options = param.options or ()
        if param.is_boolean and isinstance(value, bool):
            return None
        if not isinstance(value, str) or value not in options:
            return f"must be one of {', '.join(options)}"
        return None
    if param.type == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if param.min is not None and value < param.min:
            return f"must be at least {_number(param.min)}"
        if param.max is not None and value > param.max:
            return f"must be at most {_number(param.max)}"
        if _is_integer_step(param) and not float(value).is_integer():
            return "must be a whole number"
        return None
    if not isinstance(value, str):
        return "must be a string"
    if param.max_length is not None and len(value) > param.max_length:
        return f"must be at most {param.max_length} characters"
    return None
