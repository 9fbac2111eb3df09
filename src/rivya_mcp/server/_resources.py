"""Resources: the saved full-resolution images, their thumbnails and the task list.

Images are served from the output directory only, by bare file name: no separators, no
traversal, no symlink escapes (``resolve_served_file``). Replicas sharing a database also serve
the images any of them saved, from its ``images`` table (looked up by the same checked name).
And only to whom they belong: a person reads the images their own tasks saved, never another's
(``TaskJournal.may_serve_image``); to anyone else the name does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from rivya_mcp.server._results import IMAGE_URI_PREFIX, TASKS_URI
from rivya_mcp.server._tools import ToolBodies
from rivya_mcp.server.studio import register_thumbnails
from rivya_mcp.tasks import MIME_BY_EXTENSION, SAFE_NAME, Runtime, current_caller, resolve_served_file

RECENT_TASKS_IN_RESOURCE = 50


def _image_reader(output_dir: Path, extension: str, runtime: Runtime) -> Callable[[str], Awaitable[bytes]]:
    async def read_image(name: str) -> bytes:
        filename = f"{name}.{extension}"
        if not await _may_read(runtime, filename):
            raise ResourceNotFoundError(f"No saved image named {filename!r} in the output directory.")
        path = resolve_served_file(output_dir, filename)
        if path is not None:
            return await anyio.Path(path).read_bytes()
        if runtime.coordinator is not None and SAFE_NAME.match(filename):
            shared = await runtime.coordinator.image(filename)
            if shared is not None:
                return shared[1]
        raise ResourceNotFoundError(f"No saved image named {filename!r} in the output directory.")

    return read_image


async def _may_read(runtime: Runtime, filename: str) -> bool:
    try:
        ledger = await runtime.ledger()
    except Exception:
        # No journal to tell whose it is: the server's one person still reads its folder, a person nothing.
        return not current_caller().confined
    return await ledger.may_serve_image(filename)


def register_resources(server: MCPServer[Any], bodies: ToolBodies) -> None:
    output_dir = bodies.settings.output_dir

    # One template per extension so each advertises (and serves) the right MIME type.
    for extension in ("jpg", "png", "webp"):
        mime = MIME_BY_EXTENSION[extension]
        server.resource(
            IMAGE_URI_PREFIX + "{name}." + extension,
            name=f"saved-image-{extension}",
            title=f"Saved {extension.upper()} image",
            description="A full-resolution image this server saved (linked from generate/edit results).",
            mime_type=mime,
        )(_image_reader(output_dir, extension, bodies.runtime))

    # Small versions of the same images, for galleries and grids (never the full image).
    register_thumbnails(server, output_dir, bodies.runtime)

    async def read_tasks() -> str:
        return (await bodies.task_list(status=None, limit=RECENT_TASKS_IN_RESOURCE)).model_dump_json(indent=2)

    server.resource(
        TASKS_URI,
        name="tasks",
        title="Recent tasks",
        description="The most recent generation tasks from this server's journal (same as list_tasks).",
        mime_type="application/json",
    )(read_tasks)
