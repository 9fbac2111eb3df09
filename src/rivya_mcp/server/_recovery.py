"""Finishing what a stopped server left behind: unanswered creates and unfinished tasks.

A server can stop at any moment (the host quits, the machine sleeps, someone kills it). The journal
holds everything it had started, and when a server starts again on the same data directory this
pass, in the background, takes every entry recorded *before* this start:

- **Unfinished tasks** (running, or finished but never saved) are polled to their end and their
  image is saved, so a later ``get_task`` or ``list_tasks`` delivers it from disk, even once the
  result URL has expired.
- **Unanswered creates** (``unsubmitted`` intents: the create POST left, its answer never came
  back) are re-sent with the recorded ``Idempotency-Key`` and the exact recorded body. If the
  first POST reached the API, the API answers with the original task and charges nothing more; the
  task is then followed like the others. If it never arrived, the re-send creates the task the
  agent asked for and was never told about. That is the edge of this choice: an agent that, in
  the meantime, made the same request again *without* an idempotency key gets a second task.
  Intents older than ``INTENT_MAX_AGE`` are not re-sent (marked ``abandoned``): by then the agent
  has moved on, and the API may no longer remember the key, so a re-send could charge again.

Only entries of the current upstream (base URL) and account (API key) are taken: the journal is
scoped to them (``TaskJournal``), so a sandbox create is never re-sent to the real API, nor one
account's under another key. Those of another are counted in the log and left for their own.

Intents the agent was told about are never re-sent from here: ``rejected`` (the API refused),
and ``unconfirmed`` (the create failed after retries without a clear answer; the error told the
agent the key to repeat the call with). The agent's own retry with the same key revives those.

The pass never blocks a tool call (it runs beside the session), logs to stderr, is cancelled with
the session, and shares the per-task lock with the tools, so a ``get_task`` wait and the recovery
never poll or save one task at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio

from rivya_mcp._disk import DataFolderUnusable
from rivya_mcp.client import APIStatusError, ResultExpiredError
from rivya_mcp.journal import ABANDONED, JournalEntry
from rivya_mcp.server._ledger import needs_finishing
from rivya_mcp.server._pace import result_url
from rivya_mcp.server._tools import ToolBodies, is_refusal

log = logging.getLogger(__name__)

# Idempotency keys are commonly remembered for a day (Stripe: 24 h); Rivya does not say. Past that
# a re-send may not be recognised as a repeat, and the agent has long stopped waiting for it.
INTENT_MAX_AGE = timedelta(hours=24)
# How long one recovered task is followed before it is left for get_task or the next start.
MAX_FOLLOW_SECONDS = 30 * 60.0
# Tasks recovered at once: a restart after a busy session should not burst the API.
MAX_PARALLEL = 4


class Recovery:
    """The recovery pass for one server (``Runtime.set_recovery``)."""

    def __init__(self, bodies: ToolBodies, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.bodies = bodies
        self.runtime = bodies.runtime
        self._now = now

    async def __call__(self, started_at: datetime) -> None:
        if not self.runtime.can_call_api:
            log.debug("recovery: skipped (no API key)")
            return
        try:
            ledger = self.runtime.ledger()
        except DataFolderUnusable as exc:
            log.error("recovery: not run: %s", exc)  # the message says what to do; no traceback
            return
        intents = [e for e in ledger.unsubmitted() if e.created_at < started_at]
        tasks = [e for e in ledger.unfinished() if e.created_at < started_at]
        elsewhere = ledger.pending_elsewhere()
        if elsewhere:
            # Re-sending them here would charge whoever is configured now (the real API for a
            # sandbox create, another account for another key's): they wait for their own.
            log.info(
                "recovery: %d unanswered create(s) or unfinished task(s) recorded under another base URL or "
                "API key (or before rivya-mcp recorded either) are left alone",
                elsewhere,
            )
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
        ledger = self.runtime.ledger()
        key = entry.idempotency_key
        age = self._now() - entry.created_at
        if age > INTENT_MAX_AGE:
            ledger.ended(
                key,
                status=ABANDONED,
                code="intent_expired",
                message=f"The create was never answered and is older than {INTENT_MAX_AGE}; it was not re-sent.",
            )
            log.warning("recovery: intent %s is %s old; not re-sent (marked abandoned)", key, age)
            return
        try:
            generation = await self.runtime.client().create_generation(
                model=entry.model, prompt=entry.prompt, params=entry.params, idempotency_key=key
            )
        except APIStatusError as exc:
            if is_refusal(exc):
                ledger.rejected(key, code=exc.code, message=exc.message)
                log.warning("recovery: the API refused intent %s (%s)", key, exc.code)
                return
            raise
        ledger.created(key, generation)
        log.info("recovery: intent %s re-sent under its key: task %s (%s)", key, generation.id, generation.status)
        entry = ledger.by_key(key) or entry
        await self._finish(entry)

    async def _finish(self, entry: JournalEntry) -> None:
        """Poll the task to its end and save its image, one step at a time under the task's lock."""
        task_id = entry.task_id
        if task_id is None:
            return
        ledger = self.runtime.ledger()
        started = anyio.current_time()
        while True:
            # The task's next turn (its pace is shared with tool calls and other processes), waited
            # for outside the lock so a tool call on the task is never held up by it.
            await anyio.sleep(self.runtime.poll_due_in(task_id))
            async with self.runtime.following(task_id):
                latest = ledger.get(task_id) or entry
                if not needs_finishing(latest):
                    return  # a tool call finished it while we waited for the lock
                generation = await self.runtime.poll(task_id)
                ledger.updated(generation)
                if generation.status == "succeeded" and result_url(generation) is None:
                    log.warning("recovery: task %s succeeded without a result URL yet; looking again", task_id)
                elif generation.status == "succeeded":
                    try:
                        path, _, _ = await self.bodies.ensure_saved(
                            generation, ledger, prompt=latest.prompt or "", reporter=None
                        )
                    except ResultExpiredError as exc:
                        # Nothing left to fetch; get_task will say so. Stop trying on every start.
                        ledger.gave_up(task_id, code="result_expired", message=str(exc))
                        log.warning("recovery: task %s succeeded but its result URL expired unsaved", task_id)
                        return
                    log.info("recovery: task %s finished; image saved to %s", task_id, path)
                    return
                elif generation.is_terminal:
                    log.info("recovery: task %s ended %s", task_id, generation.status)
                    return
            elapsed = anyio.current_time() - started
            if elapsed >= MAX_FOLLOW_SECONDS:
                log.warning("recovery: task %s unfinished after %.0f s; left for get_task", task_id, elapsed)
                return
