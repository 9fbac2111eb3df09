"""``count: 4`` with the server killed (SIGKILL) mid-call, started again on the same data directory.

Each variation is its own task under its own idempotency key, journaled before its create leaves:
after the restart every task that was started is finished exactly once (one of them had its create
answer held back, so the journal only had its intent), and the same call again finds all four.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from mcp import Client

from tests.faults._process import eventually, journal_entries, process_transport, spawn_server
from tests.faults.conftest import Account, advance_clock, data_of, set_faults, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

KEY = "four-kites"
ARGUMENTS = {"prompt": "A kite festival [sandbox:seconds=30]", "count": 4, "idempotency_key": KEY, "wait_seconds": 50}


async def _call_then_kill(process: Process, *, kill_when: Any) -> None:
    async def call() -> None:
        try:
            async with Client(process_transport(process)) as client:
                await client.call_tool("generate_image", ARGUMENTS)
        except BaseException as exc:  # the connection dies with the process
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await eventually(kill_when, what="the four creates to reach the sandbox")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        group.cancel_scope.cancel()
    assert process.returncode == -signal.SIGKILL


async def test_count_4_killed_mid_call_every_started_task_is_finished_once_after_a_restart(
    account: Account, tmp_path: Path
) -> None:
    settings = account.settings()
    errlog = (tmp_path / "server.log").open("w+")
    # One create's answer is held back: when the server dies, the journal holds three tasks and one
    # intent whose create did reach the API (and was charged).
    set_faults(
        account.sandbox,
        [{"path": "/api/v1/generations", "method": "POST", "phase": "after", "delay_ms": 4000, "times": 1}],
    )

    def started() -> bool:
        created = [e for e in journal_entries(settings) if e.task_id]
        return len(account.tasks()) == 4 and len(created) == 3

    async with spawn_server(settings, errlog) as first:
        await _call_then_kill(first, kill_when=started)
    entries = journal_entries(settings)
    assert sorted(e.idempotency_key for e in entries) == [KEY, f"{KEY}#2", f"{KEY}#3", f"{KEY}#4"]
    assert sorted(e.status for e in entries) == ["queued", "queued", "queued", "unsubmitted"]
    assert not any(e.saved_paths for e in entries)
    set_faults(account.sandbox, [])

    advance_clock(account.sandbox, 30)  # the tasks finish while no server runs
    async with spawn_server(settings, errlog) as second:
        # The recovery pass re-sends the unanswered create under its key (the API returns the task it
        # already made) and saves all four images, without any call.
        await eventually(
            lambda: len([e for e in journal_entries(settings) if e.saved_paths]) == 4,
            timeout=30,
            what="the recovery to save all four images",
        )
        async with Client(process_transport(second)) as client:
            again = await client.call_tool("generate_image", ARGUMENTS)
    data = data_of(again)
    candidates = data["candidates"]
    assert [c["number"] for c in candidates] == [1, 2, 3, 4]
    assert all(c["reused"] and c["saved_path"] and Path(c["saved_path"]).is_file() for c in candidates)
    assert {c["task_id"] for c in candidates} == {t["id"] for t in account.tasks()}
    assert "4 found under their idempotency keys" in text_of(again)
    account.assert_one_charge_per_task(4)  # four tasks, four charges: no fifth
    errlog.seek(0)
    log = errlog.read()
    assert f"recovery: intent {KEY}#" in log or f"recovery: intent {KEY} re-sent" in log
    errlog.close()
