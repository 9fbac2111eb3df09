"""Where the task journal keeps its rows: one small interface, two stores.

The journal's policy (intent before the create, attach, recovery rules, idempotency lookups) lives
once in :mod:`rivya_mcp.journal`; a store only runs the SQL it is given and applies the schema:

- :class:`SqliteStore`: a local file (stdlib ``sqlite3``, WAL), the embedded default;
- ``PostgresStore`` (``rivya_mcp.journal_stores._postgres``, needs the ``postgres`` extra):
  one database shared by every replica of a hosted server.

The SQL is written once, in the subset both engines accept, with ``?`` placeholders (the
PostgreSQL store turns them into ``%s``; so no ``%`` and no literal ``?`` in statements).
"""

from __future__ import annotations

from rivya_mcp.journal_stores._base import (
    Dialect,
    JournalError,
    Migration,
    Store,
    StoreIntegrityError,
    Transaction,
)
from rivya_mcp.journal_stores._sqlite import SqliteStore

__all__ = [
    "Dialect",
    "JournalError",
    "Migration",
    "SqliteStore",
    "Store",
    "StoreIntegrityError",
    "Transaction",
]
