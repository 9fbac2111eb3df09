"""rivya-login's tables in the journal's database: the journal's schema step, and running it alone.

The tables' shape is a step of ``rivya_mcp.journal.MIGRATIONS`` (``journal.IDENTITY_STEP``), so any
journal opened on the database has them. ``IDENTITY_MIGRATION`` names that step here, and
``ensure_identity_schema`` runs it alone (every statement is ``IF NOT EXISTS``) for a store that
was not opened as a journal, as some tests do.
"""

from __future__ import annotations

from rivya_mcp.journal import IDENTITY_STEP, IDENTITY_TABLES, Store

__all__ = ["IDENTITY_MIGRATION", "IDENTITY_TABLES", "ensure_identity_schema"]

IDENTITY_MIGRATION = IDENTITY_STEP


def ensure_identity_schema(store: Store) -> None:
    """Create the tables if they are missing (idempotent; see the module docstring)."""
    with store.write() as tx:
        for statement in IDENTITY_MIGRATION.statements(store.dialect):
            tx.execute(statement)
