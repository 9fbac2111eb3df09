"""The embedded store: one local SQLite file (stdlib sqlite3, WAL), created 0600."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rivya_mcp.journal._store import (
    Dialect,
    JournalError,
    Migration,
    StoreIntegrityError,
    apply_migrations,
)

logger = logging.getLogger("rivya_mcp.journal")

# Seconds a writer waits for another connection's (or process's) write lock.
BUSY_TIMEOUT_SECONDS = 10.0


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        try:
            self._conn.execute(sql, tuple(args))
        except sqlite3.IntegrityError as exc:
            raise StoreIntegrityError(str(exc)) from exc

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self._conn.execute(sql, tuple(args)).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._conn.execute(sql, tuple(args)).fetchall()]


class SqliteStore:
    """Thread-safe: one connection shared under a lock (every call is a few milliseconds).

    Several processes may open the same file (WAL readers never block; writers wait up to
    ``BUSY_TIMEOUT_SECONDS``).
    """

    dialect: Dialect = "sqlite"
    insertion_order = "rowid"

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self.location = str(self.path)
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_private_file(self.path)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"can't open the task journal at {self.path}: {exc}") from exc
        try:
            self._configure()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: Exception) -> Exception:
        return JournalError(f"the task journal at {self.path} is unreadable ({exc}); move it aside and restart")

    def _configure(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            logger.warning("the task journal at %s is not in WAL mode (%s)", self.path, mode)
        # FULL: an intent must survive power loss, not only a crash, since money follows it.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        for suffix in ("-wal", "-shm"):
            _tighten(self.path.with_name(self.path.name + suffix))

    def migrate(self, migrations: Sequence[Migration]) -> None:
        try:
            with self.write() as tx:
                apply_migrations(tx, migrations, self.dialect, str(self.path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._unreadable(exc) from exc
        except BaseException:
            self._conn.close()
            raise

    @contextmanager
    def write(self) -> Iterator[_Tx]:
        # IMMEDIATE takes the write lock up front, so a read-then-write never deadlocks with
        # another process upgrading its own read lock.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[_Tx]:
        with self._lock:
            yield _Tx(self._conn)

    def change_token(self) -> object:
        # ``PRAGMA data_version`` (~3 µs) moves when another connection or process commits; it does
        # not move for this connection's own commits (the journal forgets its cache on those).
        with self._lock:
            return self._conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _create_private_file(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    os.close(fd)
    _tighten(path)


def _tighten(path: Path) -> None:
    """Make an existing file owner-only (it may predate us, or sqlite may have made it)."""
    if os.name != "posix":
        return
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        pass
