"""Whose task a journal row is: upstream and keyed account fingerprint, scoping, and the v1 → v2 step.

The scoping is the journal's policy, so the tests that take ``location`` run on a SQLite file and
on a real PostgreSQL server (tests/_postgres.py), as tests/test_journal.py does.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rivya_mcp.journal import (
    FINGERPRINT_SECRET,
    MIGRATIONS,
    NO_ACCOUNT,
    SCHEMA_VERSION,
    IdempotencyKeyReused,
    JournalEntry,
    SqliteStore,
    Store,
    TaskJournal,
    account_fingerprint,
    normalise_upstream,
    open_journal,
)
from rivya_mcp.settings import Secret
from tests._postgres import fresh_schema

SANDBOX = "http://127.0.0.1:8765"
REAL = "https://rivya.ai"
KEY_A = "rvya_sk_alice_0123456789abcdef"
KEY_B = "rvya_sk_bob_fedcba9876543210"
PARAMS = {"aspectRatio": "1:1"}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://rivya.ai", "https://rivya.ai"),
        ("https://rivya.ai/", "https://rivya.ai"),
        ("HTTPS://Rivya.AI:443/", "https://rivya.ai"),
        ("  https://rivya.ai  ", "https://rivya.ai"),
        ("https://rivya.ai:8443", "https://rivya.ai:8443"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
        ("https://user:pw@rivya.ai/proxy/", "https://rivya.ai/proxy"),  # user info is never stored
        ("https://rivya.ai?x=1#f", "https://rivya.ai"),
        ("https://rivya.ai/Proxy", "https://rivya.ai/Proxy"),  # paths are case-sensitive
    ],
)
def test_normalise_upstream(given: str, expected: str) -> None:
    assert normalise_upstream(given) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://rivya.ai", "https://rivya.ai:443/", True),
        ("https://rivya.ai", "http://rivya.ai", False),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8766", False),
        ("https://rivya.ai", "https://api.rivya.ai", False),
    ],
)
def test_upstreams_that_are_the_same_endpoint(a: str, b: str, same: bool) -> None:
    assert (normalise_upstream(a) == normalise_upstream(b)) is same


def test_account_fingerprint_is_keyed() -> None:
    one, two = b"\x01" * 32, b"\x02" * 32
    assert account_fingerprint(one, KEY_A) == hmac.new(one, KEY_A.encode(), hashlib.sha256).hexdigest()
    assert account_fingerprint(one, KEY_A) != account_fingerprint(two, KEY_A)  # another journal, another print
    assert account_fingerprint(one, KEY_A) != account_fingerprint(one, KEY_B)
    assert account_fingerprint(one, KEY_A) != hashlib.sha256(KEY_A.encode()).hexdigest()
    with pytest.raises(ValueError):
        account_fingerprint(b"", KEY_A)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, path: Path) -> str:
    """Where the journal lives: a SQLite path, or a postgresql:// URL to an empty schema."""
    if request.param == "sqlite":
        return str(path)
    return str(request.getfixturevalue("postgres_url"))


def _store(location: str) -> Store:
    if location.startswith("postgresql://"):
        from rivya_mcp.journal.postgres import PostgresStore

        return PostgresStore(location)
    return SqliteStore(Path(location))


@pytest.fixture
def opened(location: str) -> Iterator[dict[str, TaskJournal]]:
    clock = Clock()
    journals = {
        "sandbox_a": open_journal(location, now=clock, upstream=SANDBOX, api_key=Secret(KEY_A)),
        "real_a": open_journal(location, now=clock, upstream=REAL + "/", api_key=KEY_A),
        "real_b": open_journal(location, now=clock, upstream=REAL, api_key=Secret(KEY_B)),
        "real_no_key": open_journal(location, now=clock, upstream=REAL),
        "all": open_journal(location, now=clock),
    }
    yield journals
    for journal in journals.values():
        journal.close()


def _intent(journal: TaskJournal, key: str, **overrides: Any) -> JournalEntry:
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "model": "flux-kontext-max",
        "mode": "generate",
        "prompt": f"a lighthouse ({key})",
        "params": PARAMS,
    }
    return journal.record_intent(**(fields | overrides))


