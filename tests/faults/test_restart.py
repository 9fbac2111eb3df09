"""A server killed (SIGKILL) mid-task, started again on the same data directory, over real stdio.

Both tests assert what the agent sees after the restart (get_task, list_tasks), that the
recovery saved the image without being asked, and that the sandbox charged once per task.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from mcp import Client

from rivya_mcp.settings import Settings
from tests.faults._process import eventually, journal_entries, process_transport, spawn_server
from tests.faults.conftest import Account, advance_clock, data_of, set_faults, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _call_then_kill(
    process: Process, arguments: dict[str, Any], *, kill_when: Any, what: str
) -> list[BaseException]:
    """Call generate_image on ``process`` and SIGKILL it once ``kill_when()`` holds, mid-call."""
    outcome: list[BaseException] = []

    async def call() -> None:
        try:
            async with Client(process_transport(process)) as client:
                await client.call_tool("generate_image", arguments)
        except BaseException as exc:  # the connection dies with the process
            outcome.append(exc)
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await eventually(kill_when, what=what)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        group.cancel_scope.cancel()
    assert process.returncode == -signal.SIGKILL
    return outcome


def _saved(settings: Settings, task_id: str) -> list[str]:
    entry = next((e for e in journal_entries(settings) if e.task_id == task_id), None)
    return list(entry.saved_paths) if entry else []


async def test_killed_mid_wait_the_restarted_server_finishes_and_delivers_from_disk(
    account: Account, tmp_path: Path
) -> None:
    settings = account.settings()
    errlog = (tmp_path / "server.log").open("w+")
    arguments = {"prompt": "A fox under the northern lights [sandbox:seconds=30]", "wait_seconds": 50}

    def waiting() -> bool:
        # The create was answered and recorded; the server is now polling.
        return any(e.task_id and e.status in ("queued", "processing") for e in journal_entries(settings))

    async with spawn_server(settings, errlog) as first:
        await _call_then_kill(first, arguments, kill_when=waiting, what="the task to be created")
    [entry] = journal_entries(settings)
    task_id = entry.task_id
    assert task_id is not None and not entry.saved_paths

    advance_clock(account.sandbox, 30)  # the task finishes while no server runs
    async with spawn_server(settings, errlog) as second:
        # No tool call yet: the recovery pass, started with the server, saves the image by itself.
        await eventually(lambda: bool(_saved(settings, task_id)), what="the recovery to save the image")
        advance_clock(account.sandbox, 3600)  # the result URL has expired now
        async with Client(process_transport(second)) as client:
            result = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0})
            listing = data_of(await client.call_tool("list_tasks", {}))
    data = data_of(result)
    saved = Path(data["saved_path"])
    assert data["status"] == "succeeded" and saved.is_file() and [str(saved)] == _saved(settings, task_id)
    assert "saved copy" in text_of(result)
    assert saved.name.endswith("_a-fox-under-the-northern-lights.jpg")  # named after the journal's prompt
    assert [(t["task_id"], t["status"], t["saved_path"]) for t in listing["tasks"]] == [
        (task_id, "succeeded", str(saved))
    ]
    account.assert_one_charge_per_task(1)
    errlog.seek(0)
    assert f"recovery: task {task_id} finished; image saved" in errlog.read()
    errlog.close()


async def test_killed_before_the_create_answer_arrived_the_restart_resends_under_the_same_key(
    account: Account, tmp_path: Path
) -> None:
    settings = account.settings()
    errlog = (tmp_path / "server.log").open("w+")
    # The sandbox creates (and charges) the task, then holds the answer back: the server is stuck
    # waiting for it with only an unsubmitted intent in its journal when it is killed.
    set_faults(
        account.sandbox,
        [{"path": "/api/v1/generations", "method": "POST", "phase": "after", "delay_ms": 2500, "times": 1}],
    )
    arguments = {"prompt": "A paper boat on a pond", "wait_seconds": 20}
    async with spawn_server(settings, errlog) as first:
        await _call_then_kill(first, arguments, kill_when=lambda: bool(account.tasks()), what="the create")
    [intent] = journal_entries(settings)
    assert (intent.status, intent.task_id) == ("unsubmitted", None)
    [upstream] = account.tasks()
    assert upstream["idempotency_key"] == intent.idempotency_key

    async with spawn_server(settings, errlog) as second:
        await eventually(lambda: bool(_saved(settings, upstream["id"])), what="the re-sent task to be saved")
        async with Client(process_transport(second)) as client:
            listing = data_of(await client.call_tool("list_tasks", {}))
            result = await client.call_tool("get_task", {"task_id": upstream["id"], "wait_seconds": 0})
    data = data_of(result)
    assert data["status"] == "succeeded" and Path(data["saved_path"]).is_file()
    assert [(t["task_id"], t["idempotency_key"], t["status"]) for t in listing["tasks"]] == [
        (upstream["id"], intent.idempotency_key, "succeeded")
    ]
    account.assert_one_charge_per_task(1)
    errlog.seek(0)
    assert f"recovery: intent {intent.idempotency_key} re-sent under its key: task {upstream['id']}" in errlog.read()
    errlog.close()
