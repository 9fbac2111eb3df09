"""The IdentityStore contract, on memory, on a SQLite journal and on a real PostgreSQL journal.

The journal-backed stores run on the journal's schema, of which rivya-login's tables are a step; a
test also proves the idempotent ``ensure_identity_schema`` and that step agree (a database that got
the tables first migrates through the step unchanged).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from rivya_mcp.identity import (
    IDENTITY_MIGRATION,
    IDENTITY_TABLES,
    ClientRecord,
    CodeRecord,
    ConsentRecord,
    IdentityStore,
    IdentityStoreUnavailable,
    JournalIdentityStore,
    MemoryIdentityStore,
    PersonRecord,
    TokenRecord,
    ensure_identity_schema,
)
from rivya_mcp.journal import MIGRATIONS, SqliteStore, Store
from tests._journals import store_for

pytestmark = pytest.mark.anyio


def _journal_store(location: str) -> Store:
    store = store_for(location)
    store.migrate(MIGRATIONS)  # rivya-login's tables are a step of the journal's
    return store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if kind == "postgres":
        yield str(request.getfixturevalue("postgres_url"))
    else:
        yield str(tmp_path / "journal.sqlite3")


@pytest.fixture
async def store(kind: str, location: str) -> AsyncIterator[IdentityStore]:
    if kind == "memory":
        yield MemoryIdentityStore()
        return
    journal_store = _journal_store(location)
    try:
        yield JournalIdentityStore(journal_store, ensure_schema=False)
    finally:
        journal_store.close()


def _token(digest: str, *, family: str = "f1", kind: str = "access", expires_at: int = 2_000) -> TokenRecord:
    return TokenRecord(digest, kind, family, "client-1", "rivya:p1", ("images",), "https://m.example/mcp", expires_at)  # type: ignore[arg-type]


async def test_clients_round_trip_and_a_document_fetched_again_replaces_its_copy(store: IdentityStore) -> None:
    assert await store.get_client("nobody") is None
    dcr = ClientRecord("c1", '{"client_id": "c1"}', "v1.sealed", "dcr", 100)
    await store.put_client(dcr)
    assert await store.get_client("c1") == dcr
    doc = ClientRecord("https://app.example/client.json", "{}", None, "cimd", 100, 160)
    await store.put_client(doc)
    await store.put_client(ClientRecord(doc.client_id, '{"v": 2}', None, "cimd", 200, 260))
    again = await store.get_client(doc.client_id)
    assert again is not None and again.metadata == '{"v": 2}' and again.fresh_until == 260


async def test_consent_requests(store: IdentityStore) -> None:
    await store.put_consent(ConsentRecord("r1", "c1", "{}", 1_000))
    await store.set_consent_csrf("r1", "csrf-hash")
    record = await store.get_consent("r1")
    assert record is not None and record.csrf_hash == "csrf-hash" and record.attempts == 0
    assert [await store.count_consent_attempt("r1") for _ in range(3)] == [1, 2, 3]
    assert await store.count_consent_attempt("gone") == 0
    assert await store.delete_consent("r1") is True
    assert await store.delete_consent("r1") is False
    assert await store.get_consent("r1") is None


async def test_a_code_is_used_once(store: IdentityStore) -> None:
    await store.put_code(CodeRecord("h1", "c1", "rivya:p1", "fam", "{}", 1_000))
    assert (await store.get_code("h1")) == CodeRecord("h1", "c1", "rivya:p1", "fam", "{}", 1_000, False)
    assert await store.use_code("h1") is True
    assert await store.use_code("h1") is False
    code = await store.get_code("h1")
    assert code is not None and code.used
    assert await store.use_code("unknown") is False


async def test_concurrent_uses_of_one_code_have_one_winner(store: IdentityStore) -> None:
    await store.put_code(CodeRecord("race", "c1", "rivya:p1", "fam", "{}", 1_000))
    wins: list[bool] = []

    async def use() -> None:
        wins.append(await store.use_code("race"))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(use)
    assert sorted(wins) == [False] * 7 + [True]


async def test_tokens_rotate_once_and_revoke_by_family(store: IdentityStore) -> None:
    await store.put_token(_token("a1"))
    await store.put_token(_token("r1", kind="refresh"))
    await store.put_token(_token("other", family="f2"))
    assert await store.get_token("a1") == _token("a1")
    assert await store.rotate_token("r1") is True
    assert await store.rotate_token("r1") is False
    rotated = await store.get_token("r1")
    assert rotated is not None and rotated.state == "rotated"
    assert await store.revoke_family("f1") == 2
    assert await store.revoke_family("f1") == 0
    for digest, state in (("a1", "revoked"), ("r1", "revoked"), ("other", "active")):
        token = await store.get_token(digest)
        assert token is not None and token.state == state


async def test_a_person_who_signs_in_again_keeps_their_first_sign_in_time(store: IdentityStore) -> None:
    await store.put_person(PersonRecord("rivya:p1", "Ada", "v1.box-1", 100, 100))
    await store.put_person(PersonRecord("rivya:p1", "Ada L.", "v1.box-2", 500, 500))
    assert await store.get_person("rivya:p1") == PersonRecord("rivya:p1", "Ada L.", "v1.box-2", 100, 500)
    assert await store.get_person("rivya:nobody") is None


async def test_meta_is_written_once(store: IdentityStore) -> None:
    assert await store.get_meta("secret_check") is None
    assert await store.put_meta_if_absent("secret_check", "first") == "first"
    assert await store.put_meta_if_absent("secret_check", "second") == "first"
    assert await store.get_meta("secret_check") == "first"


async def test_purge_forgets_only_what_expired(store: IdentityStore) -> None:
    await store.put_consent(ConsentRecord("old", "c1", "{}", 100))
    await store.put_consent(ConsentRecord("new", "c1", "{}", 300))
    await store.put_code(CodeRecord("old", "c1", "p", "f", "{}", 100))
    await store.put_token(_token("old", expires_at=100))
    await store.put_token(_token("new", expires_at=300))
    await store.put_person(PersonRecord("rivya:p1", "Ada", "v1.box", 1, 1))
    await store.purge(200)
    assert await store.get_consent("old") is None and await store.get_consent("new") is not None
    assert await store.get_code("old") is None
    assert await store.get_token("old") is None and await store.get_token("new") is not None
    assert await store.get_person("rivya:p1") is not None


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_the_journals_step_agrees_with_ensure(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A database whose tables an interim rivya-login server created itself migrates through the
    journal's step unchanged."""
    assert IDENTITY_MIGRATION in MIGRATIONS  # rivya-login's tables are a step of the journal's schema
    step = MIGRATIONS.index(IDENTITY_MIGRATION)
    location = str(request.getfixturevalue("postgres_url")) if engine == "postgres" else str(tmp_path / "j.sqlite3")
    early = store_for(location)
    try:
        early.migrate(MIGRATIONS[:step])  # the journal before the step
        ensure_identity_schema(early)  # an interim server created the tables on its own
        ensure_identity_schema(early)  # idempotent
        with early.write() as tx:
            tx.execute("INSERT INTO identity_meta (name, value) VALUES ('kept', 'yes')")
    finally:
        early.close()
    later = store_for(location)
    try:
        later.migrate(MIGRATIONS)  # the release that has the step
        with later.read() as tx:
            version = tx.one("SELECT version FROM schema_version")
            kept = tx.one("SELECT value FROM identity_meta WHERE name = 'kept'")
            for table in IDENTITY_TABLES:
                assert tx.all(f"SELECT * FROM {table}") is not None
        assert version == (len(MIGRATIONS),) and kept == ("yes",)
    finally:
        later.close()


async def test_a_journal_store_opened_lazily_creates_its_tables(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "journal.sqlite3")
    sqlite.migrate(MIGRATIONS)
    opened: list[Store] = []

    def current() -> Store:
        opened.append(sqlite)
        return sqlite

    try:
        store = JournalIdentityStore(current)
        await store.put_meta_if_absent("x", "1")
        assert await store.get_meta("x") == "1" and len(opened) == 2
    finally:
        sqlite.close()


async def test_a_journal_that_is_not_open_is_said_so() -> None:
    store = JournalIdentityStore(lambda: None)
    with pytest.raises(IdentityStoreUnavailable, match="journal's database is not available"):
        await store.get_person("rivya:p1")
