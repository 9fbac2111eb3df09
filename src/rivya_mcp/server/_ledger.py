"""The server's view of the task journal: a durable record that never breaks a paid call.

The journal is what makes a paid task impossible to lose (a crash or a host timeout leaves the id
on disk) and what lets an idempotency key find its earlier task. A journal fault is logged and
the call goes on: the image the user paid for matters more than the record of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rivya_mcp.client import Generation

if TYPE_CHECKING:
    from rivya_mcp.journal import TaskJournal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    task_id: str | None
    status: str
    prompt: str | None = None
    mode: str | None = None
    model: str | None = None
    saved_path: str | None = None
    idempotency_key: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    reserved_credits: int | None = None
    final_credits: int | None = None
    error_code: str | None = None
    source_url: str | None = None


def _entry(record: Any) -> Entry:
    def field(name: str) -> Any:
        if isinstance(record, Mapping):
            return record.get(name)
        return getattr(record, name, None)

    return Entry(
        task_id=field("task_id"),
        status=str(field("status") or "unknown"),
        prompt=field("prompt"),
        mode=field("mode"),
        model=field("model"),
        saved_path=field("saved_path"),
        idempotency_key=field("idempotency_key"),
        created_at=_text(field("created_at")),
        updated_at=_text(field("updated_at")),
        reserved_credits=field("reserved_credits"),
        final_credits=field("final_credits"),
        error_code=field("error_code"),
        source_url=field("result_url") or field("source_url"),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class Ledger:
    """Thin, fault-tolerant wrapper over :class:`TaskJournal`."""

    def __init__(self, journal: TaskJournal | None) -> None:
        self._journal = journal

    def intent(self, *, mode: str, model: str, prompt: str, params: Mapping[str, Any], idempotency_key: str) -> Any:
        if self._journal is None:
            return None
        try:
            return self._journal.record_intent(
                model=model, mode=mode, prompt=prompt, params=dict(params), idempotency_key=idempotency_key
            )
        except Exception:
            log.exception("journal: could not record the intent")
            return None

    def created(self, intent: Any, generation: Generation) -> None:
        if self._journal is None or intent is None:
            return
        try:
            self._journal.record_created(
                intent, generation.id, status=generation.status, reserved_credits=generation.reserved_credits
            )
        except Exception:
            log.exception("journal: could not record task %s", generation.id)

    def updated(self, generation: Generation, *, saved_path: str | None = None) -> None:
        if self._journal is None:
            return
        result_url = generation.result.primary_url if generation.result else None
        error_code = generation.error.code if generation.error else None
        try:
            self._journal.update(
                generation.id,
                status=generation.status,
                final_credits=generation.final_credits,
                result_url=result_url,
                error_code=error_code,
                saved_path=saved_path,
            )
        except Exception:
            log.exception("journal: could not update task %s", generation.id)

    def get(self, task_id: str) -> Entry | None:
        if self._journal is None:
            return None
        try:
            record = self._journal.get(task_id)
        except Exception:
            log.exception("journal: could not read task %s", task_id)
            return None
        return None if record is None else _entry(record)

    def task_for_key(self, idempotency_key: str) -> Entry | None:
        if self._journal is None:
            return None
        try:
            record = self._journal.find_by_idempotency_key(idempotency_key)
        except Exception:
            log.exception("journal: idempotency lookup failed")
            return None
        return None if record is None else _entry(record)

    def recent(self, *, status: str | None, limit: int) -> list[Entry]:
        if self._journal is None:
            return []
        return [_entry(r) for r in self._journal.list(status=status, limit=limit)]
