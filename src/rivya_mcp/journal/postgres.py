"""The shared store: one PostgreSQL database for every replica (``psycopg`` 3 with a pool).

Needs the ``postgres`` extra (``pip install 'rivya-mcp[postgres]'``). Besides the journal's rows
it holds what replicas share (``_postgres_schema``): the saved images and the task leases. A
lease is a row with an expiry, renewed while its holder works; a holder that dies stops renewing
and the lease lapses, so another replica takes the task over. Releasing a lease (and any change
to a task) sends ``NOTIFY rivya_tasks, '<lease name>'`` so waiters on other replicas wake at once
instead of polling the database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rivya_mcp.journal._store import (
    Dialect,
    JournalError,
    Migration,
    StoreIntegrityError,
    apply_migrations,
)

try:
    import psycopg
    import psycopg.conninfo
    import psycopg.errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - the extra is part of the test install
    raise JournalError(
        "RIVYA_DATABASE_URL names PostgreSQL, but psycopg is not installed: pip install 'rivya-mcp[postgres]'"
    ) from exc

logger = logging.getLogger("rivya_mcp.journal")

# Seconds to wait for a connection (at start: is the database there at all?).
CONNECT_TIMEOUT_SECONDS = 10.0
POOL_MAX_SIZE = 10
# pg_advisory_xact_lock keys (any two fixed bigints; they only have to differ from each other):
# one serialises the journal's writes across replicas, as SQLite's file lock does on one machine
# (each write is a short read-then-write; the lock makes them simple to reason about), the other
# keeps two replicas starting together from migrating at once.
JOURNAL_WRITE_LOCK = 0x52495659_0001
MIGRATION_LOCK = 0x52495659_0002
NOTIFY_CHANNEL = "rivya_tasks"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    host, port, db = params.get("host", ""), params.get("port", ""), params.get("dbname", "")
    user = params.get("user")
    return f"postgresql://{str(user) + '@' if user else ''}{host}{':' + str(port) if port else ''}/{db}"


def _sql(statement: str) -> str:
    # One SQL text for both stores: '?' placeholders become psycopg's '%s'.
    return statement.replace("?", "%s")


class _Tx:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        try:
            self._conn.execute(_sql(sql), tuple(args))
        except psycopg.errors.UniqueViolation as exc:
            raise StoreIntegrityError(str(exc)) from exc

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self._conn.execute(_sql(sql), tuple(args)).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._conn.execute(_sql(sql), tuple(args)).fetchall()]


class PostgresStore:
    dialect: Dialect = "postgres"
    insertion_order = "seq"

    def __init__(self, url: str, *, max_size: int = POOL_MAX_SIZE) -> None:
        self.url = url
        self.location = redacted(url)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=False,
            name="rivya-journal",
            timeout=CONNECT_TIMEOUT_SECONDS,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as exc:
            self._pool.close()
            raise JournalError(
                f"can't reach the journal database at {self.location} within {CONNECT_TIMEOUT_SECONDS:g} s; "
                "check RIVYA_DATABASE_URL and that PostgreSQL is running"
            ) from exc

    # -- the Store interface ---------------------------------------------------------------

    def migrate(self, migrations: Sequence[Migration]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            # Replicas starting together migrate once: the others wait here, then find it done.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            apply_migrations(_Tx(conn), migrations, self.dialect, self.location)

    @contextmanager
    def write(self) -> Iterator[_Tx]:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (JOURNAL_WRITE_LOCK,))
            yield _Tx(conn)

    @contextmanager
    def read(self) -> Iterator[_Tx]:
        with self._pool.connection() as conn:
            yield _Tx(conn)

    def change_token(self) -> object:
        # Another replica's commit can't be seen without a round trip: never serve from the cache.
        return object()

    def close(self) -> None:
        self._pool.close()

    # -- what replicas share ---------------------------------------------------------------

    def put_image(self, name: str, task_id: str, mime_type: str, data: bytes) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO images (name, task_id, mime_type, data) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (name, task_id, mime_type, data),
            )

    def get_image(self, name: str) -> tuple[str, bytes] | None:
        """The MIME type and bytes of the image saved as ``name``."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT mime_type, data FROM images WHERE name = %s", (name,)).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def image_of_task(self, task_id: str) -> tuple[str, bytes] | None:
        """The name and bytes of the first image saved for ``task_id``."""
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT name, data FROM images WHERE task_id = %s ORDER BY created_at, name LIMIT 1", (task_id,)
            ).fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def count_images(self, task_id: str) -> int:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM images WHERE task_id = %s", (task_id,)).fetchone()
        return int(row[0]) if row else 0

    def try_lease(self, name: str, holder: str, seconds: float) -> float | None:
        """Take (or renew) the lease ``name`` for ``seconds``: None if taken, else the seconds left on the other's.

        One statement, so two replicas can't both take it: the row is inserted, or updated only
        when it is ours already or has expired (the database's clock decides, not ours).
        """
        with self._pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (%s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at "
                "WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now() RETURNING holder",
                (name, holder, seconds),
            ).fetchone()
            if row is not None:
                return None
            left = conn.execute(
                "SELECT GREATEST(EXTRACT(EPOCH FROM expires_at - now()), 0) FROM leases WHERE name = %s", (name,)
            ).fetchone()
        return float(left[0]) if left else 0.0

    def release_lease(self, name: str, holder: str) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))
            conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, name))

    def notify(self, payload: str) -> None:
        """Tell every replica's listener ``payload`` (e.g. that a task changed)."""
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, payload))

    def lease_holder(self, name: str) -> str | None:
        """Who holds ``name`` now (None: nobody, or the lease has lapsed)."""
        with self._pool.connection() as conn:
            row = conn.execute("SELECT holder FROM leases WHERE name = %s AND expires_at >= now()", (name,)).fetchone()
        return None if row is None else str(row[0])

    def ping(self) -> None:
        """Raises unless the database answers (the readiness check)."""
        with self._pool.connection(timeout=2.0) as conn:
            conn.execute("SELECT 1")
