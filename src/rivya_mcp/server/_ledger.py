"""The server's view of the task journal: a durable record that never breaks a paid call.

The journal is what makes a paid task impossible to lose (the intent is on disk before the create
request leaves, the task id right after) and what lets an idempotency key find its earlier task.
A journal fault is logged and the call goes on: the image the user paid for matters more than the
record of it. The one journal error that must reach the agent is a reused idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rivya_mcp.client import Generation, RivyaFile
from rivya_mcp.journal import REJECTED, IdempotencyKeyReused, JournalEntry, TaskJournal

log = logging.getLogger(__name__)


def needs_finishing(entry: JournalEntry) -> bool:
    """Whether a created task still has to be polled or saved (``TaskJournal.unfinished``'s test)."""
    if entry.task_id is None:
        return False
    if not entry.is_terminal:
        return True
    return entry.status == "succeeded" and not entry.saved_paths and entry.error_code is None


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
    """Thin, fault-tolerant wrapper over :class:`TaskJournal` (None: journal unavailable)."""

    def __init__(self, journal: TaskJournal | None) -> None:
        self._journal = journal

    @property
    def available(self) -> bool:
        return self._journal is not None

    @property
    def scoped(self) -> bool:
        """The journal acts only on rows of one upstream and account (see ``TaskJournal``)."""
        return self._journal is not None and self._journal.owner is not None

    @property
    def journal(self) -> TaskJournal | None:
        """The journal itself, for the poll pace (``_pace``), which handles its faults on its own."""
        return self._journal

    def intent(
        self,
        *,
        idempotency_key: str,
        mode: str,
        model: str,
        prompt: str,
        params: Mapping[str, Any],
        reference: str | None,
    ) -> None:
        if self._journal is None:
            return
        try:
            self._journal.record_intent(
                idempotency_key=idempotency_key,
                model=model,
                mode=mode,
                prompt=prompt,
                params=params,
                reference=reference,
            )
        except IdempotencyKeyReused:
            raise
        except Exception:
            log.exception("journal: could not record the intent")

    def created(self, idempotency_key: str, generation: Generation) -> None:
        if self._journal is None:
            return
        try:
            self._journal.attach_task(
                idempotency_key,
                task_id=generation.id,
                status=generation.status,
                reserved_credits=generation.reserved_credits,
                created_at=generation.created_at,
            )
        except Exception:
            log.exception("journal: could not record task %s", generation.id)

    def rejected(self, idempotency_key: str, *, code: str | None, message: str | None) -> None:
        self.ended(idempotency_key, status=REJECTED, code=code, message=message)

    def ended(self, idempotency_key: str, *, status: str, code: str | None, message: str | None) -> None:
        """An intent that did not become a task: rejected, unconfirmed or abandoned (never re-sent)."""
        if self._journal is None:
            return
        try:
            self._journal.end_intent(idempotency_key, status=status, error_code=code, error_message=message)
        except Exception:
            log.exception("journal: could not mark intent as %s", status)

    def gave_up(self, task_id: str, *, code: str, message: str) -> None:
        """Stop recovery from retrying a task's save (e.g. its result URL expired before anyone saved it)."""
        if self._journal is None:
            return
        try:
            self._journal.update(task_id, error_code=code, error_message=message)
        except Exception:
            log.exception("journal: could not record why task %s was given up", task_id)

    def updated(self, generation: Generation, *, saved_path: Path | None = None) -> None:
        if self._journal is None:
            return
        result = generation.result
        urls = list(result.urls or ([result.primary_url] if result.primary_url else [])) if result else None
        error = generation.error
        try:
            self._journal.update(
                generation.id,
                status=generation.status,
                final_credits=generation.final_credits if generation.is_terminal else None,
                result_urls=urls,
                error_code=error.code if error else None,
                error_message=error.message if error else None,
                saved_path=saved_path,
            )
        except KeyError:
            # A task created elsewhere (another server, the web UI) is read but not recorded.
            return
        except Exception:
            log.exception("journal: could not update task %s", generation.id)

    def get(self, task_id: str) -> JournalEntry | None:
        if self._journal is None:
            return None
        try:
            return self._journal.get(task_id)
        except Exception:
            log.exception("journal: could not read task %s", task_id)
            return None

    def file_uploaded(self, file: RivyaFile) -> None:
        """Remember an uploaded file, so its id is recognised later whatever its shape."""
        if self._journal is None:
            return
        try:
            self._journal.record_file(file.id, kind=file.kind, name=file.name, mime_type=file.mime_type, size=file.size)
        except Exception:
            log.exception("journal: could not record file %s", file.id)

    def knows_file(self, file_id: str) -> bool:
        if self._journal is None:
            return False
        try:
            return self._journal.has_file(file_id)
        except Exception:
            log.exception("journal: could not read file %s", file_id)
            return False

    def by_key(self, idempotency_key: str) -> JournalEntry | None:
        if self._journal is None:
            return None
        try:
            return self._journal.find_by_idempotency_key(idempotency_key)
        except Exception:
            log.exception("journal: idempotency lookup failed")
            return None

    def recent(self, *, status: str | None, limit: int) -> list[JournalEntry]:
        if self._journal is None:
            return []
        return list(self._journal.list(status=status, limit=limit))

    def unsubmitted(self) -> list[JournalEntry]:
        """Creates whose answer never arrived (the server stopped mid-request), oldest first."""
        return [] if self._journal is None else list(self._journal.unsubmitted())

    def unfinished(self) -> list[JournalEntry]:
        """Tasks still running, or finished but never saved, oldest first."""
        return [] if self._journal is None else list(self._journal.unfinished())

    def pending_elsewhere(self) -> int:
        """Unanswered creates and unfinished tasks recorded under another base URL or API key."""
        return 0 if self._journal is None else self._journal.pending_elsewhere()
