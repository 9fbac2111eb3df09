"""The journal's record of each task's poll pace (schema step 5): shared by every process on the
file and every replica on the database. On both stores: a SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.journal import SCHEMA_VERSION, TaskJournal, open_journal
from tests._journals import older_journal, schema_version

START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)


class StepClock:
    """A clock that stands still until moved."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


def _task(journal: TaskJournal, task_id: str = "task_1") -> None:
    journal.record_intent(idempotency_key=f"k-{task_id}", model="m", mode="generate", prompt="p", params={})
    journal.attach_task(f"k-{task_id}", task_id=task_id, status="queued")


def test_a_claim_takes_the_poll_and_spaces_the_next_for_every_process(location: str) -> None:
    clock = StepClock()
    with open_journal(location, now=clock) as mine, open_journal(location, now=clock) as theirs:
        _task(mine)
        assert mine.poll_times("task_1") == (None, None)
        assert mine.claim_poll("task_1", interval=5.0) is None  # taken: poll now
        assert mine.poll_times("task_1") == (START, START + timedelta(seconds=5))
        clock.advance(4.9)
        # The other process (another connection to the file, or replica) is refused until the 5 s are up.
        assert theirs.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=5)
        assert mine.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=5)
        clock.advance(0.1)
        assert theirs.claim_poll("task_1", interval=7.0) is None
        assert mine.poll_times("task_1") == (clock.moment, clock.moment + timedelta(seconds=7))


def test_of_many_writers_due_at_once_exactly_one_takes_the_poll(location: str) -> None:
    """The check-and-set is atomic: connections (processes, replicas) racing for one turn, one wins."""
    clock = StepClock()
    writers = 6
    with open_journal(location, now=clock) as journal:
        _task(journal)
    journals = [open_journal(location, now=clock) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    answers: list[datetime | None] = []
    lock = threading.Lock()

    def claim(journal: TaskJournal) -> None:
        barrier.wait()
        answer = journal.claim_poll("task_1", interval=5.0)
        with lock:
            answers.append(answer)

    try:
        threads = [threading.Thread(target=claim, args=(j,)) for j in journals]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for journal in journals:
            journal.close()
    assert len(answers) == writers
    assert answers.count(None) == 1, answers
    assert set(answers) - {None} == {START + timedelta(seconds=5)}


def test_a_deferral_only_ever_pushes_the_next_poll_later(location: str) -> None:
    clock = StepClock()
    with open_journal(location, now=clock) as journal:
        _task(journal)
        assert journal.claim_poll("task_1", interval=5.0) is None
        assert journal.claim_poll("task_1", interval=30.0, defer_only=True) is None  # Retry-After: 30
        assert journal.poll_times("task_1") == (START, START + timedelta(seconds=30))
        journal.claim_poll("task_1", interval=3.0, defer_only=True)  # a shorter one changes nothing
        assert journal.poll_times("task_1") == (START, START + timedelta(seconds=30))
        clock.advance(29)
        assert journal.claim_poll("task_1", interval=5.0) == START + timedelta(seconds=30)


def test_unknown_tasks_are_none_or_key_error(location: str) -> None:
    with open_journal(location) as journal:
        assert journal.poll_times("task_nope") is None
        with pytest.raises(KeyError):
            journal.claim_poll("task_nope", interval=5.0)
        with pytest.raises(KeyError):
            journal.claim_poll("task_nope", interval=5.0, defer_only=True)


def test_an_older_journal_is_migrated_in_place_keeping_its_tasks(location: str) -> None:
    # As the release before step 5 left it: four steps, one running task, no poll times.
    older_journal(location, 4, (("k-task_1", "task_1", "queued"),))
    with open_journal(location, now=StepClock()) as journal:
        entry = journal.get("task_1")
        assert entry is not None and entry.status == "queued"
        assert journal.poll_times("task_1") == (None, None)
        assert journal.claim_poll("task_1", interval=5.0) is None
        assert journal.poll_times("task_1") == (START, START + timedelta(seconds=5))
    assert schema_version(location) == SCHEMA_VERSION