def test_each_scope_sees_only_its_own_rows(opened: dict[str, TaskJournal]) -> None:
    sandbox_a, real_a, real_b, real_no_key, everything = (opened[k] for k in opened)
    _intent(sandbox_a, "k-sandbox")  # unanswered under the sandbox
    _intent(real_a, "k-real-a")
    real_a.attach_task("k-real-a", task_id="task_a", status="processing")
    _intent(real_b, "k-real-b")

    assert [e.idempotency_key for e in sandbox_a.unsubmitted()] == ["k-sandbox"]
    assert [e.idempotency_key for e in real_a.unsubmitted()] == []
    assert [e.idempotency_key for e in real_b.unsubmitted()] == ["k-real-b"]
    assert real_no_key.unsubmitted() == [] and real_no_key.unfinished() == []
    assert [e.task_id for e in real_a.unfinished()] == ["task_a"]
    assert sandbox_a.unfinished() == [] and real_b.unfinished() == []

    assert real_a.get("task_a") is not None
    assert sandbox_a.get("task_a") is None and real_b.get("task_a") is None
    assert sandbox_a.find_by_idempotency_key("k-real-a") is None
    assert real_b.find_by_idempotency_key("k-real-b") is not None
    assert [e.idempotency_key for e in real_a.list()] == ["k-real-a"]
    assert sorted(e.idempotency_key for e in everything.list()) == ["k-real-a", "k-real-b", "k-sandbox"]

    # Another account can neither update nor attach to a row that is not its own.
    with pytest.raises(KeyError):
        real_b.update("task_a", status="succeeded")
    with pytest.raises(KeyError):
        real_a.attach_task("k-sandbox", task_id="task_s", status="queued")
    with pytest.raises(KeyError):
        real_a.end_intent("k-sandbox", status="unconfirmed", error_code=None, error_message=None)
    assert everything.find_by_idempotency_key("k-sandbox") is not None
    assert everything.find_by_idempotency_key("k-sandbox").status == "unsubmitted"  # type: ignore[union-attr]

    assert (sandbox_a.pending_elsewhere(), real_a.pending_elsewhere(), real_b.pending_elsewhere()) == (2, 2, 2)
    assert real_no_key.pending_elsewhere() == 3 and everything.pending_elsewhere() == 0


def test_a_key_used_by_another_account_is_refused_not_shared(opened: dict[str, TaskJournal]) -> None:
    _intent(opened["real_a"], "shared-key")
    with pytest.raises(IdempotencyKeyReused, match="another API key or base URL"):
        _intent(opened["real_b"], "shared-key")  # even the very same request
    with pytest.raises(IdempotencyKeyReused, match="another API key or base URL"):
        _intent(opened["sandbox_a"], "shared-key")
    assert _intent(opened["real_a"], "shared-key").idempotency_key == "shared-key"  # its owner: a no-op


def test_rows_record_upstream_and_keyed_fingerprint_never_the_key(
    opened: dict[str, TaskJournal], location: str, path: Path
) -> None:
    real_a, everything = opened["real_a"], opened["all"]
    entry = _intent(real_a, "k1")
    _intent(opened["real_b"], "k2")
    with everything.store.read() as tx:
        row = tx.one("SELECT value FROM meta WHERE name = ?", (FINGERPRINT_SECRET,))
        rows = tx.all("SELECT * FROM tasks")
    assert row is not None
    secret = bytes.fromhex(row[0])
    assert len(secret) == 32
    assert entry.upstream == REAL and entry.account == hmac.new(secret, KEY_A.encode(), hashlib.sha256).hexdigest()
    assert opened["real_no_key"].owner == (REAL, NO_ACCOUNT)
    leaks = (KEY_A, KEY_B, hashlib.sha256(KEY_A.encode()).hexdigest(), hashlib.sha256(KEY_B.encode()).hexdigest())
    stored = repr(rows)  # every column of every row, as the database gives it back
    assert len(rows) == 2 and all(leak not in stored for leak in leaks)
    if location.startswith("postgresql://"):
        return
    real_a.close()
    everything.close()
    raw = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    for leak in leaks:
        assert leak.encode() not in raw


