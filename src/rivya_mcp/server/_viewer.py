"""The MCP Apps viewer (``io.modelcontextprotocol/ui``, SEP-1865): ``ui://rivya/viewer``.

Hosts that render MCP Apps show an image result in the conversation itself instead of folding it
into the collapsed tool-call box. This module is everything the server knows about that:

- the ``ui://`` resource (one self-contained HTML file shipped next to this module), with a CSP
  that allows no outside domain at all: the view reaches nothing but the host bridge;
- ``_meta.ui.resourceUri`` on the three tools whose results it shows (``viewer_meta``);
- per connection (``client_supports_apps``), an additive ``_meta`` block on those results with
  what the view needs that the structured content does not carry (prompt, the parameters that
  differ from the manifest's defaults, elapsed time, the cost of each action).

The tool bodies know nothing of it. A host without the extension gets the same results as before;
only ``tools/list`` carries the ``_meta.ui`` entry, which the spec has every host ignore unless it
renders apps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from mcp.server.apps import Apps, ResourceCsp, ResourcePermissions, client_supports_apps
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from rivya_mcp.journal import JournalEntry
from rivya_mcp.manifest import PROMPT_KEY, Manifest, Mode, Param
from rivya_mcp.server._call_failures import CallState
from rivya_mcp.server._tools import ToolBodies

VIEWER_URI = "ui://rivya/viewer"
# Tools whose results the viewer shows: the ones returning a task (one image, or the grid of a
# call that made several), and list_tasks (the gallery of earlier images).
VIEWER_TOOLS = ("generate_image", "edit_image", "get_task", "list_tasks")
GALLERY_TOOL = "list_tasks"
# Our own key in a result's _meta (the spec reserves io.modelcontextprotocol/ and friends).
META_KEY = "rivya.ai/viewer"
_MODE_OF_TOOL: dict[str, Mode] = {"generate_image": "generate", "edit_image": "edit"}
_TOOL_OF_MODE = {mode: tool for tool, mode in _MODE_OF_TOOL.items()}

Clock = Callable[[], datetime]
Body = Callable[[dict[str, Any], Context, CallState], Awaitable[CallToolResult]]


def viewer_html() -> str:
    return resources.files("rivya_mcp.server").joinpath("viewer", "viewer.html").read_text(encoding="utf-8")


def viewer_csp() -> ResourceCsp:
    """Every list empty: the view needs no domain at all (images arrive as data through the host's
    bridge), and a host builds its restrictive default CSP widened by nothing."""
    return ResourceCsp(connect_domains=[], resource_domains=[], frame_domains=[], base_uri_domains=[])


def viewer_extension() -> Apps:
    """The Apps extension carrying the viewer resource.

    ``build_server`` binds the tools itself, with ``viewer_meta`` and ``with_viewer``.
    """
    apps = Apps()
    apps.add_html_resource(
        VIEWER_URI,
        viewer_html(),
        name="viewer",
        title="Rivya image viewer",
        description="Shows a generated or edited image at full resolution, with its prompt, settings and "
        "credits, and lets the person run it again, change its settings or edit it.",
        csp=viewer_csp(),
        # "Copy path" writes the saved file's path to the clipboard; nothing else is asked for.
        permissions=ResourcePermissions(clipboard_write={}),
        prefers_border=True,
    )
    return apps


# --- what the view needs, as pure functions ------------------------------------------------------


def argument_value(param: Param, wire: Any) -> Any:
    """A wire value back in the tool-argument form (booleans are JSON booleans to agents)."""
    if param.is_boolean and isinstance(wire, str):
        return wire == "true"
    return wire


def _same(param: Param, value: Any, default: Any) -> bool:
    if param.type == "number" and isinstance(value, int | float) and isinstance(default, int | float):
        return float(value) == float(default)
    return bool(argument_value(param, value) == argument_value(param, default))


def arguments_from_params(manifest: Manifest, mode: Mode, params: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest parameters of a recorded request, as tool arguments, in table order."""
    return {p.key: argument_value(p, params[p.key]) for p in manifest.params_for(mode) if params.get(p.key) is not None}


