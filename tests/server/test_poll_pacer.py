"""The per-task poll pace: Retry-After across calls, and the in-memory pace without a journal."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.types import TextContent

from rivya_mcp.client import Generation
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.tasks import Ledger, PollPacer
from tests.server.conftest import settings_for

START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment


@pytest.mark.anyio
async def test_without_a_journal_the_pace_is_kept_in_memory() -> None:
    clock = Clock()
    pacer = PollPacer(scale=1.0, now=clock)
    no_journal = Ledger(None)
    assert await pacer.due_in("task_other", no_journal, None) == 0.0  # a task it knows nothing of: look now
    pacer.started(Generation(id="task_1", status="queued"))
    assert await pacer.due_in("task_1", no_journal, None) == pytest.approx(2.5)  # the first look waits too
    clock.moment += timedelta(seconds=2.5)
    assert await pacer.due_in("task_1", no_journal, None) == 0.0
    scaled = PollPacer(scale=0.1, now=clock)
    scaled.started(Generation(id="task_1", status="queued"))
    assert await scaled.due_in("task_1", no_journal, None) == pytest.approx(0.25)


@pytest.mark.anyio
async def test_a_long_retry_after_on_a_poll_holds_for_later_calls_too(sandbox: RunningSandbox, tmp_path: Path) -> None:
    rule = {"path": "/api/v1/generations/", "method": "GET", "status": 429, "retry_after": 40, "times": 1}
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        await control.delete("/_sandbox/requests")
        assert (await control.post("/_sandbox/faults", json={"rules": [rule]})).status_code == 200
        try:
            async with Client(build_server(settings_for(sandbox, tmp_path, poll_scale=0.1))) as client:
                limited = await client.call_tool("generate_image", {"prompt": "Limited", "wait_seconds": 5})
                records = (await control.get("/_sandbox/requests")).json()["requests"]
                [create] = [r for r in records if r["method"] == "POST"]
                polls = [r for r in records if r["method"] == "GET" and r["path"].startswith("/api/v1/generations/")]
                task_id = polls[0]["path"].rsplit("/", 1)[1]
                later = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 3})
                after = (await control.get("/_sandbox/requests")).json()["requests"]
        finally:
            await control.delete("/_sandbox/faults")
    text = "\n".join(c.text for c in limited.content if isinstance(c, TextContent))
    assert create["status"] == 201
    # Retry-After: 40 is beyond the call's deadline: not waited for, and not retried at once. The
    # call returns the paid task pending (issue 22: every wait is bounded by the call's deadline).
    assert not limited.is_error and task_id in text and "still" in text, text
    assert (limited.structured_content or {})["done"] is False
    assert [p["status"] for p in polls] == [429]
    later_text = "\n".join(c.text for c in later.content if isinstance(c, TextContent))
    assert not later.is_error
    allowed_in = re.search(r"next status check is allowed in (\d+) s", later_text)
    assert allowed_in is not None and 30 <= int(allowed_in.group(1)) <= 40, later_text
    assert len(after) == len(records)  # the later call made no request: 40 s had not passed
