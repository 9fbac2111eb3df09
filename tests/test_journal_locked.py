"""A journal held up by a lock never holds up the server (issue 21).

While another process holds the SQLite journal's write lock (``BEGIN IMMEDIATE``), or another
connection holds the PostgreSQL journal's write lock (the advisory lock every journal write takes),
a generation in progress waits on the journal at its next write (its next poll turn). Before the
journal moved off the event loop, that wait was the whole
server's: a ``ping`` took as long as the lock (8.6 s measured). Now every journal call runs in a
worker thread (``journal.AsyncJournal``): pings and ``tools/list`` answer at once, and the
generation finishes once the lock is released.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp.client import Client

from rivya_mcp.journal.postgres import JOURNAL_WRITE_LOCK
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret
from tests.tasks.conftest import Requester, serve, tasks_settings

# Longer than a ping could take by accident, far shorter than the lock.
FAST_ENOUGH_SECONDS = 1.0
LOCK_SECONDS = 5.0

# Another process takes the SQLite journal's write lock (as another server process or
# `rivya-mcp webhooks rotate-secret` does while it writes), reports, and holds it until its stdin
# is closed. WAL readers go on; every writer waits up to its busy timeout.
SQLITE_LOCKER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
connection.execute("BEGIN IMMEDIATE")
connection.execute("UPDATE tasks SET updated_at = updated_at")
print("locked", flush=True)
sys.stdin.read()
connection.execute("COMMIT")
connection.close()
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    # Long enough that the generation is still running when the lock is taken.
    with start_sandbox(SandboxConfig(queued_seconds=0.5, processing_seconds=4.0)) as running:
        yield running


@contextmanager
def sqlite_locked(journal: Path) -> Iterator[None]:
    with subprocess.Popen(
        [sys.executable, "-c", SQLITE_LOCKER, str(journal)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as locker:
        assert locker.stdout is not None and locker.stdin is not None
        try:
            assert locker.stdout.readline().strip() == "locked"
            yield
        finally:
            locker.stdin.close()
            assert locker.wait(timeout=30) == 0


@contextmanager
def postgres_locked(url: str) -> Iterator[None]:
    """Another connection holds the journal's write lock (``postgres.JOURNAL_WRITE_LOCK``)."""
    with psycopg.connect(url) as connection, connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (JOURNAL_WRITE_LOCK,))
        yield


# The SDK's client warns that ping is gone from 2026-07-28; it is still a core method of the
# handshake era this client connects with (mode="legacy"), which is what hosts use today.
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_pings_and_tools_list_answer_while_a_generation_waits_on_a_locked_journal(
    store: str, sandbox: RunningSandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    changes: dict[str, Any] = {"poll_scale": 0.2}
    if store == "postgres":
        url = request.getfixturevalue("postgres_url")
        changes["database_url"] = Secret(url)
        locked: Callable[[], Any] = lambda: postgres_locked(url)  # noqa: E731
    else:
        locked = lambda: sqlite_locked(tmp_path / "data" / "journal.sqlite3")  # noqa: E731
    with serve(tasks_settings(sandbox, tmp_path, **changes)) as server:
        generator = Requester(f"{server.base_url}/mcp", tasks=False)
        outcome: dict[str, Any] = {}

        def generate() -> None:
            outcome["result"] = generator.tool("generate_image", {"prompt": "a lock on a door", "wait_seconds": 40})

        async def ask_while_locked() -> list[float]:
            """Pings and tools/list from a real MCP client of its own, while the journal is locked."""
            answered: list[float] = []
            # Legacy mode: ping is a core method there (2026-07-28 removed it).
            async with Client(f"{server.base_url}/mcp", mode="legacy") as client:

                async def timed(call: Callable[[], Any]) -> None:
                    started = anyio.current_time()
                    await call()
                    answered.append(anyio.current_time() - started)

                await timed(client.send_ping)  # connected, and fast before any lock
                with locked():
                    lock_started = anyio.current_time()
                    # The generation's paced wait touches the journal at least every second.
                    await anyio.sleep(1.5)
                    await timed(client.send_ping)
                    await timed(client.list_tools)
                    await anyio.sleep(1.0)
                    await timed(client.send_ping)
                    await anyio.sleep(max(0.0, LOCK_SECONDS - (anyio.current_time() - lock_started)))
            return answered

        try:
            worker = threading.Thread(target=generate)
            worker.start()
            # The create is on record (a row exists to lock) and the call is in its wait.
            deadline = time.monotonic() + 20
            while not any(t["prompt"] == "a lock on a door" for t in sandbox.state.snapshot()["tasks"]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            answered = anyio.run(ask_while_locked)
            worker.join(timeout=60)
            assert not worker.is_alive()
        finally:
            generator.close()
    assert max(answered) < FAST_ENOUGH_SECONDS, answered
    result = outcome["result"]
    assert result.get("isError") is not True, result
    assert result["structuredContent"]["status"] == "succeeded"
    assert Path(result["structuredContent"]["saved_path"]).is_file()
