"""PostgreSQL-only tables: what replicas share besides the journal (no psycopg import here).

- ``images``: the saved image bytes, so any replica serves ``rivya://images/<name>``;
- ``leases``: who follows a task (poll, download, save) or re-sends an intent, until when.
"""

from __future__ import annotations

SHARED_TABLES: tuple[str, ...] = (
    """
    CREATE TABLE images (
        name       TEXT PRIMARY KEY,
        task_id    TEXT NOT NULL,
        mime_type  TEXT NOT NULL,
        data       BYTEA NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX images_task ON images (task_id)",
    """
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )
    """,
)
