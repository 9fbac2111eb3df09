"""The journal's mcp_tasks table (schema step 3): additive migration, round trip, absorbing writes.

On both stores: a SQLite file and a real PostgreSQL server (tests/_postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.journal import SCHEMA_VERSION, open_journal
from tests._journals import older_journal

T0 = datetime(2026, 7, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


def _before_mcp_tasks(location: str) -> None:
    """A journal as the release before the Tasks extension left it: two schema steps, one task."""
    older_journal(location, 2, (("k1", "task_1", "queued"),))


def test_an_older_journal_gains_the_table_and_keeps_its_tasks(location: str) -> None:
    _before_mcp_tasks(location)
    with open_journal(location) as journal:
        entry = journal.get("task_1")
        assert entry is not None and entry.status == "queued"
        record = journal.record_mcp_task(
            "h1", task_id="task_1", tool="generate_image", status="working", ttl_ms=1000, created_at=T0
        )
        assert (record.task_id, record.status, record.ttl_ms, record.created_at) == ("task_1", "working", 1000, T0)
        with journal.store.read() as tx:
            assert tx.all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_conditional_updates_keep_terminal_states(location: str) -> None:
    with open_journal(location) as journal:
        journal.record_mcp_task("h1", task_id="task_1", tool="edit_image", status="working", ttl_ms=None, created_at=T0)
        later = T0 + timedelta(seconds=5)
        assert journal.update_mcp_task("h1", status_message="processing", updated_at=later)
        assert journal.update_mcp_task("h1", status="cancelled", updated_at=later, only_from="working")
        # The follow-up finishing after the cancel must not move the task out of `cancelled`.
        result = {"content": [{"type": "text", "text": "done"}], "isError": False}
        assert not journal.update_mcp_task(
            "h1", status="completed", result=result, updated_at=later, only_from="working"
        )
        assert not journal.update_mcp_task("nope", status="cancelled", updated_at=later)
        record = journal.get_mcp_task("h1")
        assert record is not None
        assert (record.status, record.status_message, record.result, record.ttl_ms, record.updated_at) == (
            "cancelled",
            "processing",
            None,
            None,
            later,
        )
        assert journal.get_mcp_task("nope") is None


def test_a_finished_handle_keeps_its_result(location: str) -> None:
    with open_journal(location) as journal:
        journal.record_mcp_task("h2", task_id="task_2", tool="get_task", status="working", ttl_ms=500, created_at=T0)
        result = {"content": [{"type": "text", "text": "done ✓"}], "isError": False}
        assert journal.update_mcp_task("h2", status="completed", result=result, updated_at=T0, only_from="working")
        record = journal.get_mcp_task("h2")
        assert record is not None and (record.status, record.result, record.error) == ("completed", result, None)
