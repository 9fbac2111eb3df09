"""A create left unanswered by a killed server is resumed only under the upstream and key it was sent with.

Two sandboxes on loopback stand for "the sandbox" and "the real API": a create recorded against
the first (its answer held back, then the server SIGKILLed) must not be re-sent when the server
next starts against the second, nor under another key against the first; the second sandbox's
ledger gets no charge. Started again with the first upstream and key, the server re-sends it under
its idempotency key and the task is charged exactly once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from mcp import Client

from rivya_mcp.sandbox import RunningSandbox, start_sandbox
from rivya_mcp.settings import Secret, Settings
from tests.faults._process import eventually, journal_entries, process_transport, spawn_server
from tests.faults.conftest import SANDBOX_CONFIG, Account, data_of, set_faults
from tests.faults.test_restart import _call_then_kill, _saved

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

LEFT_ALONE = "recorded under another base URL or API key (or before rivya-mcp recorded either) are left alone"
NOTHING_HERE = "recovery: nothing to resume for this base URL and API key"
# The recovery pass has decided either way: nothing of its own, or whatever it took is done.
PASS_OVER = (NOTHING_HERE, "recovery: done")


@pytest.fixture
def other_upstream() -> Iterator[RunningSandbox]:
    with start_sandbox(SANDBOX_CONFIG) as running:
        yield running


def _log(path: Path) -> IO[Any]:
    return path.open("w+")


def _read(log: IO[Any]) -> str:
    log.seek(0)
    return log.read()


async def _start_and_list(settings: Settings, log: IO[Any]) -> dict[str, Any]:
    """Start a server, wait until its recovery pass has decided, and list its tasks."""
    async with spawn_server(settings, log) as process:
        await eventually(lambda: any(line in _read(log) for line in PASS_OVER), what="the recovery pass to finish")
        async with Client(process_transport(process)) as client:
            return data_of(await client.call_tool("list_tasks", {}))


async def test_an_unanswered_create_is_resent_only_under_its_own_upstream_and_key(
    account: Account, other_upstream: RunningSandbox, tmp_path: Path
) -> None:
    settings = account.settings()
    set_faults(
        account.sandbox,
        [{"path": "/api/v1/generations", "method": "POST", "phase": "after", "delay_ms": 2500, "times": 1}],
    )
    with _log(tmp_path / "first.log") as log:
        async with spawn_server(settings, log) as first:
            await _call_then_kill(
                first,
                {"prompt": "A kite over dunes", "wait_seconds": 20},
                kill_when=lambda: bool(account.tasks()),
                what="the create",
            )
    [intent] = journal_entries(settings)
    assert (intent.status, intent.task_id) == ("unsubmitted", None)
    [upstream_task] = account.tasks()

    # Same data folder and key, another upstream: nothing is sent to it.
    with _log(tmp_path / "other-upstream.log") as log:
        listing = await _start_and_list(settings.with_changes(base_url=other_upstream.base_url), log)
        snapshot = other_upstream.state.snapshot()
        assert (snapshot["tasks"], snapshot["ledger"]) == ([], [])
        assert listing["tasks"] == []
        assert "recovery: 1 unanswered create(s) or unfinished task(s) " + LEFT_ALONE in _read(log)

    # Same upstream, another key (another account): nothing is sent under it either.
    other_key = f"rvya_sk_faults_{uuid.uuid4().hex}"
    other_account = Account(account.sandbox, tmp_path, key=other_key)
    with _log(tmp_path / "other-key.log") as log:
        listing = await _start_and_list(settings.with_changes(api_key=Secret(other_key)), log)
        assert (other_account.tasks(), other_account.ledger()) == ([], [])
        assert listing["tasks"] == []
        assert LEFT_ALONE in _read(log)
    [still] = journal_entries(settings)
    assert (still.status, still.task_id) == ("unsubmitted", None)

    # Its own upstream and key again: re-sent under the recorded key, found, charged once.
    with _log(tmp_path / "own.log") as log:
        async with spawn_server(settings, log) as own:
            await eventually(lambda: bool(_saved(settings, upstream_task["id"])), what="the re-sent task to be saved")
            async with Client(process_transport(own)) as client:
                listing = data_of(await client.call_tool("list_tasks", {}))
        assert f"recovery: intent {intent.idempotency_key} re-sent under its key: task {upstream_task['id']}" in _read(
            log
        )
    assert [(t["task_id"], t["status"]) for t in listing["tasks"]] == [(upstream_task["id"], "succeeded")]
    account.assert_one_charge_per_task(1)
    assert other_upstream.state.snapshot()["ledger"] == []
