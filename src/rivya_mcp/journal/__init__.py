"""The durable record of every paid task: the journal's rules, over SQLite or PostgreSQL.

The rules (an intent recorded before its create leaves, the task id attached after, whose task a
row is, what recovery may re-send) are written once in ``_journal``; a store only runs the SQL it
is given: ``SqliteStore``, the embedded default, or ``rivya_mcp.journal.postgres`` (public,
imported only when a database URL is given, behind the ``postgres`` extra), shared by replicas
with what they share through it (leases, notifications, images). A row records whose it is (the
upstream, a keyed fingerprint of the account's key, and the person over HTTP identity), and a
journal scoped to an owner (``TaskJournal.scoped``) acts on that owner's rows alone.

``TaskJournal`` is synchronous and thread-safe. ``AsyncJournal`` is the one boundary through
which the event loop uses it: every call runs in a worker thread, so a journal held up by a lock
never holds up the server (see ``_async``).
"""

from __future__ import annotations

from rivya_mcp.journal._account import NO_ACCOUNT, Owner, account_fingerprint, normalise_upstream
from rivya_mcp.journal._async import AsyncJournal
from rivya_mcp.journal._identity_schema import IDENTITY_STEP, IDENTITY_TABLES
from rivya_mcp.journal._journal import (
    BUSY_TIMEOUT_SECONDS,
    FINGERPRINT_SECRET,
    MAX_REFERENCE_CHARS,
    MIGRATIONS,
    READ_CACHE_ENTRIES,
    SCHEMA_VERSION,
    BudgetExceeded,
    Composition,
    IdempotencyKeyReused,
    JournalEntry,
    McpTaskRecord,
    TaskJournal,
    UsageRow,
    day_start,
    open_journal,
)
from rivya_mcp.journal._postgres_schema import SHARED_TABLES
from rivya_mcp.journal._sqlite import SqliteStore
from rivya_mcp.journal._statuses import (
    ABANDONED,
    INTENT_END_STATUSES,
    REJECTED,
    SPENT_SQL,
    TERMINAL_STATUSES,
    UNCONFIRMED,
    UNFINISHED_SQL,
    UNSUBMITTED,
    UNSUBMITTED_SQL,
    credits_spent,
    is_terminal,
    needs_finishing,
)
from rivya_mcp.journal._store import (
    Dialect,
    JournalDamaged,
    JournalError,
    Migration,
    Store,
    StoreIntegrityError,
    Transaction,
)

__all__ = [
    "ABANDONED",
    "BUSY_TIMEOUT_SECONDS",
    "FINGERPRINT_SECRET",
    "IDENTITY_STEP",
    "IDENTITY_TABLES",
    "INTENT_END_STATUSES",
    "MAX_REFERENCE_CHARS",
    "MIGRATIONS",
    "NO_ACCOUNT",
    "READ_CACHE_ENTRIES",
    "REJECTED",
    "SCHEMA_VERSION",
    "SHARED_TABLES",
    "SPENT_SQL",
    "TERMINAL_STATUSES",
    "UNCONFIRMED",
    "UNFINISHED_SQL",
    "UNSUBMITTED",
    "UNSUBMITTED_SQL",
    "AsyncJournal",
    "BudgetExceeded",
    "Composition",
    "Dialect",
    "IdempotencyKeyReused",
    "JournalDamaged",
    "JournalEntry",
    "JournalError",
    "McpTaskRecord",
    "Migration",
    "Owner",
    "SqliteStore",
    "Store",
    "StoreIntegrityError",
    "TaskJournal",
    "Transaction",
    "UsageRow",
    "account_fingerprint",
    "credits_spent",
    "day_start",
    "is_terminal",
    "needs_finishing",
    "normalise_upstream",
    "open_journal",
]
