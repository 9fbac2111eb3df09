"""Tool behaviour through the SDK's in-memory client: keys, idempotency, journal, failures, output modes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from PIL import Image

from rivya_mcp.client import AsyncRivyaClient, Generation
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.server import CallState, build_server, build_tool_bodies
from tests.server.conftest import FAST, TEST_KEY, settings_for

pytestmark = pytest.mark.anyio

TOOLS = {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"}


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def _ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return _data(await client.call_tool(tool, arguments))


def _data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def test_without_a_key_tools_are_listed_and_calls_explain_the_fix(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    before = sandbox.state.snapshot()["tasks"]
    async with Client(build_server(settings_for(sandbox, tmp_path, key=None))) as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        for name, args in [
            ("generate_image", {"prompt": "a fox"}),
            ("get_credits", {}),
            ("get_task", {"task_id": "task_abc"}),
            ("upload_reference", {"source": "data:image/png;base64,AAAA"}),
        ]:
            result = await client.call_tool(name, args)
            assert result.is_error, name
            assert "RIVYA_API_KEY" in _text(result) and "--sandbox" in _text(result)
    assert sandbox.state.snapshot()["tasks"] == before


async def test_idempotency_key_returns_the_same_task_without_paying_again(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    args = {"prompt": "A kite over dunes", "aspectRatio": "1:1", "idempotency_key": "kite-1", "wait_seconds": 0}
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        first = _data(await client.call_tool("generate_image", args))
        second = _data(await client.call_tool("generate_image", {**args, "wait_seconds": 10}))
        conflict = await client.call_tool("generate_image", {**args, "prompt": "Something else"})
    assert second["task_id"] == first["task_id"] and second["reused"] is True
    assert second["status"] == "succeeded"
    tasks = [t for t in sandbox.state.snapshot()["tasks"] if t["idempotency_key"] == "kite-1"]
    assert len(tasks) == 1  # the key reached the API as the Idempotency-Key
    assert conflict.is_error and "idempotency" in _text(conflict).lower()


async def test_list_tasks_and_tasks_resource_read_the_journal(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        assert _data(await client.call_tool("list_tasks", {}))["count"] == 0
        done = _data(await client.call_tool("generate_image", {"prompt": "First", "wait_seconds": 10}))
        pending = _data(
            await client.call_tool("generate_image", {"prompt": "Second [sandbox:seconds=5]", "wait_seconds": 0})
        )
        listing = _data(await client.call_tool("list_tasks", {"limit": 5}))
        succeeded = _data(await client.call_tool("list_tasks", {"status": "succeeded"}))
        resource = await client.read_resource("rivya://tasks")
        bad = await client.call_tool("list_tasks", {"limit": 0})
    assert [t["task_id"] for t in listing["tasks"]] == [pending["task_id"], done["task_id"]]  # recent first
    assert listing["tasks"][1]["saved_path"] == done["saved_path"]
    assert [t["task_id"] for t in succeeded["tasks"]] == [done["task_id"]]
    text = resource.contents[0]
    assert getattr(text, "mime_type", None) == "application/json"
    assert pending["task_id"] in getattr(text, "text", "")
    assert bad.is_error and "limit" in _text(bad)


async def test_failed_and_moderated_generations_are_actionable_errors(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        failed = await client.call_tool("generate_image", {"prompt": "x [sandbox:fail]", "wait_seconds": 10})
        moderated = await client.call_tool("generate_image", {"prompt": "x [sandbox:moderated]", "wait_seconds": 10})
    assert failed.is_error and "generation_failed" in _text(failed) and "may help" in _text(failed)
    assert moderated.is_error and "content_moderated" in _text(moderated) and "Rephrase" in _text(moderated)


@pytest.mark.parametrize("profile", ["default", "variant"])  # 402, or 400 with the same code; floats
async def test_insufficient_credits_is_an_actionable_error(tmp_path: Path, profile: str) -> None:
    config = SandboxConfig(
        starting_balance=3, queued_seconds=FAST.queued_seconds, processing_seconds=0.3, profile=profile
    )
    with start_sandbox(config) as poor:
        async with Client(build_server(settings_for(poor, tmp_path))) as client:
            result = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
            credits = _data(await client.call_tool("get_credits", {}))
        assert poor.state.snapshot()["tasks"] == []
    assert result.is_error and "insufficient_credits" in _text(result) and "get_credits" in _text(result)
    # The refused create spent nothing, and counts nothing against a budget.
    assert credits["current_credits"] == 3 and credits["spent_today"] == 0


async def test_edit_by_task_id_reuploads_the_result(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        first = _data(await client.call_tool("generate_image", {"prompt": "A cabin", "wait_seconds": 10}))
        edited = _data(
            await client.call_tool(
                "edit_image", {"prompt": "Add snow", "reference": first["task_id"], "wait_seconds": 10}
            )
        )
        unfinished = _data(
            await client.call_tool("generate_image", {"prompt": "Slow [sandbox:seconds=5]", "wait_seconds": 0})
        )
        too_early = await client.call_tool("edit_image", {"prompt": "Add snow", "reference": unfinished["task_id"]})
    task = next(t for t in sandbox.state.snapshot()["tasks"] if t["id"] == edited["task_id"])
    assert task["mode"] == "edit" and task["references"][0]["id"].startswith("file_")
    assert too_early.is_error and "get_task" in _text(too_early)


async def test_expired_url_is_served_from_the_saved_copy(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.3, url_ttl_seconds=60)) as sandbox:
        async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
            first = _data(await client.call_tool("generate_image", {"prompt": "A tower", "wait_seconds": 10}))
            sandbox.state.advance_clock(3600)  # the result URL is now expired
            again = await client.call_tool("get_task", {"task_id": first["task_id"], "wait_seconds": 0})
            assert _data(again)["saved_path"] == first["saved_path"]
            assert "saved copy" in _text(again)
            Path(first["saved_path"]).unlink()
            gone = await client.call_tool("get_task", {"task_id": first["task_id"], "wait_seconds": 0})
    assert gone.is_error and "result_expired" in _text(gone)


async def test_structured_output_off_drops_schema_and_content_but_keeps_the_image(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    server = build_server(settings_for(sandbox, tmp_path, structured_output=False))
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert all(t.output_schema is None for t in tools)
        result = await client.call_tool("generate_image", {"prompt": "A boat", "wait_seconds": 10})
    assert not result.is_error and result.structured_content is None
    assert [c.type for c in result.content] == ["text", "image", "resource_link"]


async def test_saved_images_keep_full_resolution_and_unique_names(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        a = _data(
            await client.call_tool("generate_image", {"prompt": "Same", "aspectRatio": "21:9", "wait_seconds": 10})
        )
        b = _data(
            await client.call_tool("generate_image", {"prompt": "Same", "aspectRatio": "9:16", "wait_seconds": 10})
        )
    assert a["saved_path"] != b["saved_path"]
    with Image.open(a["saved_path"]) as wide, Image.open(b["saved_path"]) as tall:
        assert wide.width > 2 * wide.height and tall.height > tall.width
    assert Path(a["saved_path"]).parent == (tmp_path / "out").resolve()


async def test_image_resource_refuses_paths_outside_the_output_dir(sandbox: RunningSandbox, tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8\xff secret")
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        for uri in ("rivya://images/..%2Fsecret.jpg", "rivya://images/../secret.jpg", "rivya://images/nope.jpg"):
            with pytest.raises(Exception) as caught:
                await client.read_resource(uri)
            assert "secret" not in str(caught.value).replace("secret.jpg", "")


async def test_the_api_key_never_appears_in_results_or_logs(
    sandbox: RunningSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
        for name, args in [
            ("generate_image", {"prompt": "A fox", "wait_seconds": 10}),
            ("generate_image", {"prompt": "x [sandbox:fail]", "wait_seconds": 10}),
            ("get_task", {"task_id": "task_missing"}),
            ("get_credits", {}),
            ("edit_image", {"prompt": "x", "reference": "/nonexistent/file.png"}),
        ]:
            result = await client.call_tool(name, args)
            texts.append(_text(result) + repr(result.structured_content))
    assert TEST_KEY not in "\n".join(texts)
    assert all(TEST_KEY not in record.getMessage() for record in caplog.records)


class _PollTimes(AsyncRivyaClient):
    """Records when each create and status request leaves, by task id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: dict[str, list[float]] = {}
        self.created: dict[str, float] = {}

    async def create_generation(self, **kwargs: Any) -> Generation:
        sent = anyio.current_time()
        generation = await super().create_generation(**kwargs)
        self.created[generation.id] = sent
        return generation

    async def get_generation(self, task_id: str, **kwargs: Any) -> Generation:
        self.polls.setdefault(task_id, []).append(anyio.current_time())
        return await super().get_generation(task_id, **kwargs)


