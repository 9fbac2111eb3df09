"""A way back to earlier images: small thumbnails of saved images, and the journal's listing with them.

- ``rivya://thumbnails/{name}``: a resource template serving a JPEG of at most ``THUMBNAIL_SIDE``
  pixels of the saved image ``name`` (never the full image), from the output folder only, by
  the same checked bare name as ``rivya://images/…``. The viewer's gallery and grid read these.
- ``list_tasks`` with ``previews: true`` adds a smaller one per listed image (and a link to it),
  so a host without the Apps extension still shows a gallery in the conversation.

Thumbnails are remembered by what one stat says of the file (as previews are), so paging back
and forth in a gallery decodes each image once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.types import ContentBlock, ImageContent, ResourceLink

from rivya_mcp.server._preview import FileKey, Preview, file_key, make_preview, now_ns, trusted
from rivya_mcp.server._results import THUMBNAIL_URI_PREFIX, image_uri
from rivya_mcp.tasks import SAFE_NAME, Runtime, mime_for, resolve_served_file

__all__ = [
    "LIST_PREVIEW_BUDGET",
    "LIST_PREVIEW_SIDE",
    "THUMBNAIL_BUDGET",
    "THUMBNAIL_SIDE",
    "THUMBNAIL_URI_PREFIX",
    "gallery_blocks",
    "register_thumbnails",
    "thumbnail_of",
    "thumbnail_uri",
]

# A gallery tile or a grid cell at twice its CSS size on a high-density screen.
THUMBNAIL_SIDE = 256
THUMBNAIL_BUDGET = 40_000  # base64 bytes; a 256 px JPEG is ~10-20 KB
# What list_tasks puts in the conversation per image: a few KB each, a page well under 300 KB.
LIST_PREVIEW_SIDE = 160
LIST_PREVIEW_BUDGET = 12_000
_CACHE_ENTRIES = 128

_cache: OrderedDict[tuple[FileKey, int], Preview] = OrderedDict()
_lock = threading.Lock()


def thumbnail_uri(path: Path | str) -> str:
    return THUMBNAIL_URI_PREFIX + Path(path).name


async def thumbnail_of(path: Path, *, side: int = THUMBNAIL_SIDE, budget: int = THUMBNAIL_BUDGET) -> Preview:
    """A JPEG of the saved image ``path`` that fits ``side``×``side`` (raises OSError if unreadable)."""
    try:
        key: tuple[FileKey, int] | None = (file_key(path.stat(), str(path)), side)
    except OSError:
        key = None
    if key is not None:
        with _lock:
            cached = _cache.get(key)
            if cached is not None:
                _cache.move_to_end(key)
                return cached
    data = await anyio.Path(path).read_bytes()
    preview = await anyio.to_thread.run_sync(lambda: make_preview(data, budget=budget, longest_side=side, opaque=True))
    if key is not None and trusted(key[0][-1], now_ns()):
        with _lock:
            _cache[key] = preview
            while len(_cache) > _CACHE_ENTRIES:
                _cache.popitem(last=False)
    return preview


def register_thumbnails(server: MCPServer[Any], output_dir: Path, runtime: Runtime) -> None:
    async def read_thumbnail(name: str) -> bytes:
        path = resolve_served_file(output_dir, name)
        if path is not None:
            return (await thumbnail_of(path)).data
        if runtime.coordinator is not None and SAFE_NAME.match(name):
            # Replicas: an image another one saved, from the database (as rivya://images/… serves it).
            shared = await runtime.coordinator.image(name)
            if shared is not None:
                data = shared[1]
                preview = await anyio.to_thread.run_sync(
                    lambda: make_preview(data, budget=THUMBNAIL_BUDGET, longest_side=THUMBNAIL_SIDE, opaque=True)
                )
                return preview.data
        raise ResourceNotFoundError(f"No saved image named {name!r} in the output directory.")

    server.resource(
        THUMBNAIL_URI_PREFIX + "{name}",
        name="saved-image-thumbnail",
        title="Thumbnail of a saved image",
        description=(
            f"A small JPEG (at most {THUMBNAIL_SIDE} px) of a saved image, by its file name as in "
            "rivya://images/<name>: for galleries and grids, never the full image."
        ),
        mime_type="image/jpeg",
    )(read_thumbnail)


async def gallery_blocks(paths: list[tuple[str, Path]]) -> list[ContentBlock]:
    """For list_tasks with previews: per (label, saved path), a small preview and a link to the image."""
    blocks: list[ContentBlock] = []
    for label, path in paths:
        try:
            preview = await thumbnail_of(path, side=LIST_PREVIEW_SIDE, budget=LIST_PREVIEW_BUDGET)
        except OSError:
            continue  # removed since it was listed: the text still names it
        blocks.append(ImageContent(type="image", data=preview.base64, mime_type=preview.mime_type))
        blocks.append(
            ResourceLink(
                type="resource_link",
                uri=image_uri(path),
                name=path.name,
                title=label,
                description=f"{preview.source_width}×{preview.source_height} image ({label})",
                mime_type=mime_for(path),
            )
        )
    return blocks
