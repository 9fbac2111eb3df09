"""The tasks layer's view of the journal: a durable record that never breaks a paid call.

The journal is what makes a paid task impossible to lose (the intent is on disk before the create
request leaves, the task id right after) and what lets an idempotency key find its earlier task.
A journal fault is logged and the call goes on: the image the user paid for matters more than the
record of it. The journal errors that must reach the agent are a reused idempotency key and a
budget the create would pass; with a budget set, an intent that can't be recorded (and so
counted) is not sent either.

Every method awaits the journal through ``AsyncJournal`` (a worker thread): nothing here blocks
the event loop, whatever lock the journal waits on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from rivya_mcp.client import Generation, RivyaFile
from rivya_mcp.journal import (
    REJECTED,
    AsyncJournal,
    BudgetExceeded,
    Composition,
    IdempotencyKeyReused,
    JournalEntry,
    McpTaskRecord,
    TaskJournal,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


def saved_file(entry: JournalEntry | None) -> Path | None:
    """The most recent saved copy of a task's image that still exists on disk."""
    if entry is None:
        return None
    for saved in reversed(entry.saved_paths):
        path = Path(saved)
        if path.is_file():
            return path
    return None


class Ledger:
    """Fault-tolerant, awaited wrapper over the journal (``None``: journal unavailable)."""

    def __init__(self, journal: AsyncJournal | None) -> None:
        self._journal = journal

    @property
    def available(self) -> bool:
        return self._journal is not None

    @property
    def scoped(self) -> bool:
        """The journal acts only on rows of one upstream and account (see ``TaskJournal``)."""
        return self._journal is not None and self._journal.owner is not None

    @property
    def journal(self) -> AsyncJournal | None:
        return self._journal

    async def run(self, work: Callable[[TaskJournal], T]) -> T:
        """``work`` on the journal, off the event loop; raises what it raises (``LookupError`` without one)."""
        if self._journal is None:
            raise LookupError("the task journal is unavailable")
        return await self._journal.run(work)

    async def _safely(self, work: Callable[[TaskJournal], T], default: T, failure: str) -> T:
        if self._journal is None:
            return default
        try:
            return await self._journal.run(work)
        except Exception:
            log.exception("journal: %s", failure)
            return default

    async def intent(
        self,
        *,
        idempotency_key: str,
        mode: str,
        model: str,
        prompt: str,
        params: Mapping[str, Any],
        reference: str | None,
        cost: float | None = None,
        budget: float | None = None,
    ) -> None:
        if self._journal is None:
            if budget is not None:
                raise LookupError("the task journal is unavailable, so the daily budget can't be kept")
            return
        try:
            await self._journal.run(
                lambda j: j.record_intent(
                    idempotency_key=idempotency_key,
                    model=model,
                    mode=mode,
                    prompt=prompt,
                    params=params,
                    reference=reference,
                    cost=cost,
                    budget=budget,
                )
            )
        except (IdempotencyKeyReused, BudgetExceeded):
            raise
        except Exception:
            log.exception("journal: could not record the intent")
            if budget is not None:
                raise  # an unrecorded create would not count against the budget: not sent either

    async def created(self, idempotency_key: str, generation: Generation) -> None:
        await self._safely(
            lambda j: j.attach_task(
                idempotency_key,
                task_id=generation.id,
                status=generation.status,
                reserved_credits=generation.reserved_credits,
                created_at=generation.created_at,
            ),
            None,
            f"could not record task {generation.id}",
        )

    async def rejected(self, idempotency_key: str, *, code: str | None, message: str | None) -> None:
        await self.ended(idempotency_key, status=REJECTED, code=code, message=message)

    async def ended(self, idempotency_key: str, *, status: str, code: str | None, message: str | None) -> None:
        """An intent that did not become a task: rejected, unconfirmed or abandoned (never re-sent)."""
        await self._safely(
            lambda j: j.end_intent(idempotency_key, status=status, error_code=code, error_message=message),
            None,
            f"could not mark intent as {status}",
        )

    async def gave_up(self, task_id: str, *, code: str, message: str) -> None:
        """Stop recovery from retrying a task's save (e.g. its result URL expired before anyone saved it)."""
        await self._safely(
            lambda j: j.update(task_id, error_code=code, error_message=message),
            None,
            f"could not record why task {task_id} was given up",
        )

    async def updated(self, generation: Generation, *, saved_path: Path | None = None) -> None:
        if self._journal is None:
            return
        result = generation.result
        urls = list(result.urls or ([result.primary_url] if result.primary_url else [])) if result else None
        error = generation.error
        try:
            await self._journal.run(
                lambda j: j.update(
                    generation.id,
                    status=generation.status,
                    final_credits=generation.final_credits if generation.is_terminal else None,
                    result_urls=urls,
                    error_code=error.code if error else None,
                    error_message=error.message if error else None,
                    saved_path=saved_path,
                )
            )
        except KeyError:
            # A task created elsewhere (another server, the web UI) is read but not recorded.
            return
        except Exception:
            log.exception("journal: could not update task %s", generation.id)

    async def first_sight_of_event(self, event_id: str) -> bool:
        """Whether a webhook event is new (and now recorded); without a journal, every event is."""
        return await self._safely(
            lambda j: j.first_sight_of_event(event_id), True, f"could not record webhook event {event_id}"
        )

    async def get(self, task_id: str) -> JournalEntry | None:
        return await self._safely(lambda j: j.get(task_id), None, f"could not read task {task_id}")

    async def spent_today(self) -> tuple[float, datetime] | None:
        """Credits the caller spent today and when the UTC day ends; None without a journal."""
        return None if self._journal is None else await self._journal.run(lambda j: j.spent_today())

    async def check_budget(self, cost: float, budget: float) -> None:
        """``BudgetExceeded`` now, before uploads; the create's own record decides for good."""
        if self._journal is not None:
            await self._journal.run(lambda j: j.check_budget(cost, budget))

    async def may_serve_image(self, name: str) -> bool:
        return await self._safely(lambda j: j.may_serve_image(name), False, f"could not check image {name}")

    async def file_uploaded(self, file: RivyaFile) -> None:
        """Remember an uploaded file, so its id is recognised later whatever its shape."""
        await self._safely(
            lambda j: j.record_file(file.id, kind=file.kind, name=file.name, mime_type=file.mime_type, size=file.size),
            None,
            f"could not record file {file.id}",
        )

    async def file_mime_type(self, file_id: str) -> str | None:
        return await self._safely(lambda j: j.file_mime_type(file_id), None, f"could not read file {file_id}")

    async def knows_file(self, file_id: str) -> bool:
        return await self._safely(lambda j: j.has_file(file_id), False, f"could not read file {file_id}")

    async def by_key(self, idempotency_key: str) -> JournalEntry | None:
        return await self._safely(
            lambda j: j.find_by_idempotency_key(idempotency_key), None, "idempotency lookup failed"
        )

    async def recent(
        self, *, status: str | None, limit: int, offset: int = 0, query: str | None = None
    ) -> list[JournalEntry]:
        if self._journal is None:
            return []
        return await self._journal.run(lambda j: list(j.list(status=status, limit=limit, offset=offset, query=query)))

    # -- region edits: what their result is composited with --------------------------------------

    async def record_composition(
        self, idempotency_key: str, *, reference: bytes, mask: bytes, feather_px: int, output_format: str
    ) -> None:
        """Raises what the journal raises: a region edit must not be sent unless this is kept."""
        await self.run(
            lambda j: j.record_composition(
                idempotency_key, reference=reference, mask=mask, feather_px=feather_px, output_format=output_format
            )
        )

    async def composition(self, idempotency_key: str) -> Composition | None:
        """Raises what the journal raises: saving a region edit without its mask would break its promise."""
        if self._journal is None:
            return None
        return await self._journal.run(lambda j: j.composition(idempotency_key))

    async def forget_composition(self, idempotency_key: str) -> None:
        await self._safely(
            lambda j: j.forget_composition(idempotency_key), None, "could not drop a refused region edit"
        )

    async def unsubmitted(self) -> list[JournalEntry]:
        """Creates whose answer never arrived (the server stopped mid-request), oldest first."""
        return [] if self._journal is None else await self._journal.run(lambda j: list(j.unsubmitted()))

    async def unfinished(self) -> list[JournalEntry]:
        """Tasks still running, or finished but never saved, oldest first."""
        return [] if self._journal is None else await self._journal.run(lambda j: list(j.unfinished()))

    async def pending_elsewhere(self) -> int:
        """Unanswered creates and unfinished tasks recorded under another base URL or API key."""
        return 0 if self._journal is None else await self._journal.run(lambda j: j.pending_elsewhere())

    # -- the poll pace (``_pace``): faults propagate, the pacer falls back to memory ---------

    async def poll_times(self, task_id: str) -> tuple[datetime | None, datetime | None] | None:
        return await self.run(lambda j: j.poll_times(task_id))

    async def claim_poll(self, task_id: str, *, interval: float, defer_only: bool = False) -> datetime | None:
        return await self.run(lambda j: j.claim_poll(task_id, interval=interval, defer_only=defer_only))

    # -- the MCP Tasks extension's handles ------------------------------------------------------

    async def mcp_task(self, handle: str) -> McpTaskRecord | None:
        return await self._safely(lambda j: j.get_mcp_task(handle), None, "could not read a task handle")
