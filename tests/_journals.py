"""Journals as an older rivya-mcp left them, on either store, built from the shipped schema steps.

``older_journal(location, k)`` applies ``MIGRATIONS[:k]`` (what a release with k steps created) and
inserts rows with plain SQL, so a test of "an older journal migrates" starts from the real older
schema rather than from today's with tables dropped.
"""

from __future__ import annotations

from pathlib import Path

from rivya_mcp.journal import MIGRATIONS, SqliteStore, Store

OLD_STAMP = "2026-05-11T09:00:00.000000+00:00"


def store_for(location: str) -> Store:
    """The store at a SQLite path or a postgresql:// URL (no journal policy on top)."""
    if location.startswith(("postgresql://", "postgres://")):
        from rivya_mcp.journal.postgres import PostgresStore

        return PostgresStore(location)
    return SqliteStore(Path(location))


def older_journal(location: str, steps: int, tasks: tuple[tuple[str, str | None, str], ...] = ()) -> None:
    """A journal at schema version ``steps`` holding ``tasks`` as (idempotency key, task id, status)."""
    store = store_for(location)
    try:
        store.migrate(MIGRATIONS[:steps])
        with store.write() as tx:
            for key, task_id, status in tasks:
                tx.execute(
                    "INSERT INTO tasks (idempotency_key, task_id, model, mode, prompt, params, status, "
                    "created_at, updated_at) VALUES (?, ?, 'flux-kontext-max', 'generate', 'old', '{}', ?, ?, ?)",
                    (key, task_id, status, OLD_STAMP, OLD_STAMP),
                )
    finally:
        store.close()


def schema_version(location: str) -> int:
    store = store_for(location)
    try:
        with store.read() as tx:
            row = tx.one("SELECT version FROM schema_version")
    finally:
        store.close()
    assert row is not None
    return int(row[0])
