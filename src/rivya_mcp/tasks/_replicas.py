"""What replicas sharing one PostgreSQL database need: task leases, wake-ups, shared images.

**Leases.** Whoever polls, downloads or saves a task holds the lease ``task:<id>``; whoever sends
a create holds ``intent:<key>`` from before the intent is recorded until the answer is. A lease
is a row with an expiry (``PostgresStore.try_lease``), renewed every third of
``Settings.lease_seconds`` while held. A replica that dies (kill -9, a lost machine) stops
renewing, the lease lapses, and the sweep of another replica takes the task over.

**Wake-ups.** A replica waiting for a lease does not poll the database: releasing one sends
``NOTIFY rivya_tasks, '<name>'``, and each replica keeps one ``LISTEN`` connection that wakes its
waiters. A waiter also wakes when the holder's lease would lapse, which covers a holder that died
(no NOTIFY) and a lost listener connection.

**Images.** A saved image's bytes go to the ``images`` table as well as the local output folder
(decided and measured in docs/hosting.md), so ``resources/read`` of ``rivya://images/<name>``
works on any replica and a task saved by one is never downloaded again by another.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, cast

import anyio

from rivya_mcp.journal import AsyncJournal

if TYPE_CHECKING:
    # Imported only for types: psycopg is the `postgres` extra, and a server without it (uvx
    # rivya-mcp, the Claude Desktop bundle) imports this module all the same.
    from rivya_mcp.journal.postgres import PostgresStore

log = logging.getLogger(__name__)

# The listener reconnects after this long when its connection drops (waiters fall back to the
# lease expiry meanwhile, so nothing hangs).
LISTEN_RETRY_SECONDS = 2.0
# A NOTIFY payload naming a task whose journal entry another replica just changed (not a lease).
CHANGED_PREFIX = "changed:"


class Coordinator:
    def __init__(self, journal: AsyncJournal, *, lease_seconds: float) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if journal.sync.store.dialect != "postgres":
            raise TypeError("replicas coordinate through a PostgreSQL journal")
        store = cast("PostgresStore", journal.sync.store)
        # Every database call goes through the journal's one boundary (a worker thread).
        self._journal = journal
        self.store: PostgresStore = store
        self.lease_seconds = lease_seconds
        # Unique per process: a restarted replica is a new holder, never mistaken for the dead one.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._waiters: dict[str, anyio.Event] = {}
        self.listening = anyio.Event()  # set once LISTEN is in place (tests and readiness wait on it)
        # Called with a task id when another replica says the task changed (a webhook delivery).
        self.on_task_changed: Callable[[str], Awaitable[None]] | None = None

    # -- leases ------------------------------------------------------------------------------

    async def try_lease(self, name: str) -> float | None:
        """Take ``name`` now: None if taken, else seconds left on the other holder's lease."""
        return await self._journal.run(lambda _: self.store.try_lease(name, self.holder, self.lease_seconds))

    async def release(self, name: str) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self._journal.run(lambda _: self.store.release_lease(name, self.holder))
            except Exception:
                # It lapses on its own; a waiter then wakes at the expiry instead of at once.
                log.warning("could not release lease %s; it will lapse", name, exc_info=True)

    @asynccontextmanager
    async def lease(self, name: str, *, timeout: float = math.inf) -> AsyncIterator[bool]:
        """Hold ``name`` (renewed in the background) for the block; yields False if not had within ``timeout``."""
        deadline = anyio.current_time() + timeout
        while True:
            # Registered before trying, so a release between the try and the wait still wakes us.
            woken = self._waiters.setdefault(name, anyio.Event())
            left = await self.try_lease(name)
            if left is None:
                break
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                yield False
                return
            # A NOTIFY wakes us at once; the expiry covers a holder that died without one.
            with anyio.move_on_after(min(remaining, left + 0.05)):
                await woken.wait()
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as renewals:
                renewals.start_soon(self._renew, name)
                try:
                    yield True
                except Exception as exc:
                    # Raised below, outside the task group, so the holder's caller sees it unwrapped
                    # (a refused create is a refusal, not an ExceptionGroup).
                    error = exc
                finally:
                    renewals.cancel_scope.cancel()
        finally:
            await self.release(name)
        if error is not None:
            raise error

    async def _renew(self, name: str) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            try:
                left = await self.try_lease(name)
            except Exception:
                log.warning("could not renew lease %s", name, exc_info=True)
                continue
            if left is not None:
                # Lapsed (this process stalled longer than the lease) and someone else took it: the
                # other holder re-checks the journal under its lease, so at worst one extra poll.
                log.warning("lease %s was taken over by another replica", name)
                return

    async def holder_of(self, name: str) -> str | None:
        """Who holds ``name`` now (None: nobody, or the lease lapsed)."""
        return await self._journal.run(lambda _: self.store.lease_holder(name))

    async def held_elsewhere(self, name: str) -> bool:
        holder = await self.holder_of(name)
        return holder is not None and holder != self.holder

    async def ping(self) -> None:
        """Raises when the database does not answer."""
        await self._journal.run(lambda _: self.store.ping())

    # -- wake-ups ----------------------------------------------------------------------------

    async def listen(self) -> None:
        """Wake local waiters on every NOTIFY; runs for the life of the server (reconnects)."""
        import psycopg

        from rivya_mcp.journal.postgres import NOTIFY_CHANNEL

        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    # Anything released while we were not listening: wake everyone to look again.
                    self._wake_all()
                    async for note in conn.notifies():
                        await self._wake(note.payload)
            except Exception as exc:
                log.warning("lease listener: %s: %s; reconnecting", type(exc).__name__, exc)
                if self.listening.is_set():
                    self.listening = anyio.Event()  # not ready (/readyz) until LISTEN is back
                self._wake_all()
            await anyio.sleep(LISTEN_RETRY_SECONDS)

    async def task_changed(self, task_id: str) -> None:
        """Tell the other replicas that ``task_id`` changed in the journal (their waiters look again)."""
        try:
            await self._journal.run(lambda _: self.store.notify(CHANGED_PREFIX + task_id))
        except Exception:
            # Their slow fallback poll still finds it.
            log.warning("could not announce the change of %s to the other replicas", task_id, exc_info=True)

    async def _wake(self, name: str) -> None:
        if name.startswith(CHANGED_PREFIX):
            if self.on_task_changed is not None:
                await self.on_task_changed(name.removeprefix(CHANGED_PREFIX))
            return
        event = self._waiters.pop(name, None)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, {}
        for event in waiters.values():
            event.set()

    # -- images ------------------------------------------------------------------------------

    async def share_image(self, name: str, task_id: str, mime_type: str, data: bytes) -> None:
        await self._journal.run(lambda _: self.store.put_image(name, task_id, mime_type, data))

    async def image_of_task(self, task_id: str) -> tuple[str, bytes] | None:
        return await self._journal.run(lambda _: self.store.image_of_task(task_id))

    async def image(self, name: str) -> tuple[str, bytes] | None:
        return await self._journal.run(lambda _: self.store.get_image(name))


def coordinator_for(journal: AsyncJournal, *, lease_seconds: float) -> Coordinator | None:
    """A coordinator when the journal is in PostgreSQL; None for the embedded (SQLite) journal."""
    return Coordinator(journal, lease_seconds=lease_seconds) if journal.sync.store.dialect == "postgres" else None