def changed_from_defaults(manifest: Manifest, mode: Mode, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments whose value is not the manifest's documented default (what is worth showing)."""
    changed: dict[str, Any] = {}
    for param in manifest.params_for(mode):
        if param.key not in arguments:
            continue
        value = arguments[param.key]
        if param.default is None or not _same(param, value, param.default):
            changed[param.key] = value
    return changed


def choices(manifest: Manifest, mode: Mode) -> list[dict[str, Any]]:
    """The select parameters the view offers to change before running again (e.g. the aspect ratio)."""
    return [
        {"key": p.key, "options": list(p.options or ()), "default": p.default, "description": p.description}
        for p in manifest.params_for(mode)
        if p.type == "select" and not p.is_boolean and p.options
    ]


def edit_arguments(manifest: Manifest, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an edit of this image keeps: those still allowed in edit mode."""
    kept: dict[str, Any] = {}
    for param in manifest.params_for("edit"):
        value = arguments.get(param.key)
        if value is None:
            continue
        if param.options is not None and not param.is_boolean and str(value) not in param.options:
            continue
        if param.min is not None and isinstance(value, int | float) and value < param.min:
            continue
        if param.max is not None and isinstance(value, int | float) and value > param.max:
            continue
        kept[param.key] = value
    return kept


def elapsed_seconds(entry: JournalEntry, *, done: bool, now: datetime) -> float:
    end = entry.updated_at if done else now
    return round(max(0.0, (end - entry.created_at).total_seconds()), 1)


@dataclass(frozen=True)
class CallFacts:
    """What the call itself said, for a task the journal does not know (e.g. created elsewhere)."""

    tool: str
    arguments: Mapping[str, Any]


def viewer_data(
    manifest: Manifest,
    facts: CallFacts,
    entry: JournalEntry | None,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The ``_meta`` block for the view. Journal first (it knows get_task's prompt), then the call."""
    mode: Mode = _MODE_OF_TOOL.get(facts.tool, "generate")
    prompt: Any = facts.arguments.get(PROMPT_KEY)
    reference: Any = facts.arguments.get("reference")
    arguments = {p.key: facts.arguments[p.key] for p in manifest.params_for(mode) if p.key in facts.arguments}
    elapsed: float | None = None
    if entry is not None:
        mode = "edit" if entry.mode == "edit" else "generate"
        prompt = entry.prompt
        reference = entry.reference
        arguments = arguments_from_params(manifest, mode, entry.params)
        elapsed = elapsed_seconds(entry, done=entry.is_terminal, now=now)
    defaults = {p.key: argument_value(p, p.default) for p in manifest.params_for(mode) if p.default is not None}
    data: dict[str, Any] = {
        "mode": mode,
        "prompt": prompt,
        "reference": reference,
        "model_name": manifest.display_name,
        "arguments": {**defaults, **arguments},
        "changed": changed_from_defaults(manifest, mode, arguments),
        "elapsed_seconds": elapsed,
        "credits_per_image": manifest.base_credits,
        "choices": choices(manifest, mode),
        "run_again_tool": _TOOL_OF_MODE[mode],
        # A data URI is journaled shortened: such an edit cannot be repeated from here.
        "can_run_again": prompt is not None and (mode == "generate" or _repeatable(reference)),
        "edit_arguments": edit_arguments(manifest, {**defaults, **arguments}),
    }
    return data


def _repeatable(reference: Any) -> bool:
    return isinstance(reference, str) and bool(reference) and "…" not in reference


# --- binding -------------------------------------------------------------------------------------


def viewer_meta(tool: str) -> dict[str, Any] | None:
    """The tool's ``_meta`` (``ui.resourceUri``) if the viewer shows its results, else None."""
    return {"ui": {"resourceUri": VIEWER_URI}} if tool in VIEWER_TOOLS else None


def _augmented(result: CallToolResult, data: dict[str, Any]) -> CallToolResult:
    meta = dict(result.meta or {})
    meta[META_KEY] = data
    return result.model_copy(update={"meta": meta})


def _utc_now() -> datetime:
    return datetime.now(UTC)


def with_viewer(tool: str, body: Body, bodies: ToolBodies, *, clock: Clock = _utc_now) -> Body:
    """``body``, adding the view's data to its results when the client renders MCP Apps.

    Wraps the tool body (inside the failure guard) so the call's own state names the task even
    when structured output is switched off; a failure the guard turns into a result carries no
    viewer data, and the view shows its text.
    """
    if tool not in VIEWER_TOOLS:
        return body

    async def run(arguments: dict[str, Any], ctx: Context, state: CallState) -> CallToolResult:
        result = await body(arguments, ctx, state)
        if not client_supports_apps(ctx):
            return result  # exactly what a host without the extension always got
        if tool == GALLERY_TOOL:
            return _augmented(result, gallery_data(bodies.manifest, result, state.listing))
        return await for_viewer(
            result, tool, arguments, state.task_id, bodies, clock=clock, candidates=state.candidates
        )

    return run


def gallery_data(manifest: Manifest, result: CallToolResult, listing: dict[str, Any] | None) -> dict[str, Any]:
    """The ``_meta`` block of a list_tasks result: the view shows it as a gallery."""
    data: dict[str, Any] = {
        "view": "gallery",
        "model_name": manifest.display_name,
        "credits_per_image": manifest.base_credits,
    }
    if result.structured_content is None and listing is not None:
        # Structured output is switched off in the settings: the listing still reaches the view.
        data["listing"] = listing
    return data


async def for_viewer(
    result: CallToolResult,
    tool: str,
    arguments: Mapping[str, Any],
    task_id: str | None,
    bodies: ToolBodies,
    *,
    clock: Clock = _utc_now,
    candidates: list[dict[str, Any]] | None = None,
) -> CallToolResult:
    """``result`` of ``tool`` with the view's data, for a client that renders MCP Apps.

    Blocking calls (``with_viewer``) and the Tasks extension's follow-ups both come through here,
    so a task followed through ``tasks/get`` carries the same ``_meta`` as a blocking call.
    ``candidates``: every image of a call that made several (the view shows a grid to pick from).
    """
    entry = await (await bodies.runtime.ledger()).get(task_id) if task_id else None
    data = viewer_data(bodies.manifest, CallFacts(tool, arguments), entry, now=clock())
    if result.structured_content is None and entry is not None:
        # Structured output is switched off in the settings: the view still needs the task's state.
        data["task"] = _task_from_entry(entry)
    if candidates:
        data["candidates"] = candidates
        data["count"] = len(candidates)
    return _augmented(result, data)


def _task_from_entry(entry: JournalEntry) -> dict[str, Any]:
    public = entry.to_public_dict()
    saved = public["saved_paths"]
    return {
        "task_id": entry.task_id,
        "status": entry.status,
        "done": entry.is_terminal,
        "model": entry.model,
        "reserved_credits": entry.reserved_credits,
        "final_credits": entry.final_credits,
        "saved_path": saved[0] if saved else None,
        "error": public["error"],
    }
