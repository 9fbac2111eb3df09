"""The identity store over the journal's ``Store``: the same database as the tasks, either engine.

The journal's stores are synchronous (SQLite's stdlib driver, psycopg's pool); each call runs in a
worker thread so the event loop never waits on the database. A write is one transaction of the
store's ``write()`` (serialised across threads, processes and replicas: SQLite's file lock,
PostgreSQL's advisory lock), which is what makes ``use_code`` and ``rotate_token`` check-and-set.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio

from rivya_mcp.identity._schema import ensure_identity_schema
from rivya_mcp.identity._store import ClientRecord, CodeRecord, ConsentRecord, PersonRecord, TokenRecord
from rivya_mcp.journal import JournalError, Store, Transaction

__all__ = ["IdentityStoreUnavailable", "JournalIdentityStore"]

T = TypeVar("T")

_CLIENT = "client_id, metadata, secret_box, source, created_at, fresh_until"
_CONSENT = "request_hash, client_id, params, expires_at, csrf_hash, attempts"
_CODE = "code_hash, client_id, person_id, family, params, expires_at, used"
_TOKEN = "token_hash, kind, family, client_id, person_id, scopes, resource, expires_at, state"
_PERSON = "person_id, display_name, key_box, created_at, updated_at"


class IdentityStoreUnavailable(JournalError):
    """The journal's database is not open (the data folder or the shared database is unusable)."""