async def test_get_task_before_the_tasks_turn_answers_from_the_journal_then_polls_at_the_documented_pace(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, poll_scale=1.0)
    async with _PollTimes(api_key=TEST_KEY, base_url=sandbox.base_url, poll_scale=1.0) as api:
        async with Client(build_server(settings, client=api)) as client:
            # The first look is due 2.5 s after the create: a 0.5 s wait ends without any poll.
            pending = _data(
                await client.call_tool("generate_image", {"prompt": "Slow [sandbox:seconds=6]", "wait_seconds": 0.5})
            )
            task_id = pending["task_id"]
            assert pending["done"] is False and pending["status"] == "queued"
            assert "next status check is allowed in" in pending["next_step"]
            for wait in (0, 0.3, 0):  # an agent asking again and again
                again = _data(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": wait}))
                assert again["task_id"] == task_id and again["done"] is False
            assert task_id not in api.polls  # answered from the journal, without a request
            done = _data(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 20}))
    assert done["status"] == "succeeded" and done["saved_path"]
    times = api.polls[task_id]
    assert len(times) == 2  # at 2.5 s (processing) and 7.5 s (succeeded): no tight loop
    assert times[0] - api.created[task_id] >= 2.4
    assert times[1] - times[0] >= 4.9


async def test_get_task_on_a_finished_task_does_not_wait_for_the_poll_gap(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, poll_scale=1.0)
    async with Client(build_server(settings)) as client:
        done = _data(await client.call_tool("generate_image", {"prompt": "Quick", "wait_seconds": 10}))
        httpx2.delete(f"{sandbox.base_url}/_sandbox/requests").raise_for_status()
        for _ in range(3):
            again = _data(await client.call_tool("get_task", {"task_id": done["task_id"], "wait_seconds": 0}))
            assert again["saved_path"] == done["saved_path"]
    # A finished task is read from the journal, not polled: the sandbox saw no status request for it
    # (judged from the sandbox's own log, not from a wall clock that load can stretch).
    log = httpx2.get(f"{sandbox.base_url}/_sandbox/requests").json()["requests"]
    assert not [r for r in log if r["path"].endswith(done["task_id"])], log


