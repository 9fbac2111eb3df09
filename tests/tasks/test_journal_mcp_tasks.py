"""The journal's mcp_tasks table (schema step 2): additive migration, round trip, absorbing writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rivya_mcp.journal import SCHEMA_VERSION, TaskJournal

T0 = datetime(2026, 7, 28, 10, 0, tzinfo=UTC)


def _before_mcp_tasks(path: Path) -> None:
    """A journal as the release before the Tasks extension left it: one schema step short, one task."""
    with TaskJournal(path) as journal:
        journal.record_intent(idempotency_key="k1", model="m", mode="generate", prompt="p", params={})
        journal.attach_task("k1", task_id="task_1", status="queued")
    conn = sqlite3.connect(path)
    # Schema step 3 added mcp_tasks; the steps after it (step 4: files) go too.
    conn.execute("DROP TABLE mcp_tasks")
    conn.execute("DROP TABLE files")
    conn.execute("UPDATE schema_version SET version = 2")
    conn.commit()
    conn.close()


def test_an_older_journal_gains_the_table_and_keeps_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    _before_mcp_tasks(path)
    with TaskJournal(path) as journal:
        entry = journal.get("task_1")
        assert entry is not None and entry.status == "queued"
        record = journal.record_mcp_task(
            "h1", task_id="task_1", tool="generate_image", status="working", ttl_ms=1000, created_at=T0
        )
        assert (record.task_id, record.status, record.ttl_ms, record.created_at) == ("task_1", "working", 1000, T0)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_conditional_updates_keep_terminal_states(tmp_path: Path) -> None:
    with TaskJournal(tmp_path / "j.sqlite3") as journal:
        journal.record_mcp_task("h1", task_id="task_1", tool="edit_image", status="working", ttl_ms=None, created_at=T0)
        later = T0 + timedelta(seconds=5)
        assert journal.update_mcp_task("h1", status_message="processing", updated_at=later)
        assert journal.update_mcp_task("h1", status="cancelled", updated_at=later, only_from="working")
        # The follow-up finishing after the cancel must not move the task out of `cancelled`.
        result = {"content": [{"type": "text", "text": "done"}], "isError": False}
        assert not journal.update_mcp_task(
            "h1", status="completed", result=result, updated_at=later, only_from="working"
        )
        record = journal.get_mcp_task("h1")
        assert record is not None
        assert (record.status, record.status_message, record.result, record.ttl_ms) == (
            "cancelled",
            "processing",
            None,
            None,
        )
        assert journal.get_mcp_task("nope") is None
