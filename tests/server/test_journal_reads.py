"""The journal's read cache (get_task reads one task several times a call): never stale.

Here rather than beside the other journal tests because the cache exists for the server's hot path.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from rivya_mcp.journal import READ_CACHE_ENTRIES, TaskJournal

PARAMS = {"aspectRatio": "16:9", "outputFormat": "jpeg"}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture
def journal(db_path: Path) -> Iterator[TaskJournal]:
    with TaskJournal(db_path) as journal:
        yield journal


def _task(journal: TaskJournal, n: int) -> str:
    journal.record_intent(idempotency_key=f"k{n}", model="m", mode="generate", prompt="p", params=PARAMS)
    journal.attach_task(f"k{n}", task_id=f"task_{n}", status="processing")
    return f"task_{n}"


def test_repeated_reads_are_one_snapshot_until_this_journal_writes(journal: TaskJournal) -> None:
    task = _task(journal, 1)
    first = journal.get(task)
    assert first is not None and journal.get(task) is first
    assert journal.update(task, status="processing") is first  # nothing to change: nothing written
    journal.update(task, status="succeeded", saved_path="/tmp/a.jpg")
    after = journal.get(task)
    assert after is not None and after is not first
    assert (after.status, after.saved_paths) == ("succeeded", ("/tmp/a.jpg",))


def test_a_write_by_another_connection_is_seen_at_once(journal: TaskJournal, db_path: Path) -> None:
    task = _task(journal, 1)
    assert journal.get(task) is not None
    with TaskJournal(db_path) as other:
        other.update(task, status="succeeded", saved_path="/tmp/b.jpg")
    seen = journal.get(task)
    assert seen is not None and seen.saved_paths == ("/tmp/b.jpg",)
    # A raw write (no TaskJournal at all) counts too.
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE tasks SET status = 'failed' WHERE task_id = ?", (task,))
    seen = journal.get(task)
    assert seen is not None and seen.status == "failed"


def test_a_write_by_another_process_is_seen_at_once(journal: TaskJournal, db_path: Path) -> None:
    task = _task(journal, 1)
    assert journal.get(task) is not None
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from rivya_mcp.journal import TaskJournal
        with TaskJournal(Path({str(db_path)!r})) as journal:
            journal.update({task!r}, status="succeeded", saved_path="/tmp/c.jpg")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    seen = journal.get(task)
    assert seen is not None and (seen.status, seen.saved_paths) == ("succeeded", ("/tmp/c.jpg",))


def test_missing_tasks_are_not_remembered_and_the_cache_stays_bounded(journal: TaskJournal) -> None:
    assert journal.get("task_1") is None
    _task(journal, 1)
    assert journal.get("task_1") is not None
    with pytest.raises(KeyError):
        journal.update("task_404", status="succeeded")
    for n in range(2, READ_CACHE_ENTRIES + 10):
        _task(journal, n)
    for n in range(1, READ_CACHE_ENTRIES + 10):
        entry = journal.get(f"task_{n}")
        assert entry is not None and entry.task_id == f"task_{n}"
    assert len(journal._reads.entries) <= READ_CACHE_ENTRIES