async def test_the_tool_bodies_alone_upload_as_the_mcp_tool_does(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """``build_tool_bodies`` is what ``build_server`` wraps; bench/upload.py times the upload through it."""
    image = tmp_path / "reference.png"
    Image.new("RGB", (64, 48), "teal").save(image)
    settings = settings_for(sandbox, tmp_path)
    bodies = build_tool_bodies(settings)
    async with bodies.runtime.session():
        # upload_reference sends no progress: it needs no MCP request context.
        direct = _data(await bodies.upload_reference({"source": str(image)}, cast(Context, None), CallState()))
    async with Client(build_server(settings)) as client:
        through_mcp = await _ok(client, "upload_reference", source=str(image))
    assert direct["file"]["id"] != through_mcp["file"]["id"]  # two uploads, both stored
    stored = {f["id"]: f for f in sandbox.state.snapshot()["files"]}
    for output in (direct, through_mcp):
        assert stored[output["file"]["id"]]["size"] == image.stat().st_size
    same = ("kind", "name", "mime_type", "size")
    assert {k: direct["file"][k] for k in same} == {k: through_mcp["file"][k] for k in same}
    assert direct["next_step"].replace(direct["file"]["id"], "") == through_mcp["next_step"].replace(
        through_mcp["file"]["id"], ""
    )


async def test_an_upload_asked_to_wait_past_the_calls_deadline_ends_at_once_and_costs_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Issue 22 item 2: uploads too end by the call's deadline, whatever Retry-After asks."""
    import base64
    import io
    import time

    import httpx2
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buffer, format="PNG")
    image = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    rule = {"path": "/api/v1/files", "method": "POST", "status": 429, "retry_after": 30}
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [rule]}).raise_for_status()
    try:
        before = sandbox.state.snapshot()
        async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
            started = time.monotonic()
            result = await client.call_tool("edit_image", {"prompt": "Later", "reference": image, "wait_seconds": 2})
            took = time.monotonic() - started
        after = sandbox.state.snapshot()
    finally:
        httpx2.delete(f"{sandbox.base_url}/_sandbox/faults")
    text = "\n".join(c.text for c in result.content if hasattr(c, "text"))
    assert result.is_error and "upstream_slow" in text and "Retry-After" in text, text
    assert took < 5, took  # not 30 s, let alone four times that
    assert (after["tasks"], after["files"], after["ledger"]) == (before["tasks"], before["files"], before["ledger"])
