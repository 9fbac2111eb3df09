"""Issue 22 items 1 and 2, issue 23 item 4, end to end on both sandbox profiles.

- A create whose answer is lost and whose retries are answered ``409`` (Rivya has not settled it)
  ends with the task known to the server and charged once: the agent gets an honest pending
  result naming the key (never "rejected", never "use a new key"), and the server keeps re-sending
  under that key in the background until Rivya settles it, then follows and saves the task.
- Every wait inside a tool call ends by the call's deadline, whatever ``Retry-After`` asks, and
  the pace is still kept: no status request before the time Rivya asked for.
- A result download that drips a byte a second does not hold the call: it goes on in the
  background and a later ``get_task`` has the image.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.transport import build_http_app
from tests.e2e.conftest import Harness, make_settings
from tests.server._threaded import ThreadedServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CREATE = {"path": "/api/v1/generations", "method": "POST"}
POLLS = {"path": "/api/v1/generations/", "method": "GET"}
RUNS = [("default", "http"), ("variant", "http"), ("default", "stdio"), ("variant", "stdio")]


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@pytest.fixture(params=RUNS, ids=[f"{p}-{t}" for p, t in RUNS])
def harness(
    request: pytest.FixtureRequest, sandboxes: Callable[[str], RunningSandbox], tmp_path: Path
) -> Iterator[Harness]:
    profile, transport = request.param
    sandbox = sandboxes(profile)
    (tmp_path / "refs").mkdir()
    settings = make_settings(sandbox, tmp_path, f"rvya_sk_deadline_{profile}_{transport}_{tmp_path.name[-6:]}")
    try:
        if transport == "http":
            with ThreadedServer(build_http_app(settings, transport="http")) as server:
                yield Harness(transport, settings, sandbox, tmp_path, url=server.base_url, profile=profile)
        else:
            yield Harness(transport, settings, sandbox, tmp_path, profile=profile)
    finally:
        httpx2.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=5)


async def _tasks(client: Client) -> list[dict[str, Any]]:
    listing = await client.call_tool("list_tasks", {})
    tasks: list[dict[str, Any]] = (listing.structured_content or {})["tasks"]
    return tasks


async def test_a_lost_create_answered_409_ends_known_and_charged_once(harness: Harness) -> None:
    # Rivya creates (and charges) the task, then the answer is lost; every retry under the same key
    # is answered 409 idempotency_conflict until Rivya "settles" (the second rule is removed).
    harness.set_faults(
        [
            {**CREATE, "drop": True, "phase": "after", "times": 1},
            {**CREATE, "status": 409, "code": "idempotency_conflict", "message": "This key is in flight."},
        ]
    )
    prompt = f"A kite that took its time ({harness.profile}, {harness.transport})"
    async with harness.connect() as client:
        started = time.monotonic()
        result = await client.call_tool("generate_image", {"prompt": prompt, "wait_seconds": 1})
        took = time.monotonic() - started
        text = _text(result)
        assert result.is_error and "create_not_settled" in text, text
        found = re.search(r'idempotency_key="([^"]+)"', text)
        assert found is not None, text
        key = found.group(1)
        assert "Never a new idempotency_key" in text and "rejected" not in text
        assert took < 15, took  # bounded by the call's deadline (wait_seconds, at least 10 s)
        # Kept as a create Rivya may have made: not rejected, not given up on.
        assert [(t["task_id"], t["idempotency_key"], t["status"]) for t in await _tasks(client)] == [
            (None, key, "unsubmitted")
        ]
        harness.set_faults([])  # Rivya settles the create
        # The server re-sends under the same key in the background, then follows and saves the task.
        with anyio.fail_after(30):
            while not (tasks := [t for t in await _tasks(client) if t["saved_path"]]):
                await anyio.sleep(0.2)
        [task] = tasks
        assert (task["idempotency_key"], task["status"]) == (key, "succeeded")
        finished = await client.call_tool("get_task", {"task_id": task["task_id"], "wait_seconds": 5})
        assert not finished.is_error and (finished.structured_content or {})["saved_path"] == task["saved_path"]
    upstream = [t for t in harness.sandbox.state.snapshot()["tasks"] if t["prompt"] == prompt]
    assert [t["id"] for t in upstream] == [task["task_id"]]
    assert upstream[0]["idempotency_key"] == key and upstream[0]["client_request_id"] == key
    assert harness.charges_per_task()[task["task_id"]] == 1


def _requests(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = httpx2.get(f"{sandbox.base_url}/_sandbox/requests", timeout=5).json()["requests"]
    return records


@pytest.mark.parametrize("profile", ["default", "variant"])
async def test_retry_after_30_on_every_poll_returns_the_task_within_the_calls_time(
    profile: str, sandboxes: Callable[[str], RunningSandbox], tmp_path: Path
) -> None:
    sandbox = sandboxes(profile)
    # The documented pace itself (poll_scale 1): the first look 2-3 s after the create.
    settings = make_settings(sandbox, tmp_path, f"rvya_sk_retry_after_{profile}", poll_scale=1.0)
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [{**POLLS, "status": 429, "retry_after": 30}]})
    httpx2.delete(f"{sandbox.base_url}/_sandbox/requests")
    try:
        with ThreadedServer(build_http_app(settings, transport="http")) as server:
            async with Client(f"{server.base_url}/mcp") as client:
                started = time.monotonic()
                arguments = {"prompt": f"Patience ({profile})", "wait_seconds": 8}
                result = await client.call_tool("generate_image", arguments)
                took = time.monotonic() - started
                data = result.structured_content or {}
                again = await client.call_tool("get_task", {"task_id": data.get("task_id", "?"), "wait_seconds": 3})
    finally:
        httpx2.delete(f"{sandbox.base_url}/_sandbox/faults")
    assert not result.is_error, _text(result)
    assert took < 15, took
    assert data["task_id"] and data["done"] is False
    assert re.search(r"next status check is allowed in (2[89]|3[01]) s", _text(result)), _text(result)
    records = _requests(sandbox)
    [create] = [r for r in records if r["method"] == "POST" and r["path"] == CREATE["path"]]
    polls = [r for r in records if r["method"] == "GET" and r["path"] == f"{POLLS['path']}{data['task_id']}"]
    # One look, at the documented first look, answered 429: none after it (the pace holds Rivya's
    # 30 s, and the later get_task answered from the journal without a request).
    assert [p["status"] for p in polls] == [429], polls
    assert 2.0 <= polls[0]["start"] - create["end"] <= 3.5
    assert not again.is_error and "next status check is allowed in" in _text(again)


async def test_a_dripping_download_does_not_hold_the_call(
    sandboxes: Callable[[str], RunningSandbox], tmp_path: Path
) -> None:
    sandbox = sandboxes("default")
    settings = make_settings(sandbox, tmp_path, "rvya_sk_drip")
    # The first download of a result trickles in at a byte a second (the image is tens of KB).
    drip = {"path": "/_sandbox/media/", "method": "GET", "drip_ms": 1000, "times": 1}
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [drip]}).raise_for_status()
    try:
        with ThreadedServer(build_http_app(settings, transport="http")) as server:
            async with Client(f"{server.base_url}/mcp") as client:
                started = time.monotonic()
                result = await client.call_tool("generate_image", {"prompt": "A slow river", "wait_seconds": 10})
                took = time.monotonic() - started
                data = result.structured_content or {}
                # The download goes on in the background (the drip was a one-off): get_task has the image.
                with anyio.fail_after(30):
                    while True:
                        done = await client.call_tool("get_task", {"task_id": data["task_id"], "wait_seconds": 5})
                        if (done.structured_content or {}).get("saved_path"):
                            break
                        await anyio.sleep(0.5)
    finally:
        httpx2.delete(f"{sandbox.base_url}/_sandbox/faults")
    assert not result.is_error, _text(result)
    assert took < 14, took  # the call's deadline (10 s), not the drip's hours
    assert data["status"] == "succeeded" and data["done"] is False
    assert "goes on in the background" in _text(result) and data["task_id"] in _text(result)
    assert Path((done.structured_content or {})["saved_path"]).is_file()
