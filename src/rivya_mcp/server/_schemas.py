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
# Server controls beside the model's parameters (never sent to Rivya as such): variations, and a
# region edit's mask or rectangle.
COUNT = "count"
MASK = "mask"
REGION = "region"
CONTROL_KEYS = frozenset({WAIT_SECONDS, IDEMPOTENCY_KEY, REFERENCE, COUNT, MASK, REGION, CONFIRM_CREDITS})
# The number of images a call may make side by side (``tasks.MAX_COUNT``).
MAX_COUNT = 4
# The most results a gallery page (list_tasks with previews) carries small previews for.
MAX_PREVIEWS_PER_PAGE = 24


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


def count_property(credits_per_image: int | float) -> JsonObject:
    per = _plain_number(float(credits_per_image))
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_COUNT,
        "default": 1,
        "description": (
            f"How many images to make side by side (variations to pick from), 1 to {MAX_COUNT}. Each is its own "
            f"task and costs {per} credits: count × {per} credits in all (e.g. {MAX_COUNT} images cost "
            f"{_plain_number(float(credits_per_image) * MAX_COUNT)}). The result holds one contact sheet numbered "
            "1..N and a link to each full image; if some fail, the others are still returned."
        ),
    }


def mask_property() -> JsonObject:
    return {
        "type": "string",
        "minLength": 1,
        "description": (
            "Edit only part of the reference: a mask image as a local path, http(s) URL, data URI, "
            "upload_reference file id or earlier task id (any size; it is stretched to the reference). White "
            "may change, black is kept, grey blends. The model still sees and may redraw the whole image; the "
            "server keeps its output only inside the mask (feathered a few pixels at the edge) and the "
            "reference's own pixels everywhere else, at the reference's size. Give mask or region, not both."
        ),
    }


def region_property() -> JsonObject:
    return {
        "type": "object",
        "properties": {
            "x": {"type": "integer", "minimum": 0, "description": "Left edge, in the reference's pixels."},
            "y": {"type": "integer", "minimum": 0, "description": "Top edge, in the reference's pixels."},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
        },
        "required": ["x", "y", "width", "height"],
        "additionalProperties": False,
        "description": (
            "Edit only a rectangle of the reference, in its own pixels (origin top-left): the same as a mask "
            "that is white there. The model still sees and may redraw the whole image; only this part of its "
            "output is kept, at the reference's size. Without aspectRatio, the one closest to the reference's "
            "is asked for."
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
            properties[MASK] = mask_property()
            properties[REGION] = region_property()
    properties[COUNT] = count_property(manifest.base_credits)
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
            "offset": {
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "description": "Skip this many (the next page starts at the next_offset a listing returns).",
            },
            "query": {
                "type": "string",
                "maxLength": 200,
                "description": "Only tasks whose prompt contains this text (case-insensitive).",
            },
            "previews": {
                "type": "boolean",
                "default": False,
                "description": (
                    "Add a small preview of each saved image (a few KB each, at most "
                    f"{MAX_PREVIEWS_PER_PAGE} per page) and a link to it: a gallery of earlier images."
                ),
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


class CandidateOut(_Out):
    """One image of a call that made several (``count``), numbered as on the contact sheet."""

    number: int
    task_id: str | None = None
    status: str
    done: bool
    saved_path: str | None = None
    resource_uri: str | None = None
    thumbnail_uri: str | None = Field(default=None, description="rivya://thumbnails/… small version")
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    reserved_credits: Credits | None = None
    final_credits: Credits | None = None
    reused: bool = False
    next_step: str | None = None
    error: TaskErrorOut | None = None


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
    thumbnail_uri: str | None = Field(default=None, description="rivya://thumbnails/… small version of it")
    source_url: str | None = Field(default=None, description="Rivya's result URL (expires)")
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    reused: bool = Field(default=False, description="True when an idempotency_key matched an earlier task")
    next_step: str | None = None
    error: TaskErrorOut | None = None
    # A call with count > 1: the fields above are its first image's (the first saved one, else the
    # first created); every image is in ``candidates``, numbered as on the contact sheet.
    count: int | None = Field(default=None, description="How many images the call made (count > 1 only)")
    call_credits: Credits | None = Field(
        default=None, description="What the whole call reserved: count × the credits per image"
    )
    candidates: list[CandidateOut] | None = None


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
    resource_uri: str | None = None
    thumbnail_uri: str | None = None
    idempotency_key: str | None = None
    error_code: str | None = None


class TaskListOutput(_Out):
    tasks: list[TaskSummary]
    count: int
    offset: int = 0
    next_offset: int | None = Field(default=None, description="Where the next page starts; null on the last page")
    query: str | None = None


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
