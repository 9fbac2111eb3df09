"""The poll pace per task: when a task may next be asked for its status, and taking that turn.

rivya-api §3.4 asks for a first look 2-3 s after the create and then 5-10 s between looks, slower
over time. The schedule is ``client.poll_delay``; this module applies it *per task* rather than
per wait, so a ``get_task`` called in a loop, a second call on the same task, the recovery pass
and another server process on the same journal all share one pace:

- the task's journal entry holds its last status request and the earliest next one
  (``TaskJournal.claim_poll``: one check-and-set, so of two processes due at once one polls);
- a task the journal does not hold (created elsewhere, or the journal is unavailable) is paced
  in memory, for this process only;
- a ``Retry-After`` on a status request pushes the next turn back at least that far.

Times are wall-clock (UTC): they are compared across processes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from rivya_mcp.client import (
    DOCUMENTED_STATUSES,
    FAILED,
    FIRST_POLL_DELAY,
    SUCCEEDED,
    AsyncRivyaClient,
    Generation,
    GenerationResult,
    RivyaError,
    TaskError,
    poll_delay,
)
from rivya_mcp.journal import JournalEntry
from rivya_mcp.tasks._ledger import Ledger

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# In-memory paces kept for tasks outside the journal; the oldest are forgotten beyond this.
MAX_MEMORY_TASKS = 512


def is_settled(generation: Generation) -> bool:
    """Nothing more to learn by polling: failed, or succeeded with a URL to fetch.

    rivya-api §3.3 says ``urls`` is there "when available", so a succeeded task without any URL
    is still polled (at the same pace) until one appears.
    """
    if generation.status == FAILED:
        return True
    return generation.status == SUCCEEDED and generation.result_url is not None


def is_undocumented(status: str) -> bool:
    """A status rivya-api.md does not list: shown by name and treated as still running."""
    return status not in DOCUMENTED_STATUSES


def from_journal(entry: JournalEntry) -> Generation:
    """The task as the journal last saw it: answers a look that comes before the next allowed poll."""
    urls = list(entry.result_urls)
    error = TaskError(code=entry.error_code, message=entry.error_message) if entry.status == FAILED else None
    return Generation(
        id=entry.task_id or "",
        status=entry.status,
        model=entry.model,
        reserved_credits=None if entry.reserved_credits is None else int(entry.reserved_credits),
        final_credits=None if entry.final_credits is None else int(entry.final_credits),
        created_at=entry.remote_created_at,
        result=GenerationResult(primary_url=urls[0], urls=urls) if urls else None,
        error=error,
    )


@dataclass
class _MemoryPace:
    first_seen: datetime
    next_at: datetime | None = None


class PollPacer:
    """Decides when each task may be polled, and polls it when it may.

    Args:
        scale: multiplies every delay of the schedule (``Settings.poll_scale``; 1 in production).
        now: the wall clock (UTC), the same one the journal stamps its times with.
    """

    def __init__(self, *, scale: float = 1.0, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.scale = scale
        self._now = now
        self._memory: dict[str, _MemoryPace] = {}

    async def due_in(self, task_id: str, ledger: Ledger, entry: JournalEntry | None) -> float:
        """Seconds until ``task_id`` may be polled (0: now)."""
        if entry is not None and ledger.available:
            times = await _safe(ledger.poll_times(task_id))
            now = self._now()
            if times is not None:
                polled_at, next_at = times
                if next_at is None and polled_at is None:
                    # Never polled: the first look comes FIRST_POLL_DELAY after the create answer.
                    anchor = entry.submitted_at or entry.created_at
                    next_at = anchor + timedelta(seconds=FIRST_POLL_DELAY * self.scale)
                return 0.0 if next_at is None else max(0.0, (next_at - now).total_seconds())
        now = self._now()
        pace = self._memory.get(task_id)
        if pace is None or pace.next_at is None:
            return 0.0
        return max(0.0, (pace.next_at - now).total_seconds())

    def started(self, generation: Generation) -> None:
        """A task this process just created without a journal entry: its first look waits too."""
        now = self._now()
        self._remember(generation.id, now).next_at = now + timedelta(seconds=FIRST_POLL_DELAY * self.scale)

    async def poll(
        self,
        client: AsyncRivyaClient,
        ledger: Ledger,
        task_id: str,
        entry: JournalEntry | None,
        *,
        deadline: float | None = None,
    ) -> Generation | None:
        """Take the task's turn and ``GET`` it (by ``deadline``); None when it is not this caller's turn yet.

        Call it once ``due_in`` is 0. None means another process took the turn first (its answer
        reaches the journal): look at ``due_in`` again. Whatever the request ends with, a
        ``Retry-After`` the API gave (also one the deadline did not leave time for) holds the next
        turn at least that far off.
        """
        shared = entry is not None and ledger.available
        interval = self._interval(task_id, entry)
        if shared:
            try:
                if await ledger.claim_poll(task_id, interval=interval) is not None:
                    return None
            except KeyError:
                shared = False
            except Exception:
                log.exception("journal: could not take the poll turn of task %s; pacing it in memory", task_id)
                shared = False
        if not shared:
            now = self._now()
            pace = self._remember(task_id, now)
            if pace.next_at is not None and pace.next_at > now:
                return None
            pace.next_at = now + timedelta(seconds=interval)  # taken before the request leaves
        generation: Generation | None = None
        retry_after: float | None = None
        try:
            generation = await client.get_generation(task_id, deadline=deadline)
            return generation
        except RivyaError as exc:
            retry_after = getattr(exc, "retry_after", None)
            raise
        finally:
            # Counted from the end of the request, so a slow answer or a retried 429 inside the
            # request loop never brings the next look closer than the interval.
            wait = interval if generation is None or not is_settled(generation) else 0.0
            if retry_after is not None:
                wait = max(wait, retry_after)
            await self._push(task_id, ledger if shared else None, wait)

    def _interval(self, task_id: str, entry: JournalEntry | None) -> float:
        now = self._now()
        if entry is not None:
            born = entry.submitted_at or entry.created_at
        else:
            born = self._remember(task_id, now).first_seen
        return poll_delay(1, (now - born).total_seconds()) * self.scale

    async def _push(self, task_id: str, ledger: Ledger | None, seconds: float) -> None:
        if ledger is not None:
            if await _safe(_deferred(ledger, task_id, seconds)):
                return
        now = self._now()
        self._remember(task_id, now).next_at = now + timedelta(seconds=seconds)

    def _remember(self, task_id: str, now: datetime) -> _MemoryPace:
        pace = self._memory.get(task_id)
        if pace is None:
            if len(self._memory) >= MAX_MEMORY_TASKS:
                oldest = min(self._memory, key=lambda t: self._memory[t].first_seen)
                del self._memory[oldest]
            pace = self._memory[task_id] = _MemoryPace(first_seen=now)
        return pace


async def _deferred(ledger: Ledger, task_id: str, seconds: float) -> bool:
    await ledger.claim_poll(task_id, interval=seconds, defer_only=True)
    return True


async def _safe(read: Awaitable[_T]) -> _T | None:
    """A journal fault costs the shared pace (this process still paces in memory), never the call."""
    try:
        return await read
    except Exception:
        log.exception("journal: poll pace unavailable")
        return None
