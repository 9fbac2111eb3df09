"""The journal's record of uploaded files (schema step 4): how a file id is recognised by what the
API returned, not by its shape (issue 13, item 3). On both stores: a SQLite file and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from rivya_mcp.journal import SCHEMA_VERSION, open_journal
from tests._journals import older_journal, schema_version


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


def test_an_uploaded_file_is_remembered_across_processes(location: str) -> None:
    file_id = "3f0c2a9e-8d1b-4c55-a1f2-0b7e6d5c4a39"  # a bare UUID: no prefix to go by
    with open_journal(location) as journal:
        assert not journal.has_file(file_id)
        journal.record_file(file_id, kind="image", name="cat.png", mime_type="image/png", size=1234)
        journal.record_file(file_id, kind="image", name="cat.png", mime_type="image/png", size=1234)  # idempotent
        assert journal.has_file(file_id)
        assert not journal.has_file("file_other")
    with open_journal(location) as reopened:  # another process (or replica), later
        assert reopened.has_file(file_id)
        assert reopened.get(file_id) is None  # a file id is not a task id


def test_an_older_journal_gains_the_files_table_and_keeps_its_tasks(location: str) -> None:
    # As the release before step 4 left it: three steps, an intent and a task, no files table.
    older_journal(location, 3, (("k1", None, "unsubmitted"), ("k2", "task_2", "processing")))
    with open_journal(location) as migrated:
        assert migrated.find_by_idempotency_key("k1") is not None
        entry = migrated.get("task_2")
        assert entry is not None and entry.status == "processing"
        migrated.record_file("f1", kind="image", name=None, mime_type=None, size=None)
        assert migrated.has_file("f1")
    assert schema_version(location) == SCHEMA_VERSION
