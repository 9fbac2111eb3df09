"""A delivery wakes the call waiting on its task only once the journal holds the task's final status.

A call (or a replica, through NOTIFY) that wakes reads the journal: woken before the write, it
would see the task still running. The journal's write lock is held by another connection while
the delivery is applied, so the write waits; the waiting call must not hear of the delivery until
the lock is released and the write is in (issue 23 item 19: waking first went unnoticed).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.manifest import get_manifest, to_wire_params, validate_arguments
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.tasks import Intent, Runtime, SecretStore, StatusUpdate, TaskService, WebhookReceiver
from tests.server.conftest import TEST_KEY, settings_for

pytestmark = pytest.mark.anyio

MANIFEST = get_manifest("flux-kontext-max")


async def test_the_waiting_call_is_woken_only_after_the_journal_holds_the_final_status(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    # A slow pace: the waiting call's first status request would come 25 s after the create, within
    # its 30 s wait (so it waits) but long after this test is over (so only the delivery can end it).
    settings = settings_for(sandbox, tmp_path, poll_scale=10.0)
    runtime = Runtime(settings)
    service = TaskService(runtime)
    receiver = WebhookReceiver(service, SecretStore(runtime.journal))
    prompt = "A lantern the delivery finishes"
    params = to_wire_params(MANIFEST, "generate", validate_arguments(MANIFEST, "generate", {"prompt": prompt}))
    heard: list[tuple[str, str | None]] = []

    async with runtime.session():
        created = await service.create(Intent("wake-after-write", "generate", MANIFEST.id, prompt, params, None))
        async with AsyncRivyaClient(api_key=TEST_KEY, base_url=sandbox.base_url) as api:
            with anyio.fail_after(10):
                while not (finished := await api.get_generation(created.id)).is_terminal:
                    await anyio.sleep(0.1)
        journal_path = Path(settings.data_dir) / "journal.sqlite3"

        async def on_status(update: StatusUpdate) -> None:
            if update.kind == "webhook":
                # What the woken call would find in the journal at this very moment.
                with sqlite3.connect(journal_path) as reader:
                    row = reader.execute("SELECT status FROM tasks WHERE task_id = ?", (created.id,)).fetchone()
                heard.append((update.kind, row[0] if row else None))

        async with anyio.create_task_group() as group:
            followed: list[object] = []

            async def follow() -> None:
                followed.append(await service.follow(created, wait=30, on_status=on_status, prompt=prompt))

            group.start_soon(follow)
            await anyio.sleep(0.3)  # the call is waiting on the task
            blocker = sqlite3.connect(journal_path, timeout=0, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the journal's write lock
            try:
                group.start_soon(receiver.complete, finished)
                await anyio.sleep(1.0)
                assert heard == [], "the waiting call was woken before the journal could hold the final status"
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            with anyio.fail_after(10):
                while not followed:
                    await anyio.sleep(0.05)
    assert heard == [("webhook", "succeeded")]
