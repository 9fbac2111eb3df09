"""Read-only, no permission, no space: each reported as such, and the image saved later from the kept copy.

These conditions cannot be made for real here (CI runs as root: a chmod'ed folder stays writable;
mounting a full or read-only file system needs privileges the suite must not assume), so the
failure is injected at the outermost OS call, for paths in the output folder only: ``os.open``
(where a read-only or forbidden folder refuses to create the file) and ``os.fsync`` (where a full
disk reports ENOSPC for data that did not fit). Everything else is real: the server, an MCP
client, the sandbox on loopback, the journal, the spool. tests/faults/test_output_folder.py makes
a real unwritable folder (a path under a file) through a real stdio server.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import ImageContent, TextContent

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.tasks import Spool
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio


def _text(result: Any) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _downloads(sandbox: RunningSandbox) -> int:
    rules = httpx2.get(f"{sandbox.base_url}/_sandbox/faults", timeout=5).json()
    rules = rules["rules"] if isinstance(rules, dict) else rules
    return int(rules[0]["hits"])


def _inject(monkeypatch: pytest.MonkeyPatch, folder: Path, call: str, code: int) -> Callable[[], None]:
    """Make ``os.<call>`` fail with ``code`` for files in ``folder``; returns the undo."""
    real = getattr(os, call)
    inside = str(folder.resolve())

    def in_folder(target: Any) -> bool:
        if isinstance(target, int):  # a descriptor: where does it point?
            target = os.readlink(f"/proc/self/fd/{target}")
        return str(os.fspath(target)).startswith(inside + os.sep)

    def failing(target: Any, *args: Any, **kwargs: Any) -> Any:
        if in_folder(target):
            raise OSError(code, os.strerror(code), None if isinstance(target, int) else str(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, call, failing)
    return lambda: monkeypatch.setattr(os, call, real)


@pytest.mark.parametrize(
    ("call", "code", "said"),
    [
        ("open", errno.EROFS, "it is on a read-only file system"),
        ("open", errno.EACCES, "permission denied"),
        ("fsync", errno.ENOSPC, "no space left on the device"),
    ],
)
async def test_a_failed_save_says_why_and_where_and_the_kept_copy_is_saved_later(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int, said: str
) -> None:
    settings = settings_for(sandbox, tmp_path)
    out = Path(settings.output_dir)
    out.mkdir(parents=True)
    httpx2.post(
        f"{sandbox.base_url}/_sandbox/faults",
        json={"rules": [{"path": "/_sandbox/media/", "method": "GET", "delay_ms": 0}]},
        timeout=5,
    ).raise_for_status()
    try:
        undo = _inject(monkeypatch, out, call, code)
        async with Client(build_server(settings)) as client:
            first = await client.call_tool("generate_image", {"prompt": "A quiet harbour", "wait_seconds": 20})
            assert first.is_error and first.structured_content is not None
            task_id = first.structured_content["task_id"]
            text = _text(first)
            assert f"Error (output_folder_unwritable): Task {task_id} succeeded and is paid for" in text
            assert f"could not be saved in the output folder {out.resolve()}: {said}." in text
            assert "Retrying may help" not in text
            assert any(isinstance(c, ImageContent) for c in first.content)
            assert first.structured_content["source_url"]
            kept = Spool(settings.data_dir).path_for(task_id)
            assert kept.is_file() and [p for p in out.iterdir()] == []  # nothing half-written left behind
            assert _downloads(sandbox) == 1

            undo()  # the folder works again
            fixed = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0})
        assert not fixed.is_error, _text(fixed)
        assert fixed.structured_content is not None
        saved = Path(fixed.structured_content["saved_path"])
        assert saved.parent == out.resolve() and saved.is_file()
        assert _downloads(sandbox) == 1 and not kept.exists()
    finally:
        httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": []}, timeout=5)
