"""A Python SDK client and the Tasks extension: the way docs/tasks.md shows works, the naive way fails
as it says (issue 23 item 14: advertising the extension made ``call_tool`` raise after the charge).

The documented code is taken from docs/tasks.md itself and run here against a real server over
Streamable HTTP and a real sandbox, so the page and this test cannot drift apart.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.client.streamable_http import streamable_http_client
from pydantic import ValidationError

from rivya_mcp.sandbox import RunningSandbox
from tests.server._threaded import ThreadedServer
from tests.tasks.conftest import EXTENSION, serve, tasks_settings
from tests.test_snippets import REPO, snippets

pytestmark = pytest.mark.anyio


def _documented_extension() -> Any:
    """The ``TasksExtension`` class of docs/tasks.md, defined by running the page's own code."""
    [block] = [s for s in snippets(REPO / "docs" / "tasks.md") if "class TasksExtension" in s.body]
    module = types.ModuleType("docs_tasks")  # not __main__: define, do not run main()
    sys.modules[module.__name__] = module  # pydantic resolves the models' annotations through it
    exec(compile(block.body, block.where, "exec"), module.__dict__)
    return module.TasksExtension


@pytest.fixture
def server(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[ThreadedServer]:
    with serve(tasks_settings(sandbox, tmp_path)) as running:
        yield running


def _charges(sandbox: RunningSandbox) -> int:
    ledger = httpx2.get(f"{sandbox.base_url}/_sandbox/state").json()["ledger"]
    return sum(1 for entry in ledger if entry["delta"] < 0)


async def test_the_documented_extension_makes_call_tool_return_the_finished_image(
    server: ThreadedServer, sandbox: RunningSandbox
) -> None:
    extension = _documented_extension()()
    assert extension.identifier == EXTENSION
    before = _charges(sandbox)
    async with Client(streamable_http_client(f"{server.base_url}/mcp"), extensions=[extension]) as client:
        result = await client.call_tool("generate_image", {"prompt": "A paper boat", "aspectRatio": "1:1"})
        failed = await client.call_tool("generate_image", {"prompt": "A kite [sandbox:fail]"})
    data = result.structured_content or {}
    assert not result.is_error and data["status"] == "succeeded" and Path(data["saved_path"]).is_file()
    assert failed.is_error  # a failed generation is a completed task with the usual error result
    assert _charges(sandbox) == before + 2


async def test_only_advertising_the_extension_fails_after_the_charge_as_the_docs_say(
    server: ThreadedServer, sandbox: RunningSandbox
) -> None:
    before = _charges(sandbox)
    async with Client(streamable_http_client(f"{server.base_url}/mcp"), extensions=[advertise(EXTENSION)]) as naive:
        with pytest.raises(ValidationError, match=r"CallToolResult\.content\n  Field required"):
            await naive.call_tool("generate_image", {"prompt": "A red kite"})
    assert _charges(sandbox) == before + 1  # the task exists and was charged
    # Not lost: a plain client finds it with list_tasks and fetches it with get_task.
    async with Client(streamable_http_client(f"{server.base_url}/mcp")) as plain:
        listed = (await plain.call_tool("list_tasks", {})).structured_content or {}
        [task] = [t for t in listed["tasks"] if t.get("prompt") == "A red kite"]
        fetched = await plain.call_tool("get_task", {"task_id": task["task_id"], "wait_seconds": 20})
    assert (fetched.structured_content or {}).get("status") == "succeeded"
