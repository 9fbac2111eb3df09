"""Tool input schemas (derived from the manifest at startup) and the declared output schemas."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from rivya_mcp.client import FAILED, PROCESSING, QUEUED, SUCCEEDED
from rivya_mcp.journal import ABANDONED, REJECTED, UNCONFIRMED, UNSUBMITTED
from rivya_mcp.manifest import PROMPT_KEY, Manifest, Mode, input_schema

JsonObject = dict[str, Any]


def whole_string(body: str) -> str:
    """A JSON Schema ``pattern`` that matches only the whole string, for every validator.

    Hosts check patterns with ECMA-262 regexes, where ``$`` (without the m flag) is the true end;
    our own validator (jsonschema) uses Python's ``re``, where ``$`` also matches before a final
    newline, so ``"key\\n"`` would pass ``^[!-~]+$``. ``\\Z`` is not ECMA. ``(?!\\n)`` after ``$`` is
    a no-op at a true end and refuses the one place where the two dialects differ.
    """
    return f"^(?:{body})$(?!\\n)"


# Hosts cut tool calls off near 60 s; a wait above this could lose the result to the host's timeout.
MAX_WAIT_SECONDS = 55
MAX_IDEMPOTENCY_KEY_CHARS = 128
# The key travels as the Idempotency-Key HTTP header: printable ASCII without spaces, or the
# request could not even be built (httpx refuses non-ASCII header values) and the call would fail
# as an internal error instead of telling the agent what to fix.
IDEMPOTENCY_KEY_PATTERN = whole_string("[!-~]+")
TASK_ID_PATTERN = whole_string(r"\S+")
LIST_LIMIT_MAX = 100
# The API's task states, then the journal's states of a create that never became a task.
TASK_STATUSES = (QUEUED, PROCESSING, SUCCEEDED, FAILED, UNSUBMITTED, REJECTED, UNCONFIRMED, ABANDONED)

WAIT_SECONDS = "wait_seconds"
IDEMPOTENCY_KEY = "idempotency_key"
REFERENCE = "reference"
CONFIRM_CREDITS = "confirm_credits"
CONTROL_KEYS = frozenset({WAIT_SECONDS, IDEMPOTENCY_KEY, REFERENCE, CONFIRM_CREDITS})


def wait_property(default: float) -> JsonObject:
    return {
        "type": "number",
        "minimum": 0,
        "maximum": MAX_WAIT_SECONDS,
        "default": _plain_number(min(default, MAX_WAIT_SECONDS)),
        "description": (
            "Seconds to wait for the image before returning (0 = return the task id at once). "
            "If the task is still running when the wait ends, call get_task with the task id."
        ),
    }


def idempotency_property() -> JsonObject:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_CHARS,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
        "description": (
            "Optional key of your choice (ASCII letters, digits and punctuation, no spaces; e.g. "
            "'fox-poster-1'). Re-sending a call with the same key "
            "returns the original task instead of paying for a new one; use it when retrying."
        ),
    }


def reference_property() -> JsonObject:
    return {
        "type": "string",
        "minLength": 1,
        "description": (
            "The image to edit: a local file path, an http(s) URL, a data URI, the file id "
            "upload_reference returned, or the id of an earlier task to edit its result. "
            "JPEG, PNG or WebP, at most 10 MB."
        ),
    }


def _plain_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def confirm_credits_property(threshold: float) -> JsonObject:
    return {
        "type": "number",
        "minimum": 0,
        "description": (
            f"Only for a call costing more than {threshold:g} credits, which this server asks the user to "
            "confirm: the credits the user agreed to spend (the amount the confirmation request named)."
        ),
    }


def generation_tool_schema(
    manifest: Manifest, mode: Mode, *, default_wait: float, confirm_above: float | None = None
) -> JsonObject:
    """``input_schema(manifest, mode)`` plus the tool's control arguments, flat (``confirm_credits``
    only on a server that asks for confirmation above ``confirm_above`` credits)."""
    base = copy.deepcopy(input_schema(manifest, mode))
    properties: JsonObject = {}
    for key, prop in base["properties"].items():
        properties[key] = prop
        if key == PROMPT_KEY and mode == "edit":
            properties[REFERENCE] = reference_property()
    properties[WAIT_SECONDS] = wait_property(default_wait)
    properties[IDEMPOTENCY_KEY] = idempotency_property()
    if confirm_above is not None:
        properties[CONFIRM_CREDITS] = confirm_credits_property(confirm_above)
    required = list(base["required"])
    if mode == "edit":
        required.append(REFERENCE)
    return {**base, "properties": properties, "required": required}


def upload_reference_schema() -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "source": {
                "type": "string",
                "minLength": 1,
                "description": "A local file path, an http(s) URL or a data URI of a JPEG, PNG or WebP (≤ 10 MB).",
            }
        },
        "required": ["source"],
        "additionalProperties": False,
    }


def get_task_schema(*, default_wait: float) -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "task_id": {
                "type": "string",
                # A task id is whatever the API returned (the docs only show examples); only
                # whitespace and control characters, which no id of any shape holds, are refused.
                "pattern": TASK_ID_PATTERN,
                "minLength": 1,
                "maxLength": 256,
                "description": "The task id returned by generate_image or edit_image.",
            },
            WAIT_SECONDS: wait_property(default_wait),
        },
        "required": ["task_id"],
        "additionalProperties": False,
    }


def get_credits_schema() -> JsonObject:
    return {"type": "object", "properties": {}, "additionalProperties": False}


def list_tasks_schema() -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "status": {
                "type": "string",
                "enum": list(TASK_STATUSES),
                "description": "Only tasks in this state (default: all).",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": LIST_LIMIT_MAX,
                "default": 20,
                "description": "How many tasks to return, most recent first.",
            },
        },
        "additionalProperties": False,
    }


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskErrorOut(_Out):
    code: str | None = None
    message: str | None = None


# The docs show credits as integers; JSON does not promise it, so a float passes through. One
# "number" in the published schema (an integer is a number), so the schema stays flat.
Credits = Annotated[int | float, WithJsonSchema({"type": "number"})]


class TaskOutput(_Out):
    """What generate_image, edit_image and get_task return as structured content."""

    task_id: str
    status: str = Field(description="queued, processing, succeeded or failed")
    done: bool = Field(description="True once the task succeeded or failed")
    model: str | None = None
    reserved_credits: Credits | None = None
    final_credits: Credits | None = None
    saved_path: str | None = Field(default=None, description="Absolute path of the full-resolution image")
    resource_uri: str | None = Field(default=None, description="rivya://images/… resource of the full image")
    source_url: str | None = Field(default=None, description="Rivya's result URL (expires)")
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    reused: bool = Field(default=False, description="True when an idempotency_key matched an earlier task")
    next_step: str | None = None
    error: TaskErrorOut | None = None


class FileOut(_Out):
    model_config = ConfigDict(extra="allow")
    id: str
    url: str
    kind: str | None = None
    name: str | None = None
    mime_type: str | None = None
    size: int | None = None


class UploadOutput(_Out):
    file: FileOut
    reference_item: dict[str, Any] = Field(description="Ready entry for params.referenceMediaItems")
    next_step: str


class CreditsOutput(_Out):
    current_credits: Credits
    # What the caller (over stdio: the server) spent today, UTC; with a daily budget, what is left.
    spent_today: Credits | None = None
    budget_per_day: Credits | None = None
    budget_left: Credits | None = None
    budget_resets_at: str | None = None


class TaskSummary(_Out):
    task_id: str | None = None
    status: str
    model: str | None = None
    prompt: str | None = None
    mode: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    reserved_credits: int | None = None
    final_credits: int | None = None
    saved_path: str | None = None
    idempotency_key: str | None = None
    error_code: str | None = None


class TaskListOutput(_Out):
    tasks: list[TaskSummary]
    count: int


ToolName = Literal["generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"]


def flat_output_schema(schema: JsonObject) -> JsonObject:
    """The same schema without ``$ref``/``$defs`` and with ``X | None`` as ``"type": [X, "null"]``.

    pydantic writes a nested model as a ``$ref`` into ``$defs`` and an optional field as
    ``anyOf: [X, {"type": "null"}]``. Both mean the same once inlined and merged, and hosts validate
    every structured result against this schema: a ``$ref`` costs the SDK's client a reference
    lookup per result and an ``anyOf`` a sub-validation per optional field (measured here: a
    ``TaskOutput`` result checks in ~70 µs instead of ~125 µs), and some hosts' schema handling
    knows neither. Definitions must not be
    recursive (ours are not: each is inlined where it is used).
    """
    definitions: JsonObject = schema.get("$defs", {})

    def flat(node: Any) -> Any:
        if isinstance(node, list):
            return [flat(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            inlined = flat(definitions[ref.removeprefix("#/$defs/")])
            return {**inlined, **{k: flat(v) for k, v in node.items() if k != "$ref"}}
        out = {key: flat(value) for key, value in node.items() if key != "$defs"}
        options = out.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
            other = options[0] if options[1] == {"type": "null"} else options[1]
            # enum and const constrain every type, null included: those stay an anyOf.
            if (
                isinstance(other, dict)
                and isinstance(other.get("type"), str)
                and not {"anyOf", "enum", "const"} & set(other)
            ):
                del out["anyOf"]
                return {**other, **out, "type": [other["type"], "null"]}
        return out

    flattened: JsonObject = flat(schema)
    return flattened