def test_another_journal_fingerprints_the_same_key_differently(location: str, request: pytest.FixtureRequest) -> None:
    if location.startswith("postgresql://"):
        other = fresh_schema(str(request.getfixturevalue("postgres_server")))  # another database's journal
    else:
        other = location + "-2"
    with (
        open_journal(location, upstream=REAL, api_key=KEY_A) as one,
        open_journal(other, upstream=REAL, api_key=KEY_A) as two,
        open_journal(location, upstream=REAL, api_key=KEY_A) as again,
    ):
        assert one.owner is not None and two.owner is not None
        assert one.owner[1] != two.owner[1]
        assert again.owner == one.owner  # one journal keeps its secret: the same key, the same print


def test_a_key_without_an_upstream_is_refused(path: Path) -> None:
    with pytest.raises(ValueError):
        TaskJournal(path, api_key=KEY_A)


def test_rows_of_a_version_1_journal_belong_to_no_account(location: str) -> None:
    """An old journal's rows: never re-sent or polled by anyone, but still listed."""
    store = _store(location)
    store.migrate(MIGRATIONS[:1])
    with store.write() as tx:
        now = "2026-05-11T09:00:00.000000+00:00"
        for key, task_id, status in (("old-intent", None, "unsubmitted"), ("old-task", "task_old", "processing")):
            tx.execute(
                "INSERT INTO tasks (idempotency_key, task_id, model, mode, prompt, params, status, created_at, "
                "updated_at) VALUES (?, ?, 'flux-kontext-max', 'generate', 'old', '{}', ?, ?, ?)",
                (key, task_id, status, now, now),
            )
    store.close()
    with open_journal(location, upstream=REAL, api_key=KEY_A) as journal:
        assert journal.unsubmitted() == [] and journal.unfinished() == []
        assert journal.get("task_old") is None
        listed = journal.list()
        assert sorted(e.idempotency_key for e in listed) == ["old-intent", "old-task"]
        assert all(not e.has_owner and e.upstream is None for e in listed)
        assert journal.pending_elsewhere() == 2
        with pytest.raises(IdempotencyKeyReused):
            _intent(journal, "old-intent", prompt="old", params={})
        with journal.store.read() as tx:
            assert tx.all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
            assert tx.one("SELECT COUNT(*) FROM meta WHERE name = ?", (FINGERPRINT_SECRET,)) == (1,)


def test_a_version_1_sqlite_file_written_by_the_old_code_migrates(path: Path) -> None:
    """A journal file as rivya-mcp 1 wrote it (its own DDL, not today's MIGRATIONS[0]) opens and migrates."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE tasks (
                idempotency_key TEXT PRIMARY KEY, task_id TEXT UNIQUE, model TEXT NOT NULL, mode TEXT NOT NULL,
                prompt TEXT, params TEXT NOT NULL, reference TEXT, status TEXT NOT NULL, reserved_credits REAL,
                final_credits REAL, result_urls TEXT NOT NULL DEFAULT '[]', saved_paths TEXT NOT NULL DEFAULT '[]',
                error_code TEXT, error_message TEXT, created_at TEXT NOT NULL, submitted_at TEXT,
                updated_at TEXT NOT NULL, remote_created_at TEXT
            );
            CREATE INDEX tasks_created ON tasks (created_at);
            CREATE INDEX tasks_status ON tasks (status);
            CREATE TABLE schema_version (version INTEGER NOT NULL);
            INSERT INTO schema_version (version) VALUES (1);
            INSERT INTO tasks (idempotency_key, task_id, model, mode, prompt, params, status, created_at, updated_at)
            VALUES ('old', 'task_old', 'flux-kontext-max', 'generate', 'old', '{}', 'succeeded',
                    '2026-05-11T09:00:00.000000+00:00', '2026-05-11T09:00:00.000000+00:00');
            """
        )
    conn.close()
    with TaskJournal(path, upstream=REAL, api_key=KEY_A) as journal:
        assert [(e.task_id, e.account) for e in journal.list()] == [("task_old", None)]
        journal.record_mcp_task(
            "m1", task_id="task_old", tool="get_task", status="working", ttl_ms=None, created_at=datetime.now(UTC)
        )
        assert journal.get_mcp_task("m1") is not None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
