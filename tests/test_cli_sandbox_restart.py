"""The embedded sandbox across restarts of the stdio server, as a host restarts it (issue 23 item 13).

Each start of ``rivya-mcp serve --sandbox`` listened on a new port and used a new key, so the
journal filed the tasks of the run before under another upstream and account, and the sandbox had
forgotten them: ``list_tasks`` and ``get_task`` answered "no record". Driven here through a real
MCP client over stdio, one server process after another on the same data folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent
from PIL import Image

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update(
        HOME=str(home),
        RIVYA_DATA_DIR=str(home / "data"),
        RIVYA_OUTPUT_DIR=str(home / "out"),
        RIVYA_POLL_SCALE="0.2",
        RIVYA_LOG_LEVEL="INFO",
    )
    return env


@asynccontextmanager
async def _server(home: Path, log_name: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "rivya_mcp", "--sandbox"], env=_env(home))
    with (home / log_name).open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield client


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, _text(result)
    data = result.structured_content
    assert isinstance(data, dict)
    return data


async def test_tasks_files_and_images_outlive_a_restart(tmp_path: Path) -> None:
    reference = tmp_path / "hills.png"
    Image.new("RGB", (96, 64), (70, 140, 70)).save(reference, format="PNG")
    async with _server(tmp_path, "first.log") as first:
        done = _data(await first.call_tool("generate_image", {"prompt": "A lighthouse", "aspectRatio": "1:1"}))
        uploaded = _data(await first.call_tool("upload_reference", {"source": str(reference)}))
        # Still running when the host stops the server: the restarted one must finish it.
        running = _data(
            await first.call_tool("generate_image", {"prompt": "A slow fox [sandbox:seconds=6]", "wait_seconds": 0})
        )
    assert running["status"] in ("queued", "processing")
    saved = Path(done["saved_path"])
    assert saved.is_file()

    async with _server(tmp_path, "second.log") as second:
        listed = _data(await second.call_tool("list_tasks", {}))
        assert {done["task_id"], running["task_id"]} <= {t["task_id"] for t in listed["tasks"]}, listed
        again = _data(await second.call_tool("get_task", {"task_id": done["task_id"]}))
        assert again["status"] == "succeeded" and again["saved_path"] == str(saved)
        finished = _data(await second.call_tool("get_task", {"task_id": running["task_id"], "wait_seconds": 30}))
        assert finished["status"] == "succeeded" and Path(finished["saved_path"]).is_file()
        # An uploaded file and an earlier task are still references the sandbox knows.
        by_file = _data(
            await second.call_tool("edit_image", {"prompt": "Add snow", "reference": uploaded["file"]["id"]})
        )
        by_task = _data(await second.call_tool("edit_image", {"prompt": "Make it night", "reference": done["task_id"]}))
        assert by_file["status"] == by_task["status"] == "succeeded"
        credits = _data(await second.call_tool("get_credits", {}))
    # Sandbox decision: the wallet is topped up to the starting balance at each start.
    assert credits["current_credits"] >= 1000 - 2 * 8


async def test_a_second_server_on_the_same_folder_keeps_its_tasks_apart(tmp_path: Path) -> None:
    """Two hosts spawning ``--sandbox`` at once on one data folder: the second sandbox cannot take
    the state folder, so it keeps nothing and files its tasks under its own address and key; neither
    server lists, polls or recovers the other's tasks."""
    async with _server(tmp_path, "first.log") as first:
        mine = _data(await first.call_tool("generate_image", {"prompt": "A heron"}))
        async with _server(tmp_path, "second.log") as second:
            theirs = _data(await second.call_tool("generate_image", {"prompt": "A crane"}))
            listed = {t["task_id"] for t in _data(await second.call_tool("list_tasks", {}))["tasks"]}
        assert theirs["task_id"] in listed and mine["task_id"] not in listed
        assert mine["task_id"] in {t["task_id"] for t in _data(await first.call_tool("list_tasks", {}))["tasks"]}
    assert "keeps nothing" in (tmp_path / "second.log").read_text()
