"""Honest waits where the docs are loose (issue 13 item 5, server side).

- a status the docs do not list is named, treated as still running, and the wait stays bounded;
- a succeeded task without any result URL (rivya-api §3.3: ``urls`` "when available") is looked
  at again at the same pace, then reported as paid, with its task id and how ``get_task`` will
  fetch it: never a non-retryable error on a paid task.

The sandbox bends its answers with an after-phase ``merge`` fault rule; everything else (server,
client, journal, transport to the sandbox) is real.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.client import Generation, GenerationResult
from rivya_mcp.journal import TaskJournal
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server, describe_status
from rivya_mcp.tasks import URLLESS_LOOKS, from_journal, is_settled, is_undocumented
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

POLL_SCALE = 0.1
STATUS_PATH = "/api/v1/generations/"


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


async def _bend(sandbox: RunningSandbox, merge: dict[str, Any] | None) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        if merge is None:
            await control.delete("/_sandbox/faults")
            return
        rule = {"path": STATUS_PATH, "method": "GET", "phase": "after", "merge": merge}
        response = await control.post("/_sandbox/faults", json={"rules": [rule]})
        assert response.status_code == 200, response.text


async def _status_requests(sandbox: RunningSandbox, task_id: str) -> list[float]:
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        records = (await control.get("/_sandbox/requests")).json()["requests"]
    return [r["start"] for r in records if r["method"] == "GET" and r["path"] == STATUS_PATH + task_id]


def _result(url: str | None) -> GenerationResult:
    return GenerationResult(primary_url=url, urls=[url] if url else [])


@pytest.mark.parametrize(
    ("status", "result", "settled"),
    [
        ("queued", None, False),
        ("processing", None, False),
        ("failed", None, True),
        ("succeeded", _result("https://media.test/r.png"), True),
        ("succeeded", GenerationResult(primary_url=None, urls=["https://media.test/r.png"]), True),
        ("succeeded", _result(None), False),  # paid, but nothing to fetch yet: look again
        ("succeeded", None, False),
        ("paused_for_review", None, False),  # not documented: still running
        # Statuses are compared case-insensitively: the client lower-cases them as it parses.
        ("SUCCEEDED", _result("https://media.test/r.png"), True),
    ],
)
def test_what_counts_as_settled(status: str, result: GenerationResult | None, settled: bool) -> None:
    assert is_settled(Generation(id="task_1", status=status, result=result)) is settled


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("queued", "queued, waiting for a worker"),
        ("processing", "processing"),
        ("paused_for_review", "in status 'paused_for_review', which the Rivya docs do not list"),
    ],
)
def test_statuses_in_words(status: str, words: str) -> None:
    assert describe_status(status).startswith(words)
    assert is_undocumented(status) is (status == "paused_for_review")


async def test_an_undocumented_status_is_named_and_waited_on_within_the_bound(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    await _bend(sandbox, {"status": "paused_for_review"})
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    try:
        async with Client(build_server(settings_for(sandbox, tmp_path, poll_scale=POLL_SCALE))) as client:
            started = anyio.current_time()
            pending = await client.call_tool(
                "generate_image", {"prompt": "Odd status", "wait_seconds": 2}, progress_callback=on_progress
            )
            took = anyio.current_time() - started
            await _bend(sandbox, None)
            data = pending.structured_content or {}
            done = await client.call_tool("get_task", {"task_id": data["task_id"], "wait_seconds": 10})
    finally:
        await _bend(sandbox, None)
    assert not pending.is_error
    assert data["status"] == "paused_for_review" and data["done"] is False
    assert "'paused_for_review' is not one the Rivya docs list; it is treated as still running" in _text(pending)
    assert any("paused_for_review" in m and "do not list" in m for m in messages), messages
    assert took < 2 + 1.5  # bounded by wait_seconds (plus one request), not by the odd status
    assert (done.structured_content or {})["status"] == "succeeded"


async def test_a_succeeded_task_without_urls_is_looked_at_again_then_reported_paid_not_failed(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # `urls: []` and no primary_url: parsed by the client today. (`urls: null` is the client's to
    # accept; with it, this path is the same.)
    await _bend(sandbox, {"result": {"primary_url": None, "urls": []}})
    try:
        async with Client(build_server(settings_for(sandbox, tmp_path, poll_scale=POLL_SCALE))) as client:
            paid = await client.call_tool("generate_image", {"prompt": "No URL yet", "wait_seconds": 20})
            data = paid.structured_content or {}
            task_id = data["task_id"]
            looks = await _status_requests(sandbox, task_id)
            await _bend(sandbox, None)
            fetched = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10})
    finally:
        await _bend(sandbox, None)
    text = _text(paid)
    assert not paid.is_error, text
    assert data["status"] == "succeeded" and data["done"] is False and data["final_credits"] == 8
    assert task_id in text and "is paid (8 credits)" in text and f'get_task with task_id="{task_id}"' in text
    assert "Do not create the image again" in text
    succeeded = [t for t in sandbox.state.snapshot()["tasks"] if t["id"] == task_id]
    assert succeeded[0]["status"] == "succeeded"
    # Looked at until it succeeded, then URLLESS_LOOKS times in all without a URL, at the pace.
    assert len(looks) >= URLLESS_LOOKS
    assert all(b - a >= 5.0 * POLL_SCALE * 0.98 for a, b in itertools.pairwise(looks))
    fetched_data = fetched.structured_content or {}
    assert not fetched.is_error and fetched_data["saved_path"], _text(fetched)
    ledger = [e for e in sandbox.state.snapshot()["ledger"] if e["task_id"] == task_id and e["delta"]]
    assert [e["delta"] for e in ledger] == [-8]  # paid once


def test_the_journal_record_answers_as_a_generation(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "j.sqlite3") as journal:
        journal.record_intent(idempotency_key="k", model="m", mode="generate", prompt="p", params={})
        journal.attach_task("k", task_id="task_1", status="processing", reserved_credits=8)
        entry = journal.update("task_1", status="succeeded", final_credits=8, result_urls=["https://m.test/a.png"])
    generation = from_journal(entry)
    assert (generation.id, generation.status, generation.reserved_credits, generation.final_credits) == (
        "task_1",
        "succeeded",
        8,
        8,
    )
    assert generation.result is not None and generation.result.primary_url == "https://m.test/a.png"
    assert is_settled(generation) and generation.error is None
