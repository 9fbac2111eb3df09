"""A saved image rewritten on disk gets a fresh preview: the preview cache must notice.

Issue 14 item 19. A file's key in the cache is what one stat says about it. A rewrite in place
keeps the inode, can keep the size, and ``os.utime`` (or a coarse file-system clock) can keep the
modification time; the change time is what no caller can set back. And a file changed within the
clock's last tick may change again within it, so an entry made then is not trusted (as git does
with a "racily clean" index entry): ``preview_cache_trusted`` is tested as a table below.
"""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult, ImageContent
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import PREVIEW_RACY_NS, _preview, build_server, preview_cache_trusted
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

SECOND = 1_000_000_000


def _preview_colour(result: CallToolResult) -> tuple[int, ...]:
    (image,) = [c for c in result.content if isinstance(c, ImageContent)]
    with Image.open(io.BytesIO(base64.b64decode(image.data))) as preview:
        pixel = preview.convert("RGB").resize((1, 1)).getpixel((0, 0))
    assert isinstance(pixel, tuple)
    return pixel


def _same_size_rewrite(path: Path, colour: tuple[int, int, int]) -> None:
    """Rewrite ``path`` in place (same inode) with a plain image of the same byte size and mtime."""
    before = path.stat()
    with Image.open(path) as old:
        size, fmt = old.size, old.format
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    data = out.getvalue()
    assert len(data) <= before.st_size
    with path.open("r+b") as file:  # decoders ignore the padding after the image's end marker
        file.write(data + b"\0" * (before.st_size - len(data)))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


async def test_a_saved_image_rewritten_in_place_gets_a_fresh_preview(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The preview clock a minute ahead: the saved file is old enough for its preview to be cached.
    monkeypatch.setattr(_preview, "now_ns", lambda: time.time_ns() + 60 * SECOND)
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        made = await client.call_tool("generate_image", {"prompt": "A meadow", "wait_seconds": 10})
        data: dict[str, Any] = made.structured_content or {}
        path = Path(data["saved_path"])
        args = {"task_id": data["task_id"], "wait_seconds": 0}
        first = await client.call_tool("get_task", args)  # read from disk, remembered
        again = await client.call_tool("get_task", args)  # answered from the cache
        assert _preview_colour(first) == _preview_colour(again)
        _same_size_rewrite(path, (0, 0, 255))
        rewritten = await client.call_tool("get_task", args)
    red, green, blue = _preview_colour(rewritten)
    assert blue > 200 and red < 40 and green < 40, (_preview_colour(first), _preview_colour(rewritten))


@pytest.mark.parametrize(
    ("changed_ns", "remembered_ns", "trusted"),
    [
        (10 * SECOND, 10 * SECOND, False),  # the same tick: a rewrite now would keep the key
        (10 * SECOND, 10 * SECOND + 5_000_000, False),  # 5 ms later: within a coarse clock's tick
        (10 * SECOND, 10 * SECOND + PREVIEW_RACY_NS - 1, False),
        (10 * SECOND, 10 * SECOND + PREVIEW_RACY_NS, True),
        (10 * SECOND, 3600 * SECOND, True),
        (20 * SECOND, 10 * SECOND, False),  # a change time ahead of our clock (another host's)
    ],
)
def test_an_entry_is_trusted_only_once_the_file_is_older_than_the_racy_window(
    changed_ns: int, remembered_ns: int, trusted: bool
) -> None:
    assert preview_cache_trusted(changed_ns, remembered_ns) is trusted
