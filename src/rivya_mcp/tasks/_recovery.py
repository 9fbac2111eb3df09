"""Finishing what a stopped server left behind: unanswered creates and unfinished tasks.

A server can stop at any moment (the host quits, the machine sleeps, someone kills it). The journal
holds everything it had started, and when a server starts again on the same data directory this
pass, in the background, takes every entry recorded *before* this start:

- **Unfinished tasks** (running, or finished but never saved) are polled to their end and their
  image is saved, so a later ``get_task`` or ``list_tasks`` delivers it from disk, even once the
  result URL has expired.
- **Unanswered creates** (``unsubmitted`` intents: the create POST left, its answer never came
  back, or Rivya had not settled it yet) are re-sent with the recorded ``Idempotency-Key``, the
  exact recorded body and its ``client_request_id``. If the first POST reached the API, the API
  answers with the original task and charges nothing more; the task is then followed like the
  others. If it never arrived, the re-send creates the task the agent asked for and was never told
  about. That is the edge of this choice: an agent that, in the meantime, made the same request
  again *without* an idempotency key gets a second task. A re-send Rivya answers "not settled yet"
  (409 to a key already sent) goes on at the documented pace until it settles
  (``TaskService.pursue``). Intents older than ``INTENT_MAX_AGE`` are never re-sent: the API may
  no longer remember the key, so a re-send could charge again. They end ``unconfirmed``, with
  what to check (their ``client_request_id`` in Rivya's task list) in the journal and the log.

Only entries of the current upstream (base URL) are taken, each with the key it was sent with:
the operator's entries (and, behind a team's identity provider, its people's) with the operator's
key, and a rivya-login person's with that person's own key, read from their sign-in
(``Runtime.pending_callers``; every step runs inside ``Runtime.acting_for`` that person). So a
sandbox create is never re-sent to the real API, nor anyone's create under another key. Entries
nobody here can act for are counted in the log and left for their own.

Intents the agent was told about are never re-sent from here: ``rejected`` (the API refused),
and ``unconfirmed`` (the create failed after retries without a clear answer; the error told the
agent the key to repeat the call with). The agent's own retry with the same key revives those.

With a shared database (replicas), the same steps run as a **sweep** for the server's whole life
instead of once at start (``sweep``): every ``lease_seconds`` it takes over the intents and tasks
whose lease is free and that nobody touched for that long (a replica died following them, or a
call returned them pending), each step under the task's lease, so exactly one replica follows a
task at a time and a dead one's tasks are finished by another.

The pass never blocks a tool call (it runs beside the session), logs to stderr, is cancelled with
the session, and shares the per-task lock with the tools, so a ``get_task`` wait and the recovery
never poll or save one task at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

import anyio

from rivya_mcp.client import CreateNotSettledError, printable
from rivya_mcp.journal import UNSUBMITTED, JournalEntry
from rivya_mcp.tasks._caller import Caller
from rivya_mcp.tasks._service import INTENT_MAX_AGE, MAX_FOLLOW_SECONDS, Intent, IntentTooOld, TaskService
from rivya_mcp.tasks.images._disk import DataFolderUnusable

log = logging.getLogger(__name__)

__all__ = ["INTENT_MAX_AGE", "MAX_FOLLOW_SECONDS", "MAX_PARALLEL", "Recovery", "intent_of"]

# Tasks recovered at once: a restart after a busy session should not burst the API.
MAX_PARALLEL = 4


def intent_of(entry: JournalEntry) -> Intent:
    """The create a journal entry recorded, to be re-sent exactly (same key, same wire params)."""
    return Intent(
        idempotency_key=entry.idempotency_key,
        mode=entry.mode,
        model=entry.model,
        prompt=entry.prompt or "",
        params=entry.params,
        reference=entry.reference,
    )


class Recovery:
    """The recovery pass for one server (``Runtime.set_recovery``)."""

    def __init__(self, service: TaskService, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.service = service
        self.runtime = service.runtime
        self._now = now

    async def __call__(self, started_at: datetime) -> None:
        if not self.runtime.can_call_api and not self.runtime.acts_for_people:
            log.debug("recovery: skipped (no API key)")
            return
        try:
            callers, elsewhere = await self.runtime.pending_callers()
        except DataFolderUnusable as exc:
            log.error("recovery: not run: %s", exc)  # the message says what to do; no traceback
            return
        if elsewhere:
            # Re-sending them here would charge whoever is configured now (the real API for a
            # sandbox create, another account for another key's): they wait for their own.
            log.info(
                "recovery: %d unanswered create(s) or unfinished task(s) recorded under another base URL or "
                "API key (or before rivya-mcp recorded either) are left alone",
                elsewhere,
            )
        if not callers:
            log.info("recovery: nothing to resume for this base URL and API key")
        for caller in callers:
            async with self.runtime.acting_for(caller):
                await self._resume(started_at)

    async def _resume(self, started_at: datetime) -> None:
        """The pass for the current caller (``Runtime.acting_for``): their rows, their key."""
        if not self.runtime.can_call_api:
            log.debug("recovery: skipped (no API key)")
            return
        ledger = await self.runtime.ledger()
        intents = [e for e in await ledger.unsubmitted() if e.created_at < started_at]
        tasks = [e for e in await ledger.unfinished() if e.created_at < started_at]
        if not intents and not tasks:
            log.info("recovery: nothing to resume for this base URL and API key")
            return
        log.info(
            "recovery: %d unanswered create(s) and %d unfinished task(s) from before this start",
            len(intents),
            len(tasks),
        )
        limiter = anyio.CapacityLimiter(MAX_PARALLEL)
        async with anyio.create_task_group() as group:
            for entry in intents:
                group.start_soon(self._guarded, limiter, entry, self._resend)
            for entry in tasks:
                group.start_soon(self._guarded, limiter, entry, self._finish)
        log.info("recovery: done")

    async def sweep(self) -> None:
        """Replicas: take over what nobody follows, every ``lease_seconds``, for the server's life."""
        coordinator = self.runtime.coordinator
        if coordinator is None:
            return
        if not self.runtime.can_call_api and not self.runtime.acts_for_people:
            log.debug("sweep: off (no API key)")
            return
        period = coordinator.lease_seconds
        limiter = anyio.CapacityLimiter(MAX_PARALLEL)
        running: set[str] = set()
        async with anyio.create_task_group() as group:
            while True:
                try:
                    for entry, step in await self._orphans(period):
                        name = entry.task_id or entry.idempotency_key
                        if name not in running:
                            running.add(name)
                            group.start_soon(self._adopt, limiter, entry, step, running, name)
                except Exception as exc:
                    log.warning("sweep: %s: %s", type(exc).__name__, exc)
                await anyio.sleep(period)

    async def _orphans(self, grace: float) -> list[tuple[JournalEntry, Callable[[JournalEntry], Awaitable[None]]]]:
        quiet_since = self._now() - timedelta(seconds=grace)
        found: list[tuple[JournalEntry, Callable[[JournalEntry], Awaitable[None]]]] = []
        callers, _ = await self.runtime.pending_callers()
        for caller in callers:
            async with self.runtime.acting_for(caller):
                if not self.runtime.can_call_api:
                    continue
                ledger = await self.runtime.ledger()
                adopt, finish = self._as(caller, self._adopt_intent), self._as(caller, self._finish)
                found += [(e, adopt) for e in await ledger.unsubmitted() if e.updated_at < quiet_since]
                found += [(e, finish) for e in await ledger.unfinished() if e.updated_at < quiet_since]
        return found

    def _as(
        self, caller: Caller, step: Callable[[JournalEntry], Awaitable[None]]
    ) -> Callable[[JournalEntry], Awaitable[None]]:
        """``step`` done for ``caller``: their key, their rows."""

        async def run(entry: JournalEntry) -> None:
            async with self.runtime.acting_for(caller):
                await step(entry)

        return run

    async def _adopt(
        self,
        limiter: anyio.CapacityLimiter,
        entry: JournalEntry,
        step: Callable[[JournalEntry], Awaitable[None]],
        running: set[str],
        name: str,
    ) -> None:
        try:
            coordinator = self.runtime.coordinator
            if coordinator is None:
                return
            lease = f"task:{entry.task_id}" if entry.task_id else f"intent:{entry.idempotency_key}"
            if await coordinator.holder_of(lease) is not None:
                return  # followed by a live replica (or by a call of this one)
            log.info("sweep: taking over %s", entry.task_id or f"intent {entry.idempotency_key}")
            await self._guarded(limiter, entry, step)
        finally:
            running.discard(name)

    async def _adopt_intent(self, entry: JournalEntry) -> None:
        """Re-send an intent whose sender died before the answer, under its lease (see ``_resend``)."""
        ledger = await self.runtime.ledger()
        async with self.runtime.creating(entry.idempotency_key):
            latest = await ledger.by_key(entry.idempotency_key)
            if latest is None or latest.task_id is not None or latest.status != UNSUBMITTED:
                return  # answered after all (the sender was slow, not dead)
            sent = await self._send(latest, under_lease=True)
        if sent == "unsettled":
            # Outside the lease: each of its re-sends takes the lease for itself.
            await self.service.pursue(intent_of(latest))
            return
        if sent != "task":
            return
        latest = await ledger.by_key(entry.idempotency_key)
        if latest is not None:
            await self._finish(latest)

    async def _guarded(
        self, limiter: anyio.CapacityLimiter, entry: JournalEntry, step: Callable[[JournalEntry], Awaitable[None]]
    ) -> None:
        async with limiter:
            try:
                await step(entry)
            except Exception as exc:
                # One task's trouble must not stop the others; the entry stays for the next start.
                what = entry.task_id or f"intent {entry.idempotency_key}"
                log.warning("recovery: %s left for later: %s: %s", what, type(exc).__name__, exc)

    async def _resend(self, entry: JournalEntry) -> None:
        sent = await self._send(entry, under_lease=False)
        if sent == "unsettled":
            await self.service.pursue(intent_of(entry))
        elif sent == "task":
            latest = await (await self.runtime.ledger()).by_key(entry.idempotency_key)
            await self._finish(latest or entry)

    async def _send(self, entry: JournalEntry, *, under_lease: bool) -> Literal["task", "none", "unsettled"]:
        """Re-send an unanswered create under its key: whether a task came of it (``task``), or
        Rivya has not settled it yet (``unsettled``: the caller follows it at the documented pace
        until it does, ``TaskService.pursue``, outside any lease), or nothing more is to be done.

        An unclear failure (5xx, connection lost) leaves the intent ``unsubmitted``: that create may
        have been charged, so only a re-send under the same key may settle it (the next pass). One
        older than ``INTENT_MAX_AGE`` is never re-sent (``TaskService.send`` ends it ``unconfirmed``).
        """
        ledger = await self.runtime.ledger()
        key = entry.idempotency_key
        send = self.service.send if under_lease else self.service.create
        try:
            generation = await send(intent_of(entry), unclear=None)
        except IntentTooOld as exc:
            log.warning("recovery: intent %s not re-sent: %s", key, exc)
            return "none"
        except CreateNotSettledError:
            log.info("recovery: intent %s is not settled yet; re-sending it under its key at the documented pace", key)
            return "unsettled"
        except Exception as exc:
            latest = await ledger.by_key(key)
            if latest is not None and latest.status != UNSUBMITTED:
                log.warning("recovery: the API refused intent %s (%s)", key, getattr(exc, "code", exc))
                return "none"
            raise
        log.info(
            "recovery: intent %s re-sent under its key: task %s (%s)",
            key,
            printable(generation.id),
            printable(generation.status),
        )
        return "task"

    async def _finish(self, entry: JournalEntry) -> None:
        """Poll the task to its end and save its image (``TaskService.finish``)."""
        if entry.task_id is not None:
            await self.service.finish(entry.task_id, prompt=entry.prompt or "")
