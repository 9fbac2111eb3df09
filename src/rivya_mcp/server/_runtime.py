"""The API client and task journal a server uses: given, or made on first use and closed last.

It also owns the two things that span sessions: the per-task locks that keep a tool call and the
background recovery from polling or saving one task at the same time, and the recovery pass that
the first session starts (see ``_recovery``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio

from rivya_mcp.client import AsyncRivyaClient, Generation, MissingAPIKeyError
from rivya_mcp.journal import TaskJournal
from rivya_mcp.server._errors import MISSING_KEY_HELP
from rivya_mcp.server._ledger import Ledger
from rivya_mcp.settings import Settings

log = logging.getLogger(__name__)

JOURNAL_FILENAME = "journal.sqlite3"

# No two status requests for one task closer than this (times poll_scale): a call that continues a
# task another call has just polled (get_task right after generate_image returned it pending, a
# repeated create, the recovery) waits for the rest of it first.
MIN_POLL_GAP_SECONDS = 1.0

# With webhook completion on, polls are this many times further apart than the documented pace:
# the delivery normally finishes a task, and a lost one costs at most one of these longer gaps.
WEBHOOK_FALLBACK_POLL_FACTOR = 3.0


@dataclass
class _Follower:
    scope: anyio.CancelScope
    pushed: Generation | None = None


# The recovery pass, given the moment this server started: it handles what was recorded before.
Recovery = Callable[[datetime], Awaitable[None]]


class Runtime:
    """Owns what it creates; never closes what it was given.

    Nothing is created at construction (building a server has no side effects): the client on
    the first call that needs the API, the journal on the first call that needs it. Sessions
    (stdio, each SSE connection, each in-memory client) enter :meth:`session`; the last one out
    closes what this runtime created.

    The first session also starts the recovery pass in the background; it runs while that
    session lasts and, if cut short, goes on in another open session (SSE and Streamable HTTP
    keep several) or else with the next one to start, until it has finished once. It covers only
    what was recorded before the first session began: this process's own tasks are followed by
    the calls that made them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncRivyaClient | None = None,
        journal: TaskJournal | None = None,
        local_paths: bool = True,
    ) -> None:
        self.settings = settings
        self.local_paths = local_paths
        self._client = client
        self._journal = journal
        self._owns_client = False
        self._owned_journal: TaskJournal | None = None
        self._sessions = 0
        self._task_locks: dict[str, anyio.Lock] = {}
        self._last_poll: dict[str, float] = {}  # task id → anyio.current_time() of its last status request
        # Waits a webhook delivery may cut short: task id → (the wait's cancel scope, what was pushed).
        self._followers: dict[str, _Follower] = {}
        self._recovery: Recovery | None = None
        self._recovery_state = "idle"  # idle → running → done (back to idle when cut short)
        # Set when the session running the pass ends before it: the other sessions' hosts wake.
        self._recovery_released: anyio.Event | None = None
        self.started_at: datetime | None = None

    def set_recovery(self, recovery: Recovery | None) -> None:
        self._recovery = recovery

    @property
    def can_call_api(self) -> bool:
        """A client was given or a key is configured (no request is made to find out)."""
        return self._client is not None or self.settings.api_key is not None

    @asynccontextmanager
    async def following(self, task_id: str, *, timeout: float = math.inf) -> AsyncIterator[bool]:
        """Hold the task's lock while polling or saving it; yields False if it stayed busy for ``timeout``.

        One holder at a time per task means no doubled polling (and rate-limit use) and no second
        download of an image someone is already saving.
        """
        lock = self._task_locks.get(task_id)
        if lock is None:
            # fast_acquire: a free lock is taken without a trip through the event loop.
            lock = self._task_locks[task_id] = anyio.Lock(fast_acquire=True)
        acquired = False
        try:
            lock.acquire_nowait()  # the usual case, nobody else on this task: no timer needed
            acquired = True
        except anyio.WouldBlock:
            with anyio.move_on_after(timeout):
                await lock.acquire()
                acquired = True
        try:
            yield acquired
        finally:
            if acquired:
                lock.release()
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._task_locks.pop(task_id, None)

    def note_poll(self, task_id: str, generation: Generation | None) -> None:
        """Record a status request for ``task_id`` that just returned ``generation`` (None: it failed).

        Only a task still running is spaced out: a finished one is read, not polled.
        """
        if generation is not None and generation.is_terminal:
            self._last_poll.pop(task_id, None)
            return
        now = anyio.current_time()
        if len(self._last_poll) > 256:
            # Only polls younger than the gap matter; forget the rest so the map stays small.
            self._last_poll = {t: at for t, at in self._last_poll.items() if now - at < self.min_poll_gap}
        self._last_poll[task_id] = now

    @property
    def min_poll_gap(self) -> float:
        return MIN_POLL_GAP_SECONDS * self.settings.poll_scale

    def poll_wait(self, task_id: str) -> float:
        """Seconds until ``task_id`` may be polled again (0 if now)."""
        last = self._last_poll.get(task_id)
        if last is None:
            return 0.0
        return max(0.0, last + self.min_poll_gap - anyio.current_time())

    async def poll(self, task_id: str) -> Generation:
        """``GET`` the task, at least ``min_poll_gap`` after this process last saw it running."""
        wait = self.poll_wait(task_id)
        if wait > 0:
            await anyio.sleep(wait)
        generation: Generation | None = None
        try:
            generation = await self.client().get_generation(task_id)
            return generation
        finally:
            self.note_poll(task_id, generation)

    @contextmanager
    def interruptible(self, task_id: str) -> Iterator[_Follower]:
        """Run a wait for ``task_id`` that ``push`` can end early with a newer state of the task."""
        follower = _Follower(anyio.CancelScope())
        self._followers[task_id] = follower
        try:
            with follower.scope:
                yield follower
        finally:
            if self._followers.get(task_id) is follower:
                del self._followers[task_id]

    def push(self, generation: Generation) -> bool:
        """Hand a newer state of a task (from a webhook) to the call waiting on it; False if none is."""
        follower = self._followers.get(generation.id)
        if follower is None:
            return False
        follower.pushed = generation
        follower.scope.cancel()
        return True

    def is_busy(self, task_id: str) -> bool:
        lock = self._task_locks.get(task_id)
        return lock is not None and lock.locked()

    def client(self) -> AsyncRivyaClient:
        if self._client is None:
            if self.settings.api_key is None:
                # Refused before any request: the message says how to fix it.
                raise MissingAPIKeyError(MISSING_KEY_HELP)
            # With webhooks on, a delivery finishes the task and polling is only the fallback.
            slower = WEBHOOK_FALLBACK_POLL_FACTOR if self.settings.public_url else 1.0
            self._client = AsyncRivyaClient(
                api_key=self.settings.api_key,
                base_url=self.settings.base_url,
                timeout=self.settings.request_timeout,
                max_retries=self.settings.max_retries,
                poll_scale=self.settings.poll_scale * slower,
            )
            self._owns_client = True
        return self._client

    def ledger(self) -> Ledger:
        if self._journal is None:
            try:
                path = Path(self.settings.data_dir).expanduser().resolve() / JOURNAL_FILENAME
                path.parent.mkdir(parents=True, exist_ok=True)
                from rivya_mcp.journal import TaskJournal

                self._journal = self._owned_journal = TaskJournal(path)
            except Exception:
                log.exception("journal unavailable; tasks are not recorded durably")
                return Ledger(None)
        return Ledger(self._journal)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Runtime]:
        self._sessions += 1
        if self.started_at is None:
            self.started_at = datetime.now(UTC)
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as background:
                if self._recovery is not None and self._recovery_state != "done":
                    background.start_soon(self._host_recovery, self._recovery, self.started_at)
                try:
                    yield self
                except Exception as exc:
                    # Raised below, outside the task group, so callers see it unwrapped.
                    error = exc
                finally:
                    background.cancel_scope.cancel()
            if error is not None:
                raise error
        finally:
            self._sessions -= 1
            if self._sessions == 0:
                await self.aclose()

    async def _host_recovery(self, recovery: Recovery, started_at: datetime) -> None:
        """In one session's background: run the pass if no session does, else stand by to take it over."""
        while self._recovery_state != "done":
            if self._recovery_state == "idle":
                self._recovery_state = "running"
                await self._recover(recovery, started_at)
            else:
                if self._recovery_released is None:
                    self._recovery_released = anyio.Event()
                await self._recovery_released.wait()

    async def _recover(self, recovery: Recovery, started_at: datetime) -> None:
        finished = False
        try:
            await recovery(started_at)
            finished = True
        except Exception:
            # A broken pass is not retried every session; the next server start tries again.
            log.exception("recovery: stopped by an unexpected error")
            finished = True
        finally:
            self._recovery_state = "done" if finished else "idle"
            released, self._recovery_released = self._recovery_released, None
            if released is not None:
                released.set()  # wakes every standing-by host: the first to run takes the pass over

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            client, self._client, self._owns_client = self._client, None, False
            await client.aclose()
        if self._owned_journal is not None:
            self._owned_journal.close()
            self._owned_journal = self._journal = None
