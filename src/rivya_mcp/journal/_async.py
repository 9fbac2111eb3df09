"""The one boundary between the event loop and the journal: every call runs in a worker thread.

``TaskJournal`` is synchronous, and on either store a call can wait: SQLite waits up to its busy
timeout (10 s) for another process's write lock, PostgreSQL for a row or advisory lock another
connection holds, or for a pool connection. Called on the event loop, such a wait stopped the
whole server (a ``ping`` took 8.6 s while another process held the SQLite journal's write lock).
So the server never calls ``TaskJournal`` on the loop: it holds an ``AsyncJournal`` and awaits
``run(lambda journal: journal.get(task_id))``; the call runs in a worker thread and the loop keeps
serving pings, ``tools/list``, health checks and other calls meanwhile. One rule for both stores.

The threads come from a limiter of the journal's own, so a journal held up by a lock takes at
most ``MAX_JOURNAL_THREADS`` worker threads and never starves image saves or previews, which use
anyio's default pool. ``TaskJournal`` serialises its own work with a lock, so more threads would
only wait on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from rivya_mcp.journal._account import Owner
from rivya_mcp.journal._journal import TaskJournal

__all__ = ["MAX_JOURNAL_THREADS", "AsyncJournal"]

T = TypeVar("T")

MAX_JOURNAL_THREADS = 4


class AsyncJournal:
    """A ``TaskJournal`` for code on the event loop: ``await journal.run(work)``."""

    def __init__(self, journal: TaskJournal, *, _root: AsyncJournal | None = None) -> None:
        self.sync = journal
        # Scoped views of one journal share its limiter: the thread bound is the journal's, not the view's.
        self._root = _root
        # Made on first use: a limiter belongs to the event loop that first awaits it.
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def owner(self) -> Owner | None:
        """The owner (upstream, account) the journal is scoped to (no I/O)."""
        return self.sync.owner

    @property
    def person(self) -> str | None:
        return self.sync.person

    def view(self, journal: TaskJournal) -> AsyncJournal:
        """``journal`` (a scoped view of this one, ``TaskJournal.scoped``) behind the same boundary."""
        return AsyncJournal(journal, _root=self._root or self)

    async def run(self, work: Callable[[TaskJournal], T]) -> T:
        """``work(journal)`` in a worker thread.

        A cancelled caller still waits for the thread: a write that left is finished and known
        (an attached task id is never half-recorded because the call around it was cancelled).
        """
        holder = self._root or self
        if holder._limiter is None:
            holder._limiter = anyio.CapacityLimiter(MAX_JOURNAL_THREADS)
        return await anyio.to_thread.run_sync(work, self.sync, limiter=holder._limiter)

    def close(self) -> None:
        self.sync.close()
