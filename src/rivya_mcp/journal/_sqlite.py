"""The embedded store: one local SQLite file (stdlib sqlite3, WAL), created 0600."""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rivya_mcp.journal._store import (
    Dialect,
    JournalDamaged,
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
        try:
            existing = os.stat(self.path)
        except FileNotFoundError:
            wal = self.path.with_name(self.path.name + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                # SQLite would replay an earlier journal's log into the new one (pages of another file).
                raise JournalDamaged(
                    self.location, f"the file is missing, but the write-ahead log of an earlier one ({wal}) is not"
                ) from None
            _create_journal_file(self.path)
        else:
            if stat.S_ISREG(existing.st_mode) and existing.st_size == 0:
                # SQLite would take it for a new database: a journal is never empty (see
                # _create_journal_file), so this one lost everything it held.
                raise JournalDamaged(self.location, "the file is empty (0 bytes)")
            _tighten(self.path)
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise JournalError(f"can't open the task journal at {self.path}: {exc}") from exc
        try:
            self._configure()
            self._check()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise self._unreadable(exc) from exc
        except BaseException:
            self._conn.close()
            raise

    def _unreadable(self, exc: Exception) -> Exception:
        if _is_damage(exc):
            return JournalDamaged(self.location, f"SQLite cannot read it ({exc})")
        return JournalError(f"the task journal at {self.path} is unreadable ({exc}); move it aside and restart")

    def _check(self) -> None:
        """``PRAGMA quick_check`` at every open: a damaged journal is refused, never used.

        quick_check verifies every page and b-tree of the file but not that each index agrees with
        its table, which ``integrity_check`` adds at ten times the cost: 0.23 s against 2.6 s for a
        journal of 100,000 tasks (133 MB; bench/journal_check.py, docs/benchmarks.md). A damaged
        page is what a crash or a disk leaves; an index out of step with its table is not.
        """
        problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            found = "; ".join(" ".join(problem.split()) for problem in problems[:3])
            raise JournalDamaged(self.location, f"SQLite's integrity check failed ({found})")

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


# What SQLite says of a file that is not (or no longer) a database, as opposed to a lock or an I/O error.
_DAMAGE_WORDS = ("file is not a database", "malformed", "corrupt")


def _is_damage(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and any(word in str(exc) for word in _DAMAGE_WORDS)


def _create_journal_file(path: Path) -> None:
    """Create a new journal so that it never appears at ``path`` empty.

    An existing empty file is refused as damage, so a new one must not be seen empty even for a
    moment (a crash then would leave one): it is made under a temporary name (0600), given SQLite's
    header (switching it to WAL writes page 1), and hard-linked into place, which fails if another
    process created the journal meanwhile; that one is then used.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_RDWR | getattr(os, "O_CLOEXEC", 0), 0o600))
    try:
        connection = sqlite3.connect(temp)
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchone()
        finally:
            connection.close()
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
        except OSError:
            # A file system without hard links: the rename is atomic too, but not exclusive, so
            # it is done only while nothing is there (two servers creating one journal in the same
            # instant on such a file system is the remaining risk).
            if not os.path.lexists(path):
                os.replace(temp, path)
    finally:
        for leftover in (temp, temp.with_name(temp.name + "-wal"), temp.with_name(temp.name + "-shm")):
            leftover.unlink(missing_ok=True)


def _tighten(path: Path) -> None:
    """Make an existing file owner-only (it may predate us, or sqlite may have made it)."""
    if os.name != "posix":
        return
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except FileNotFoundError:
        pass
