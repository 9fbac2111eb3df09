"""Building the MCPServer: manifest-derived tools, resources, and the client/journal runtime."""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from rivya_mcp import __version__
from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.journal import TaskJournal
from rivya_mcp.manifest import Manifest, get_manifest
from rivya_mcp.server import _results as results
from rivya_mcp.server._call_failures import CallState, call_failure
from rivya_mcp.server._resources import register_resources
from rivya_mcp.server._schemas import (
    CreditsOutput,
    JsonObject,
    TaskListOutput,
    TaskOutput,
    UploadOutput,
    flat_output_schema,
    generation_tool_schema,
    get_credits_schema,
    get_task_schema,
    list_tasks_schema,
    upload_reference_schema,
)
from rivya_mcp.server._tasks_ext import TasksExtension
from rivya_mcp.server._tools import ToolBodies
from rivya_mcp.server._viewer import viewer_extension, viewer_meta, with_viewer
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import MAX_COUNT, Caller, Recovery, Runtime, TaskService

log = logging.getLogger(__name__)

Body = Callable[[dict[str, Any], Context, CallState], Awaitable[CallToolResult]]
# Who sent the request being handled (the transport knows: an identity's person, or the server's).
CallerSource = Callable[[], Awaitable[Caller]]

SERVER_NAME = "rivya"

# Each built server's runtime, for what sits beside the MCP layer (the HTTP health checks).
_RUNTIMES: weakref.WeakKeyDictionary[MCPServer[Runtime], Runtime] = weakref.WeakKeyDictionary()


def runtime_of(server: MCPServer[Runtime]) -> Runtime:
    return _RUNTIMES[server]


