"""The store interface and its shared types (see the package docstring)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

logger = logging.getLogger("rivya_mcp.journal")


class JournalError(RuntimeError):
    """The journal can't be used (unreadable, unreachable, or written by a newer rivya-mcp)."""


class JournalDamaged(JournalError):
    """The journal file exists but is damaged: empty, not a database, or failing SQLite's check.

    Never used as it is: an empty file would start a new journal (history, webhook secret and the
    account-fingerprint secret gone, nothing said), and a damaged one could lose a paid task or
    re-send one. The message names the file and the way out (README, Troubleshooting).
    """

    def __init__(self, path: str, damage: str) -> None:
        self.path = path
        self.damage = damage
        self.fix = f"move {path} aside (keep it) and start again"
        super().__init__(
            f"The task journal {path} is damaged: {damage}. rivya-mcp will not run on it: it records every "
            "paid task there (and its webhook signing secret and account-fingerprint secret), and a damaged "
            f"journal could lose a paid task or send one twice. Move the file aside (for example: mv '{path}' "
            f"'{path}.damaged'), with its '-wal' and '-shm' files beside it if there are any, and start the "
            "server again: it creates a new, empty journal. Keep the moved files: tasks recorded only there are "
            "no longer followed or listed, and the sqlite3 tool's .recover command can read what is left."
        )


Dialect = Literal["sqlite", "postgres"]


class StoreIntegrityError(Exception):
    """A uniqueness rule refused a write (the engine's own error, translated)."""


@dataclass(frozen=True)
class Migration:
    """One schema step. ``common`` runs on both stores, then the store's own statements.

    Adding a column to the journal is one ``Migration(common=("ALTER TABLE tasks ADD COLUMN …",))``
    appended to ``rivya_mcp.journal.MIGRATIONS``; a table only one engine needs goes in its field.
    """

    common: tuple[str, ...] = ()
    sqlite: tuple[str, ...] = ()
    postgres: tuple[str, ...] = ()

    def statements(self, dialect: Dialect) -> tuple[str, ...]:
        return self.common + (self.sqlite if dialect == "sqlite" else self.postgres)


class Transaction(Protocol):
    """Statements inside one transaction (or one autocommit read)."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None: ...

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Store(Protocol):
    dialect: Dialect
    # Where the rows live, for messages: a path, or a database URL without its password.
    location: str
    # The column that orders rows inserted in the same microsecond (SQLite's rowid, a sequence).
    insertion_order: str

    def migrate(self, migrations: Sequence[Migration]) -> None:
        """Bring the schema to ``len(migrations)``; refuse (``JournalError``) one that is newer."""

    def write(self) -> AbstractContextManager[Transaction]:
        """A write transaction, serialised against every other writer (thread, process, replica)."""

    def read(self) -> AbstractContextManager[Transaction]: ...

    def change_token(self) -> object:
        """Equal tokens: nothing was committed by anyone since. A store that can't tell returns a new object."""

    def close(self) -> None: ...


def apply_migrations(tx: Transaction, migrations: Sequence[Migration], dialect: Dialect, location: str) -> None:
    """Bring the schema in ``tx`` to ``len(migrations)``: the one rule both stores follow.

    The version lives in ``schema_version``; a journal newer than this code is refused, never
    downgraded. Each store only supplies the transaction (and its own lock around it).
    """
    target = len(migrations)
    tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = tx.one("SELECT version FROM schema_version")
    version = 0 if row is None else int(row[0])
    if row is None:
        tx.execute("INSERT INTO schema_version (version) VALUES (0)")
    if version > target:
        raise JournalError(
            f"the task journal at {location} has schema version {version}, newer than this "
            f"rivya-mcp understands ({target}); upgrade rivya-mcp"
        )
    for step in range(version, target):
        for statement in migrations[step].statements(dialect):
            tx.execute(statement)
        logger.info("task journal migrated to schema version %d", step + 1)
    tx.execute("UPDATE schema_version SET version = ?", (target,))
