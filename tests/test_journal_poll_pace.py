"""The journal's record of each task's poll pace (schema v2): shared by every process on the file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.journal import SCHEMA_VERSION, TaskJournal

START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)


class StepClock:
    """A clock that stands still until moved."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def _task(journal: TaskJournal, task_id: str = "task_1") -> None:
    journal.record_intent(idempotency_key=f"k-{task_id}", model="m", mode="generate", prompt="p", params={})
    journal.attach_task(f"k-{task_id}", task_id=task_id, status="queued")


def test_a_claim_takes_the_poll_and_spaces_the_next_for_every_process(tmp_path: Path) -> None:
    clock = StepClock()
    path = tmp_path / "journal.sqlite3"
    with TaskJournal(path, now=clock) as mine, TaskJournal(path, now=clock) as theirs:
        _task(mine)
        assert mine.poll_times("task_1") == (None, None)
        assert mine.claim_poll("task_1", interval=5.0) is None  # taken: poll now
        assert mine.poll_times("task_1") == (START, START + timedelta(seconds=5))
        clock.advance(4.9)
        # The other process (another connection to the file) is refused until the 5 s are up.
        assert theirs.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=5)
        assert mine.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=5)
        clock.advance(0.1)
        assert theirs.claim_poll("task_1", interval=7.0) is None
        assert mine.poll_times("task_1") == (clock.moment, clock.moment + timedelta(seconds=7))


def test_a_deferral_only_ever_pushes_the_next_poll_later(tmp_path: Path) -> None:
    clock = StepClock()
    with TaskJournal(tmp_path / "j.sqlite3", now=clock) as journal:
        _task(journal)
        assert journal.claim_poll("task_1", interval=5.0) is None
        assert journal.claim_poll("task_1", interval=30.0, defer_only=True) is None  # Retry-After: 30
        assert journal.poll_times("task_1") == (START, START + timedelta(seconds=30))
        journal.claim_poll("task_1", interval=3.0, defer_only=True)  # a shorter one changes nothing
        assert journal.poll_times("task_1") == (START, START + timedelta(seconds=30))
        clock.advance(29)
        assert journal.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=30)


def test_unknown_tasks_are_none_or_key_error(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "j.sqlite3") as journal:
        assert journal.poll_times("task_nope") is None
        with pytest.raises(KeyError):
            journal.claim_poll("task_nope", interval=5.0)


def test_a_v1_journal_is_migrated_in_place_keeping_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with TaskJournal(path) as journal:
        _task(journal)
    with sqlite3.connect(path) as conn:  # back to what a v1 server left on disk
        conn.execute("ALTER TABLE tasks DROP COLUMN polled_at")
        conn.execute("ALTER TABLE tasks DROP COLUMN next_poll_at")
        conn.execute("UPDATE schema_version SET version = 1")
    with TaskJournal(path) as journal:
        entry = journal.get("task_1")
        assert entry is not None and entry.status == "queued"
        assert journal.poll_times("task_1") == (None, None)
        assert journal.claim_poll("task_1", interval=5.0) is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION == 2
