"""A task followed through ``tasks/get`` returns what a blocking call returns to the same client.

Both go through one follow (``tasks.TaskService.follow``) and one shaping (``server.task_result``
and, for a client that renders MCP Apps, the viewer's ``for_viewer``). Issue 21: the follow-up
used to drive the get_task handler with a hand-made context that had none of the client's
capabilities, so a client declaring Tasks and Apps got a result without the viewer's ``_meta``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import META_KEY
from tests.tasks.conftest import Requester, serve, tasks_settings
from tests.tasks.test_wire import settle

SERVER_INFO = "io.modelcontextprotocol/serverInfo"


@pytest.fixture
def server_url(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[str]:
    with serve(tasks_settings(sandbox, tmp_path)) as server:
        yield f"{server.base_url}/mcp"


def _normalised(result: dict[str, Any], task_id: str) -> dict[str, Any]:
    """``result`` with what differs between two tasks of one prompt replaced by placeholders."""
    result = dict(result)
    result.pop("resultType", None)  # the envelope of the answer, not the tool's result
    result.setdefault("isError", False)  # absent and false mean the same
    meta = {k: v for k, v in (result.pop("_meta", None) or {}).items() if k != SERVER_INFO}
    viewer = dict(meta.get(META_KEY) or {})
    viewer.pop("elapsed_seconds", None)  # each task's own age
    if viewer:
        meta[META_KEY] = viewer
    text = repr(json.loads(json.dumps({**result, "_meta": meta}, sort_keys=True)))
    text = text.replace(task_id, "<task>")
    text = re.sub(r"(?:/[^/'\"\s]+)+\.(?:jpg|png|webp)", "<file>", text)
    text = re.sub(r"'data': '[A-Za-z0-9+/=]+'", "'data': '<base64>'", text)
    text = re.sub(r"'(?:size|width|height|final_credits|reserved_credits)': \d+", "'<number>': 0", text)
    text = re.sub(r"https?://[^'\"\s]+", "<url>", text)
    text = re.sub(r"\d+×\d+", "<w>×<h>", text)
    return {"normalised": text}


@pytest.mark.parametrize("apps", [True, False], ids=["tasks+apps", "tasks-only"])
def test_tasks_get_returns_what_a_blocking_call_returns_to_the_same_client(server_url: str, apps: bool) -> None:
    requester = Requester(server_url, apps=apps)
    try:
        arguments = {"prompt": "a lighthouse on a cliff", "aspectRatio": "1:1", "wait_seconds": 30}
        blocking = requester.tool("generate_image", arguments, tasks=False)
        assert "resultType" not in blocking or blocking["resultType"] == "complete"
        blocking_task = blocking["structuredContent"]["task_id"]

        created = requester.tool("generate_image", arguments)
        assert created["resultType"] == "task"
        done = settle(requester, created["taskId"])
        assert done["status"] == "completed", done
        followed = done["result"]
        followed_task = followed["structuredContent"]["task_id"]
        assert followed_task != blocking_task  # two tasks, one shape

        # The viewer's data is there exactly when the client renders MCP Apps, on both paths.
        assert (META_KEY in (blocking.get("_meta") or {})) is apps
        assert (META_KEY in (followed.get("_meta") or {})) is apps
        if apps:
            assert followed["_meta"][META_KEY]["prompt"] == arguments["prompt"]
            assert followed["_meta"][META_KEY]["mode"] == "generate"
        assert _normalised(followed, followed_task) == _normalised(blocking, blocking_task)
    finally:
        requester.close()