class RawArguments(ArgModelBase):
    """Hands the arguments over untouched: our own validation (the manifest's) runs in the tool.

    The SDK would otherwise validate against a pydantic model of a Python signature, with its own
    messages and its own idea of the schema; ours is derived from the manifest.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.model_extra or {})}


def _annotations(*, read_only: bool, idempotent: bool, title: str) -> ToolAnnotations:
    return ToolAnnotations(
        title=title,
        read_only_hint=read_only,
        destructive_hint=False,
        idempotent_hint=idempotent,
        open_world_hint=True,
    )


def _guard(name: str, body: Body) -> Callable[..., Awaitable[CallToolResult]]:
    """Every failure the agent can act on becomes an isError result; a crash is logged, not leaked."""

    async def run(arguments: dict[str, Any], ctx: Context) -> CallToolResult:
        state = CallState()
        try:
            return await body(arguments, ctx, state)
        except Exception as exc:
            failed, unexpected = call_failure(exc, state)
            if unexpected:
                log.exception("tool %s failed unexpectedly", name)
            else:
                log.info("tool %s: %s", name, failed.code)
            return results.failure(failed)

    run.__name__ = name
    return run


def acting_for_caller(runtime: Runtime, caller: CallerSource) -> ServerMiddleware[Any]:
    """Middleware: every request (a tool call, a resource read, ``tasks/*``, a listen) is handled
    for the caller who sent it: their rows, their handles, their images, their key."""

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        async with runtime.acting_for(await caller()):
            return await call_next(ctx)

    return middleware


def descriptions(manifest: Manifest) -> dict[str, str]:
    per = manifest.base_credits
    cost = (
        f"Costs {per} credits per image: count (1-{MAX_COUNT}, default 1) images side by side cost count × {per} "
        f"credits (up to {per * MAX_COUNT})"
    )
    return {
        "generate_image": (
            f"Create an image from a text prompt with {manifest.display_name}. {cost}, charged once per image "
            "(reuse idempotency_key when retrying). Waits up to wait_seconds, sending progress, then returns "
            "the saved file path, a small preview and a resource link (with count > 1: one contact sheet numbered "
            "1..N and a link per image, to pick from); if still running it returns the task id to finish with "
            "get_task. To change an existing image use edit_image instead."
        ),
        "edit_image": (
            f"Change an existing image following a prompt (e.g. 'make it night', 'add a hat') with "
            f"{manifest.display_name}. {cost}. reference may be a local path, URL, data URI, a file id from "
            "upload_reference, or an earlier task id to edit its result. To change only part of it, give mask "
            "(white = may change) or region ({x, y, width, height} in the reference's pixels): the model still "
            "sees and may redraw the whole image, but only the masked part of its output is kept, composited "
            "onto the reference at the reference's own size. Waits and returns like generate_image."
        ),
        "upload_reference": (
            "Upload a reference image (local path, URL or data URI; JPEG/PNG/WebP ≤ 10 MB) and get a file id "
            "for edit_image. Free. Only needed to reuse one image in several edits; edit_image uploads by itself."
        ),
        "get_task": (
            "Check a generation task by id and, if it is still running, wait for it (with progress). When it "
            "succeeded, returns the image like generate_image (saving it if needed). Free."
        ),
        "get_credits": (
            f"Show the Rivya credit balance and the credits spent today (with the daily budget left, if the server "
            f"sets one). Free. Each image costs {per} credits."
        ),
        "list_tasks": (
            "List recent tasks created by this server (id, status, prompt, saved file), newest first, in pages "
            "(offset), optionally only those whose prompt contains a text (query); with previews, a small preview "
            "of each saved image: a gallery of earlier images to edit again. Free."
        ),
    }


def build_tool_bodies(
    settings: Settings,
    *,
    client: AsyncRivyaClient | None = None,
    journal: TaskJournal | None = None,
    local_paths: bool = True,
) -> ToolBodies:
    """The six tools' bodies on a new runtime, before the MCP layer (``build_server`` wraps them).

    Also how bench/upload.py times the upload tool's own work apart from the MCP call around it.
    """
    manifest = get_manifest(settings.model)
    runtime = Runtime(settings, client=client, journal=journal, local_paths=local_paths)
    schemas: dict[str, JsonObject] = {
        "generate_image": generation_tool_schema(
            manifest, "generate", default_wait=settings.wait_seconds, confirm_above=settings.confirm_above_credits
        ),
        "edit_image": generation_tool_schema(
            manifest, "edit", default_wait=settings.wait_seconds, confirm_above=settings.confirm_above_credits
        ),
        "upload_reference": upload_reference_schema(),
        "get_task": get_task_schema(default_wait=settings.wait_seconds),
        "get_credits": get_credits_schema(),
        "list_tasks": list_tasks_schema(),
    }
    return ToolBodies(TaskService(runtime), manifest, schemas)


def build_server(
    settings: Settings,
    *,
    client: AsyncRivyaClient | None = None,
    journal: TaskJournal | None = None,
    local_paths: bool = True,
    bodies: ToolBodies | None = None,
    caller: CallerSource | None = None,
) -> MCPServer[Runtime]:
    """The MCP server for ``settings``. Nothing is opened or created until a session starts.

    ``local_paths=False`` (HTTP transports) refuses local-file references unless
    ``settings.read_dirs`` names the directories they may come from. ``bodies``: tool bodies
    built already (the HTTP app shares them with its webhook route); the other arguments are
    then unused. ``caller`` says who sent each request (HTTP identity); without it every request
    is the server's one person.
    """
    if bodies is None:
        bodies = build_tool_bodies(settings, client=client, journal=journal, local_paths=local_paths)
    runtime, manifest, schemas = bodies.runtime, bodies.manifest, bodies.schemas
    # Runs when the first session starts (never here: building stays free of side effects).
    recovery = Recovery(bodies.service)
    runtime.set_recovery(recovery, sweeper=recovery.sweep)
    texts = descriptions(manifest)
    specs: list[tuple[str, str, Body, type[BaseModel], ToolAnnotations]] = [
        ("generate_image", "Generate image", bodies.generate_image, TaskOutput,
         _annotations(read_only=False, idempotent=False, title="Generate image")),
        ("edit_image", "Edit image", bodies.edit_image, TaskOutput,
         _annotations(read_only=False, idempotent=False, title="Edit image")),
        ("upload_reference", "Upload reference image", bodies.upload_reference, UploadOutput,
         _annotations(read_only=False, idempotent=False, title="Upload reference image")),
        ("get_task", "Get task", bodies.get_task, TaskOutput,
         _annotations(read_only=True, idempotent=True, title="Get task")),
        ("get_credits", "Get credits", bodies.get_credits, CreditsOutput,
         _annotations(read_only=True, idempotent=True, title="Get credits")),
        ("list_tasks", "List tasks", bodies.list_tasks, TaskListOutput,
         _annotations(read_only=True, idempotent=True, title="List tasks")),
    ]  # fmt: skip
    structured = settings.structured_output
    # One FuncMetadata per output model: building one generates the model's JSON schema (~2 ms
    # each at start-up), and three tools share TaskOutput.
    metadata: dict[type[BaseModel] | None, FuncMetadata] = {}
    for *_, output, _ in specs:
        # With structured output off there is no outputSchema either (some hosts then drop images).
        model = output if structured else None
        if model not in metadata:
            metadata[model] = FuncMetadata(arg_model=RawArguments, output_model=model)
            published = metadata[model].output_schema
            if published is not None:
                # What tools/list publishes and hosts check every result against; results themselves
                # are still validated by the SDK against the pydantic model.
                metadata[model].output_schema = flat_output_schema(published)
    tools = [
        Tool(
            # MCP Apps: the viewer's _meta.ui on the image tools, its data on results for hosts rendering it.
            fn=_guard(name, with_viewer(name, body, bodies)),
            meta=viewer_meta(name),
            name=name,
            title=title,
            description=texts[name],
            parameters=schemas[name],
            fn_metadata=metadata[output if structured else None],
            is_async=True,
            context_kwarg="ctx",
            annotations=annotations,
        )
        for name, title, body, output, annotations in specs
    ]

    # The MCP Tasks extension: protocol task handles for generate/edit, followed by the tasks layer.
    tasks = TasksExtension(bodies)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        # The session's follow-ups stop with it, before the runtime may close the client (the
        # journal keeps their handles; a tasks/get resumes them).
        async with runtime.session(), tasks.hosting():
            yield runtime

    server: MCPServer[Runtime] = MCPServer(
        SERVER_NAME,
        title="Rivya image generation",
        version=__version__,
        instructions=(
            f"Generate and edit images with Rivya's {manifest.display_name} ({manifest.base_credits} credits per "
            "image). Use generate_image for new images and edit_image to change one (reference = path, URL, "
            "file id or an earlier task id). Long tasks return a task id: finish them with get_task rather than "
            "generating again. Images are saved to disk; results give the path, a preview and a resource link."
        ),
        tools=tools,
        lifespan=lifespan,
        extensions=[tasks, viewer_extension()],
        # Outermost the caller: a listen, too, is handled for the person who opened it.
        middleware=[*([acting_for_caller(runtime, caller)] if caller is not None else []), tasks.listen_gate],
        log_level=_sdk_log_level(settings.log_level),
    )
    register_resources(server, bodies)
    _RUNTIMES[server] = runtime
    return server


def _sdk_log_level(level: str) -> Any:
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"
