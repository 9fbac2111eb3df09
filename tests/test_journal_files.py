"""The journal's record of uploaded files (schema step 2): how a file id is recognised by what the
API returned, not by its shape (issue 13, item 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rivya_mcp.journal import SCHEMA_VERSION, TaskJournal


def test_an_uploaded_file_is_remembered_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    file_id = "3f0c2a9e-8d1b-4c55-a1f2-0b7e6d5c4a39"  # a bare UUID: no prefix to go by
    with TaskJournal(path) as journal:
        assert not journal.has_file(file_id)
        journal.record_file(file_id, kind="image", name="cat.png", mime_type="image/png", size=1234)
        journal.record_file(file_id, kind="image", name="cat.png", mime_type="image/png", size=1234)  # idempotent
        assert journal.has_file(file_id)
        assert not journal.has_file("file_other")
    with TaskJournal(path) as reopened:  # another process, later
        assert reopened.has_file(file_id)
        assert reopened.get(file_id) is None  # a file id is not a task id


def test_an_older_journal_gains_the_files_table_and_keeps_its_tasks(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with TaskJournal(path) as journal:
        journal.record_intent(idempotency_key="k1", model="flux-kontext-max", mode="generate", prompt="p", params={})
    with sqlite3.connect(path) as conn:  # as an older rivya-mcp left it: one step short, no files table
        conn.execute("DROP TABLE files")
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
    with TaskJournal(path) as migrated:
        assert migrated.find_by_idempotency_key("k1") is not None
        migrated.record_file("f1", kind="image", name=None, mime_type=None, size=None)
        assert migrated.has_file("f1")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
