"""What a failed call tells the agent, through a real MCP client against the sandbox on loopback.

Issue 14 item 6: every get_task failure says what is true and a next step that can work (an
unknown task is not "not lost", a 401 keeps its key advice, a crash is not "after task X was
created"). Item 8: inputs that used to crash into internal_error get a clear tool error instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Secret
from rivya_mcp.tasks import Runtime, TaskService
from tests.faults.conftest import set_faults
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _next_step(text: str) -> str:
    return text.split("Next step:", 1)[1]


def _tasks(sandbox: RunningSandbox) -> list[str]:
    """The ids of every task the sandbox holds (their statuses move on with its clock)."""
    return [t["id"] for t in sandbox.state.snapshot()["tasks"]]


# --- item 6: get_task failures ---------------------------------------------------------------


async def test_unknown_task_says_it_is_unknown_and_points_at_list_tasks(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        result = await client.call_tool("get_task", {"task_id": "task_doesnotexist", "wait_seconds": 0})
    text = _text(result)
    assert result.is_error and "Error (not_found)" in text
    assert "not lost" not in text and "exists" not in text
    assert "task_doesnotexist" in text and "no task" in text.lower()
    step = _next_step(text)
    assert "list_tasks" in step and "get_task" not in step, step
    assert (result.structured_content or {}).get("task_id") is None


async def test_task_in_the_journal_that_the_api_does_not_know_says_so(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "A kite", "wait_seconds": 0})).structured_content
        assert made is not None
        # Rivya answers 404 for a task this server's journal records (say, purged upstream).
        set_faults(sandbox, [{"path": f"/api/v1/generations/{made['task_id']}", "method": "GET", "status": 404}])
        try:
            result = await client.call_tool("get_task", {"task_id": made["task_id"], "wait_seconds": 10})
        finally:
            set_faults(sandbox, [])
    text = _text(result)
    assert result.is_error and "Error (not_found)" in text and "not lost" not in text
    assert "journal" in text
    assert 'get_task with task_id="' not in _next_step(text)


async def test_a_task_of_another_key_is_unknown_under_this_one(sandbox: RunningSandbox, tmp_path: Path) -> None:
    # The journal keeps each key's tasks apart (issue 14 item 1): under another key the task is
    # simply unknown, and nothing claims it exists.
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "A kite", "wait_seconds": 0})).structured_content
    assert made is not None
    other = settings.with_changes(api_key=Secret("rvya_sk_test_someone_else_0123456789"))
    async with Client(build_server(other)) as client:
        result = await client.call_tool("get_task", {"task_id": made["task_id"], "wait_seconds": 0})
    text = _text(result)
    assert result.is_error and "Error (not_found)" in text and "not lost" not in text and "exists" not in text
    assert "list_tasks" in _next_step(text) and 'get_task with task_id="' not in _next_step(text)


async def test_get_task_with_a_rejected_key_keeps_the_key_advice(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "A dune", "wait_seconds": 0})).structured_content
        assert made is not None
        set_faults(sandbox, [{"path": "/api/v1/generations/", "method": "GET", "status": 401}])
        try:
            known = await client.call_tool("get_task", {"task_id": made["task_id"], "wait_seconds": 10})
            unknown = await client.call_tool("get_task", {"task_id": "task_neverseen", "wait_seconds": 0})
        finally:
            set_faults(sandbox, [])
    for result in (known, unknown):
        text = _text(result)
        assert result.is_error and "Error (api_key_invalid)" in text
        assert "RIVYA_API_KEY" in _next_step(text), text
    # The task this server created is named as safe; the unknown one is not claimed to exist.
    assert made["task_id"] in _next_step(_text(known)) and "not lost" in _text(known)
    assert "not lost" not in _text(unknown) and "exists" not in _text(unknown)


async def test_unexpected_error_in_get_task_does_not_claim_a_task_was_created(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings)) as client:
        made = (await client.call_tool("generate_image", {"prompt": "A reef", "wait_seconds": 0})).structured_content
        assert made is not None

        async def broken(self: Runtime, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("a planted bug")

        monkeypatch.setattr(Runtime, "latest", broken)  # the first step of every get_task
        known = await client.call_tool("get_task", {"task_id": made["task_id"], "wait_seconds": 10})
        unknown = await client.call_tool("get_task", {"task_id": "task_neverseen", "wait_seconds": 0})
    for result in (known, unknown):
        text = _text(result)
        assert result.is_error and "Error (internal_error)" in text
        assert "was created" not in text, text
    assert made["task_id"] in _text(known) and "not lost" not in _text(unknown)
    assert "task_neverseen" not in _next_step(_text(unknown))


async def test_unexpected_error_after_a_create_still_names_the_task(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)

    async def broken(self: TaskService, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a planted bug")

    monkeypatch.setattr(TaskService, "follow", broken)
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        result = await client.call_tool("generate_image", {"prompt": "A comet", "wait_seconds": 0})
    text = _text(result)
    (task_id,) = [t["id"] for t in sandbox.state.snapshot()["tasks"] if t["prompt"] == "A comet"]
    assert result.is_error and "Error (internal_error)" in text
    assert f"task {task_id} was created" in text and f'task_id="{task_id}"' in _next_step(text)


# --- item 8: inputs that used to crash ---------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("generate_image", {"prompt": "A fox", "idempotency_key": "fox-1\n"}),
        ("get_task", {"task_id": "task_abc\n"}),
    ],
    ids=["idempotency_key", "task_id"],
)
async def test_a_trailing_newline_fails_the_schema(
    sandbox: RunningSandbox, tmp_path: Path, tool: str, arguments: dict[str, Any]
) -> None:
    before = _tasks(sandbox)
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        refused = await client.call_tool(tool, {**arguments, "wait_seconds": 0})
        clean = {k: v.rstrip("\n") if isinstance(v, str) else v for k, v in arguments.items()}
        fine = await client.call_tool(tool, {**clean, "wait_seconds": 0})
    text = _text(refused)
    assert refused.is_error and "Error (invalid_arguments)" in text and "does not match" in text, text
    # The same value without the newline passes the schema (get_task then meets an unknown id).
    assert "invalid_arguments" not in _text(fine)
    if tool == "generate_image":
        assert not fine.is_error and len(_tasks(sandbox)) == len(before) + 1


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("/proc/self/mem", ("can't read", "/mem: Input/output error")),
        ("/tmp/a\x00b.png", ("NUL",)),
    ],
    ids=["proc-self-mem", "nul-byte"],
)
@pytest.mark.parametrize("tool", ["upload_reference", "edit_image"])
async def test_unreadable_reference_paths_get_a_clear_error(
    sandbox: RunningSandbox, tmp_path: Path, source: str, words: tuple[str, ...], tool: str
) -> None:
    before = _tasks(sandbox)
    arguments = {"source": source} if tool == "upload_reference" else {"prompt": "x", "reference": source}
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        result = await client.call_tool(tool, arguments)
    text = _text(result)
    assert result.is_error and "Error (invalid_reference)" in text, text
    assert "internal_error" not in text
    for word in words:
        assert word in text, text
    assert _tasks(sandbox) == before


@pytest.mark.parametrize("tool", ["generate_image", "get_credits", "get_task"])
async def test_a_non_ascii_api_key_is_named_without_printing_it(
    sandbox: RunningSandbox, tmp_path: Path, tool: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "rvya_sk_tëst_0123456789abcdef"
    arguments: dict[str, Any] = {
        "generate_image": {"prompt": "A fox", "wait_seconds": 0},
        "get_credits": {},
        "get_task": {"task_id": "task_abc", "wait_seconds": 0},
    }[tool]
    before = _tasks(sandbox)
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        result = await client.call_tool(tool, arguments)
    text = _text(result)
    assert result.is_error and "Error (api_key_unusable)" in text, text
    assert "RIVYA_API_KEY" in text and "HTTP header" in text and "will not help" in text
    assert key not in text and "tëst" not in text
    assert all(key not in r.getMessage() and "tëst" not in r.getMessage() for r in caplog.records)
    assert _tasks(sandbox) == before


class _DeepStatusAnswers(httpx2.AsyncBaseTransport):
    """The real sandbox, except that status answers come back as JSON nested 100,000 deep
    (no sandbox fault can send one: its own JSON encoder would hit the recursion limit first)."""

    def __init__(self) -> None:
        self._real = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._real.handle_async_request(request)
        if request.method == "GET" and request.url.path.startswith("/api/v1/generations/"):
            await response.aread()
            await response.aclose()
            depth = 100_000
            body = b'{"id": "x", "status": "queued", "extra": ' + b"[" * depth + b"]" * depth + b"}"
            return httpx2.Response(200, content=body, headers={"Content-Type": "application/json"})
        return response

    async def aclose(self) -> None:
        await self._real.aclose()


async def test_json_nested_too_deep_is_a_malformed_answer_not_an_internal_error(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with httpx2.AsyncClient(transport=_DeepStatusAnswers()) as http:
        assert settings.api_key is not None
        client = AsyncRivyaClient(settings.api_key, settings.base_url, http_client=http, max_retries=0, poll_scale=0.1)
        async with Client(build_server(settings, client=client)) as mcp:
            made = (
                await mcp.call_tool("generate_image", {"prompt": "A deep answer", "wait_seconds": 0})
            ).structured_content
            assert made is not None
            result = await mcp.call_tool("get_task", {"task_id": made["task_id"], "wait_seconds": 5})
    text = _text(result)
    assert result.is_error and "Error (malformed_response)" in text and "internal_error" not in text, text
    assert made["task_id"] in text  # the task is named: it exists and is not lost
