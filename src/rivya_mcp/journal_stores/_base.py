"""The store interface and its shared types (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol


class JournalError(RuntimeError):
    """The journal can't be used (unreadable, unreachable, or written by a newer rivya-mcp)."""


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