class JournalIdentityStore:
    """``IdentityStore`` on a journal ``Store``, or on a callable giving the current one (opened lazily)."""

    def __init__(
        self,
        store: Store | Callable[[], Store | None],
        *,
        ensure_schema: bool = True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._source = store
        self._ensure = ensure_schema
        self._on_close = on_close
        self._ready: set[int] = set()

    async def aclose(self) -> None:
        """Runs ``on_close`` (for a store opened for this one; a store given as such is the giver's)."""
        if self._on_close is not None:
            await anyio.to_thread.run_sync(self._on_close)

    def _store(self) -> Store:
        store = self._source() if callable(self._source) else self._source
        if store is None:
            raise IdentityStoreUnavailable("the journal's database is not available, so sign-ins can't be kept")
        if self._ensure and id(store) not in self._ready:
            ensure_identity_schema(store)
            self._ready.add(id(store))
        return store

    def _run_write(self, body: Callable[[Transaction], T]) -> T:
        with self._store().write() as tx:
            return body(tx)

    def _run_read(self, body: Callable[[Transaction], T]) -> T:
        with self._store().read() as tx:
            return body(tx)

    async def _write(self, body: Callable[[Transaction], T]) -> T:
        return await anyio.to_thread.run_sync(partial(self._run_write, body))

    async def _read(self, body: Callable[[Transaction], T]) -> T:
        return await anyio.to_thread.run_sync(partial(self._run_read, body))

    # -- clients -----------------------------------------------------------------------------

    async def put_client(self, record: ClientRecord) -> None:
        def body(tx: Transaction) -> None:
            tx.execute(
                f"INSERT INTO identity_clients ({_CLIENT}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE "
                "SET metadata = excluded.metadata, secret_box = excluded.secret_box, source = excluded.source, "
                "fresh_until = excluded.fresh_until",
                (
                    record.client_id,
                    record.metadata,
                    record.secret_box,
                    record.source,
                    record.created_at,
                    record.fresh_until,
                ),
            )

        await self._write(body)

    async def get_client(self, client_id: str) -> ClientRecord | None:
        row = await self._read(
            lambda tx: tx.one(f"SELECT {_CLIENT} FROM identity_clients WHERE client_id = ?", (client_id,))
        )
        if row is None:
            return None
        return ClientRecord(row[0], row[1], row[2], row[3], int(row[4]), _int_or_none(row[5]))

    # -- consent requests --------------------------------------------------------------------

    async def put_consent(self, record: ConsentRecord) -> None:
        await self._write(
            lambda tx: tx.execute(
                f"INSERT INTO identity_consents ({_CONSENT}) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.request_hash,
                    record.client_id,
                    record.params,
                    record.expires_at,
                    record.csrf_hash,
                    record.attempts,
                ),
            )
        )

    async def get_consent(self, request_hash: str) -> ConsentRecord | None:
        row = await self._read(
            lambda tx: tx.one(f"SELECT {_CONSENT} FROM identity_consents WHERE request_hash = ?", (request_hash,))
        )
        return None if row is None else ConsentRecord(row[0], row[1], row[2], int(row[3]), row[4], int(row[5]))

    async def set_consent_csrf(self, request_hash: str, csrf_hash: str) -> None:
        await self._write(
            lambda tx: tx.execute(
                "UPDATE identity_consents SET csrf_hash = ? WHERE request_hash = ?", (csrf_hash, request_hash)
            )
        )

    async def count_consent_attempt(self, request_hash: str) -> int:
        def body(tx: Transaction) -> int:
            row = tx.one("SELECT attempts FROM identity_consents WHERE request_hash = ?", (request_hash,))
            if row is None:
                return 0
            tx.execute(
                "UPDATE identity_consents SET attempts = ? WHERE request_hash = ?", (int(row[0]) + 1, request_hash)
            )
            return int(row[0]) + 1

        return await self._write(body)

    async def delete_consent(self, request_hash: str) -> bool:
        def body(tx: Transaction) -> bool:
            if tx.one("SELECT 1 FROM identity_consents WHERE request_hash = ?", (request_hash,)) is None:
                return False
            tx.execute("DELETE FROM identity_consents WHERE request_hash = ?", (request_hash,))
            return True

        return await self._write(body)

    # -- authorization codes -----------------------------------------------------------------

    async def put_code(self, record: CodeRecord) -> None:
        await self._write(
            lambda tx: tx.execute(
                f"INSERT INTO identity_codes ({_CODE}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.code_hash,
                    record.client_id,
                    record.person_id,
                    record.family,
                    record.params,
                    record.expires_at,
                    int(record.used),
                ),
            )
        )

    async def get_code(self, code_hash: str) -> CodeRecord | None:
        row = await self._read(
            lambda tx: tx.one(f"SELECT {_CODE} FROM identity_codes WHERE code_hash = ?", (code_hash,))
        )
        return None if row is None else CodeRecord(row[0], row[1], row[2], row[3], row[4], int(row[5]), bool(row[6]))

    async def use_code(self, code_hash: str) -> bool:
        def body(tx: Transaction) -> bool:
            row = tx.one("SELECT used FROM identity_codes WHERE code_hash = ?", (code_hash,))
            if row is None or int(row[0]):
                return False
            tx.execute("UPDATE identity_codes SET used = 1 WHERE code_hash = ?", (code_hash,))
            return True

        return await self._write(body)

    # -- tokens ------------------------------------------------------------------------------

    async def put_token(self, record: TokenRecord) -> None:
        await self._write(
            lambda tx: tx.execute(
                f"INSERT INTO identity_tokens ({_TOKEN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.token_hash,
                    record.kind,
                    record.family,
                    record.client_id,
                    record.person_id,
                    " ".join(record.scopes),
                    record.resource,
                    record.expires_at,
                    record.state,
                ),
            )
        )

    async def get_token(self, token_hash: str) -> TokenRecord | None:
        row = await self._read(
            lambda tx: tx.one(f"SELECT {_TOKEN} FROM identity_tokens WHERE token_hash = ?", (token_hash,))
        )
        if row is None:
            return None
        return TokenRecord(
            row[0], row[1], row[2], row[3], row[4], tuple(str(row[5]).split()), row[6], int(row[7]), row[8]
        )

    async def rotate_token(self, token_hash: str) -> bool:
        def body(tx: Transaction) -> bool:
            row = tx.one("SELECT state FROM identity_tokens WHERE token_hash = ?", (token_hash,))
            if row is None or row[0] != "active":
                return False
            tx.execute("UPDATE identity_tokens SET state = 'rotated' WHERE token_hash = ?", (token_hash,))
            return True

        return await self._write(body)

    async def revoke_family(self, family: str) -> int:
        def body(tx: Transaction) -> int:
            row = tx.one("SELECT COUNT(*) FROM identity_tokens WHERE family = ? AND state <> 'revoked'", (family,))
            tx.execute(
                "UPDATE identity_tokens SET state = 'revoked' WHERE family = ? AND state <> 'revoked'", (family,)
            )
            return int(row[0]) if row else 0

        return await self._write(body)

    # -- people ------------------------------------------------------------------------------

    async def put_person(self, record: PersonRecord) -> None:
        await self._write(
            lambda tx: tx.execute(
                f"INSERT INTO identity_people ({_PERSON}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE "
                "SET display_name = excluded.display_name, key_box = excluded.key_box, "
                "updated_at = excluded.updated_at",
                (record.person_id, record.display_name, record.key_box, record.created_at, record.updated_at),
            )
        )

    async def get_person(self, person_id: str) -> PersonRecord | None:
        row = await self._read(
            lambda tx: tx.one(f"SELECT {_PERSON} FROM identity_people WHERE person_id = ?", (person_id,))
        )
        return None if row is None else PersonRecord(row[0], row[1], row[2], int(row[3]), int(row[4]))

    # -- meta and housekeeping ---------------------------------------------------------------

    async def get_meta(self, name: str) -> str | None:
        row = await self._read(lambda tx: tx.one("SELECT value FROM identity_meta WHERE name = ?", (name,)))
        return None if row is None else str(row[0])

    async def put_meta_if_absent(self, name: str, value: str) -> str:
        def body(tx: Transaction) -> str:
            tx.execute(
                "INSERT INTO identity_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", (name, value)
            )
            row = tx.one("SELECT value FROM identity_meta WHERE name = ?", (name,))
            assert row is not None
            return str(row[0])

        return await self._write(body)

    async def purge(self, now: int) -> None:
        def body(tx: Transaction) -> None:
            for table in ("identity_consents", "identity_codes", "identity_tokens"):
                tx.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,))

        await self._write(body)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
