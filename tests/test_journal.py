"""The task journal: round trips, ordering, idempotency, crash safety, concurrency, privacy.

One suite for both stores: every test that takes ``journal`` or ``location`` runs on a SQLite file
and on a real PostgreSQL server (tests/_postgres.py); the file-specific ones take ``db_path``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import rivya_mcp.journal
from rivya_mcp.journal import (
    SCHEMA_VERSION,
    IdempotencyKeyReused,
    JournalDamaged,
    JournalEntry,
    JournalError,
    TaskJournal,
    open_journal,
)
from rivya_mcp.settings import Settings
from tests._journals import older_journal, schema_version

START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
PARAMS = {"aspectRatio": "16:9", "outputFormat": "png", "promptUpsampling": "false", "safetyTolerance": 2}


class Clock:
    """A clock that moves one second per reading, so every write has its own time."""

    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        self.moment += timedelta(seconds=1)
        return self.moment


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "journal.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a journal lives: a SQLite path, or a postgresql:// URL to an empty schema."""
    if request.param == "sqlite":
        return str(tmp_path / "data" / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def journal(location: str) -> Iterator[TaskJournal]:
    with open_journal(location, now=Clock()) as journal:
        yield journal


def intent(journal: TaskJournal, key: str, **overrides: Any) -> JournalEntry:
    fields: dict[str, Any] = {
        "idempotency_key": key,
        "model": "flux-kontext-max",
        "mode": "generate",
        "prompt": f"a lighthouse at dusk ({key})",
        "params": PARAMS,
        "reference": None,
    }
    return journal.record_intent(**(fields | overrides))


def created(journal: TaskJournal, key: str, task_id: str, status: str = "queued", **overrides: Any) -> JournalEntry:
    intent(journal, key, **overrides)
    return journal.attach_task(key, task_id=task_id, status=status, reserved_credits=20)


def test_intent_round_trip(journal: TaskJournal) -> None:
    entry = intent(journal, "k1", prompt='émoji 🎨 "quotes" \'; DROP TABLE tasks; --', reference="/home/me/cat.png")
    assert entry == journal.find_by_idempotency_key("k1")
    assert entry.task_id is None and entry.status == "unsubmitted" and not entry.is_terminal
    assert entry.prompt == 'émoji 🎨 "quotes" \'; DROP TABLE tasks; --'
    assert entry.params == PARAMS and entry.reference == "/home/me/cat.png"
    assert entry.created_at == START + timedelta(seconds=1) and entry.created_at.tzinfo is not None
    assert (entry.result_urls, entry.saved_paths, entry.submitted_at) == ((), (), None)


def test_attach_and_update_round_trip(journal: TaskJournal) -> None:
    intent(journal, "k1")
    entry = journal.attach_task("k1", task_id="task_1", status="queued", reserved_credits=20, created_at="2026-05-11")
    assert (entry.task_id, entry.status, entry.reserved_credits, entry.remote_created_at) == (
        "task_1",
        "queued",
        20,
        "2026-05-11",
    )
    assert entry.submitted_at is not None and journal.get("task_1") == entry

    done = journal.update("task_1", status="succeeded", final_credits=20, result_urls=["https://x/1.png"])
    assert (done.status, done.final_credits, done.result_urls, done.is_terminal) == (
        "succeeded",
        20,
        ("https://x/1.png",),
        True,
    )
    assert done.updated_at > entry.updated_at and done.created_at == entry.created_at


def test_update_leaves_unnamed_fields_alone(journal: TaskJournal) -> None:
    created(journal, "k1", "task_1")
    journal.update("task_1", status="failed", error_code="generation_failed", error_message="The generation failed.")
    entry = journal.update("task_1", final_credits=0)
    assert (entry.status, entry.error_code, entry.error_message, entry.reserved_credits, entry.final_credits) == (
        "failed",
        "generation_failed",
        "The generation failed.",
        20,
        0,
    )


def test_saved_paths_append_once(journal: TaskJournal, tmp_path: Path) -> None:
    created(journal, "k1", "task_1", status="succeeded")
    journal.update("task_1", saved_path=tmp_path / "a.png")
    journal.update("task_1", saved_path=str(tmp_path / "a.png"))
    entry = journal.update("task_1", saved_path=tmp_path / "b.png")
    assert entry.saved_paths == (str(tmp_path / "a.png"), str(tmp_path / "b.png"))


def test_terminal_status_is_not_undone_by_a_stale_poll(journal: TaskJournal) -> None:
    created(journal, "k1", "task_1")
    journal.update("task_1", status="succeeded")
    assert journal.update("task_1", status="processing").status == "succeeded"


def test_unknown_ids(journal: TaskJournal) -> None:
    assert journal.get("task_nope") is None and journal.find_by_idempotency_key("nope") is None
    with pytest.raises(KeyError):
        journal.update("task_nope", status="failed")
    with pytest.raises(KeyError):
        journal.attach_task("nope", task_id="task_1", status="queued")


class TestIdempotency:
    def test_same_request_returns_the_same_entry(self, journal: TaskJournal) -> None:
        first = created(journal, "k1", "task_1")
        again = intent(journal, "k1")
        assert again == first and again.task_id == "task_1"
        assert len(journal.list()) == 1

    def test_params_order_does_not_matter(self, journal: TaskJournal) -> None:
        intent(journal, "k1")
        assert intent(journal, "k1", params=dict(reversed(PARAMS.items()))).idempotency_key == "k1"

    @pytest.mark.parametrize(
        "change", [{"prompt": "something else"}, {"params": {"aspectRatio": "1:1"}}, {"mode": "edit"}]
    )
    def test_different_request_with_the_same_key(self, journal: TaskJournal, change: dict[str, Any]) -> None:
        intent(journal, "k1")
        with pytest.raises(IdempotencyKeyReused, match="use a new key"):
            intent(journal, "k1", **change)

    def test_reattaching_the_same_task_is_fine_another_is_not(self, journal: TaskJournal) -> None:
        created(journal, "k1", "task_1")
        assert journal.attach_task("k1", task_id="task_1", status="processing").status == "processing"
        with pytest.raises(ValueError, match="already belongs to task task_1"):
            journal.attach_task("k1", task_id="task_2", status="queued")
        intent(journal, "k2")
        with pytest.raises(ValueError, match="another idempotency key"):
            journal.attach_task("k2", task_id="task_1", status="queued")


def test_list_is_recent_first_and_filters(journal: TaskJournal) -> None:
    created(journal, "k1", "task_1", status="succeeded")
    created(journal, "k2", "task_2", status="queued")
    intent(journal, "k3")
    created(journal, "k4", "task_4", status="succeeded")
    assert [e.idempotency_key for e in journal.list()] == ["k4", "k3", "k2", "k1"]
    assert [e.task_id for e in journal.list(status="succeeded")] == ["task_4", "task_1"]
    assert [e.idempotency_key for e in journal.list(limit=2)] == ["k4", "k3"]
    assert journal.list(status="failed") == []
    with pytest.raises(ValueError):
        journal.list(limit=0)


def test_list_breaks_time_ties_by_insertion(location: str) -> None:
    with open_journal(location, now=lambda: START) as journal:
        for key in ("a", "b", "c"):
            intent(journal, key)
        assert [e.idempotency_key for e in journal.list()] == ["c", "b", "a"]


def test_unsubmitted_and_unfinished(journal: TaskJournal) -> None:
    intent(journal, "lost-in-flight")
    intent(journal, "refused")
    journal.reject_intent("refused", error_code="insufficient_credits", error_message="Not enough credits.")
    created(journal, "queued", "task_q")
    created(journal, "processing", "task_p", status="processing")
    created(journal, "done-unsaved", "task_u", status="succeeded")
    created(journal, "done-saved", "task_s", status="succeeded")
    journal.update("task_s", saved_path="/out/s.png")
    created(journal, "expired", "task_e", status="succeeded")
    journal.update("task_e", error_code="result_expired")
    created(journal, "failed", "task_f", status="failed")

    assert [e.idempotency_key for e in journal.unsubmitted()] == ["lost-in-flight"]
    assert [e.task_id for e in journal.unfinished()] == ["task_q", "task_p", "task_u"]
    refused = journal.find_by_idempotency_key("refused")
    assert refused is not None and refused.status == "rejected" and refused.is_terminal
    with pytest.raises(ValueError, match="use update"):
        journal.reject_intent("queued", error_code="x", error_message=None)


class TestIntentsThatEndedWithoutATask:
    """Rejected, unconfirmed or abandoned intents are not re-sent, but an agent's retry may revive them."""

    def test_a_rejected_intent_takes_the_task_of_a_retry_with_the_same_key(self, journal: TaskJournal) -> None:
        intent(journal, "k1")
        journal.reject_intent("k1", error_code="insufficient_credits", error_message="Not enough credits.")
        # The agent tops up and calls again with the same key: the server records the intent again
        # (it is about to re-send the recorded body), then attaches the answer.
        reopened = intent(journal, "k1")
        assert (reopened.status, reopened.error_code, reopened.error_message) == ("unsubmitted", None, None)
        assert [e.idempotency_key for e in journal.unsubmitted()] == ["k1"]
        entry = journal.attach_task("k1", task_id="task_1", status="queued", reserved_credits=20)
        assert (entry.task_id, entry.status, entry.error_code, entry.error_message) == ("task_1", "queued", None, None)
        assert journal.get("task_1") == entry and journal.unsubmitted() == []
        assert [e.task_id for e in journal.unfinished()] == ["task_1"]

    @pytest.mark.parametrize("ended", ["rejected", "unconfirmed", "abandoned"])
    def test_attaching_directly_to_an_ended_intent_works(self, journal: TaskJournal, ended: str) -> None:
        intent(journal, "k1")
        journal.end_intent("k1", status=ended, error_code="x", error_message="y")
        entry = journal.attach_task("k1", task_id="task_1", status="processing")
        assert (entry.status, entry.error_code, entry.error_message) == ("processing", None, None)

    @pytest.mark.parametrize("ended", ["unconfirmed", "abandoned"])
    def test_ended_intents_are_terminal_and_not_resent(self, journal: TaskJournal, ended: str) -> None:
        intent(journal, "k1")
        entry = journal.end_intent("k1", status=ended, error_code="connection_failed", error_message=None)
        assert entry.status == ended and entry.is_terminal and entry.error_code == "connection_failed"
        assert journal.unsubmitted() == [] and journal.unfinished() == []
        assert [e.idempotency_key for e in journal.list(status=ended)] == ["k1"]

    def test_only_intent_end_states_and_only_intents(self, journal: TaskJournal) -> None:
        intent(journal, "k1")
        with pytest.raises(ValueError, match="can end as one of"):
            journal.end_intent("k1", status="succeeded", error_code=None, error_message=None)
        created(journal, "k2", "task_2")
        with pytest.raises(ValueError, match="use update"):
            journal.end_intent("k2", status="unconfirmed", error_code=None, error_message=None)

    def test_a_task_with_a_result_is_not_reopened(self, journal: TaskJournal) -> None:
        created(journal, "k1", "task_1", status="failed")
        assert intent(journal, "k1").status == "failed"


def test_public_names() -> None:
    assert {"MAX_REFERENCE_CHARS", "TaskJournal", "UNSUBMITTED", "REJECTED"} <= set(rivya_mcp.journal.__all__)
    assert all(hasattr(rivya_mcp.journal, name) for name in rivya_mcp.journal.__all__)


def test_public_dict(journal: TaskJournal) -> None:
    created(journal, "k1", "task_1", reference="https://example.com/ref.png")
    entry = journal.update("task_1", status="failed", error_code="generation_failed", error_message="failed")
    public = entry.to_public_dict()
    assert public["task_id"] == "task_1" and public["reference"] == "https://example.com/ref.png"
    assert public["error"] == {"code": "generation_failed", "message": "failed"}
    assert public["created_at"] == "2026-05-11T09:00:01.000000+00:00"
    assert public["params"] == PARAMS and public["saved_paths"] == []
    json.dumps(public)  # plain JSON all the way down


def test_data_uri_references_are_shortened(journal: TaskJournal) -> None:
    uri = "data:image/png;base64," + "A" * 100_000
    entry = intent(journal, "k1", reference=uri)
    assert entry.reference == f"data:image/png;base64,… ({len(uri)} characters)"
    assert intent(journal, "k1", reference=uri) == entry  # the same request again


def test_wal_mode_and_schema_version(db_path: Path) -> None:
    with TaskJournal(db_path) as journal:
        intent(journal, "k1")
    with sqlite3.connect(db_path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_are_owner_only(db_path: Path) -> None:
    with TaskJournal(db_path) as journal:
        intent(journal, "k1")
    for path in db_path.parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_existing_loose_permissions_are_tightened(db_path: Path) -> None:
    TaskJournal(db_path).close()  # a journal an older release (or a user's chmod) left readable to all
    db_path.chmod(0o644)
    TaskJournal(db_path).close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_newer_schema_is_refused(location: str) -> None:
    with open_journal(location) as journal, journal.store.write() as tx:
        tx.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(JournalError, match="upgrade rivya-mcp"):
        open_journal(location)


def test_reopening_migrates_nothing_twice(location: str) -> None:
    open_journal(location).close()
    with open_journal(location) as journal, journal.store.read() as tx:
        assert tx.all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


@pytest.mark.parametrize("steps", range(1, SCHEMA_VERSION))
def test_a_journal_at_any_earlier_schema_migrates_and_keeps_its_rows(location: str, steps: int) -> None:
    """Built from the shipped steps ``MIGRATIONS[:steps]`` (what that release created), then opened."""
    older_journal(location, steps, (("old-intent", None, "unsubmitted"), ("old-key", "task_old", "processing")))
    with open_journal(location, now=Clock()) as journal:
        assert journal.find_by_idempotency_key("old-intent") is not None
        entry = journal.get("task_old")
        assert entry is not None and entry.status == "processing" and entry.account is None
        # Every later step's table or columns are there and work.
        journal.record_mcp_task(
            "h1", task_id="task_old", tool="get_task", status="working", ttl_ms=None, created_at=START
        )
        assert journal.get_mcp_task("h1") is not None
        journal.record_file("f1", kind="image", name=None, mime_type=None, size=None)
        assert journal.has_file("f1")
        assert journal.poll_times("task_old") == (None, None)
        assert journal.claim_poll("task_old", interval=5.0) is None
    assert schema_version(location) == SCHEMA_VERSION


def test_garbage_file_is_a_clear_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalDamaged, match="Move the file aside") as caught:
        TaskJournal(db_path)
    assert str(db_path) in str(caught.value) and "file is not a database" in str(caught.value)


def _journal_with_rows(path: Path, rows: int = 300) -> None:
    with TaskJournal(path) as journal:
        for n in range(rows):
            journal.record_intent(
                idempotency_key=f"k{n}", model="m", mode="generate", prompt="a fox " * 40, params=PARAMS
            )


def test_an_empty_journal_file_is_refused_not_started_afresh(db_path: Path) -> None:
    """Issue 23 item 7: a journal truncated to 0 bytes became a new, empty journal: history, webhook
    secret and account-fingerprint secret gone, and nothing said."""
    _journal_with_rows(db_path)
    db_path.write_bytes(b"")
    with pytest.raises(JournalDamaged) as caught:
        TaskJournal(db_path, upstream="https://rivya.ai", api_key="rvya_sk_journal_test")
    message = str(caught.value)
    assert f"The task journal {db_path} is damaged: the file is empty (0 bytes)." in message
    assert "Move the file aside" in message and f"mv '{db_path}'" in message
    assert db_path.stat().st_size == 0  # left as found: nothing was written into it
    # The documented way out works: moved aside, a new journal is made at the same place.
    db_path.rename(db_path.with_name("journal.sqlite3.damaged"))
    with TaskJournal(db_path) as journal:
        assert journal.unsubmitted() == []


def test_a_journal_failing_sqlites_check_is_refused(db_path: Path) -> None:
    """Issue 23 item 7: a damaged page that the queries at start never touch ran as if nothing happened."""
    _journal_with_rows(db_path)
    data = bytearray(db_path.read_bytes())
    data[5 * 4096 : 6 * 4096] = b"\xa5" * 4096  # page 6: a b-tree page of the tasks table or an index
    db_path.write_bytes(bytes(data))
    with sqlite3.connect(db_path) as raw:  # the damage is real, and SQLite's own check says so
        assert raw.execute("PRAGMA quick_check").fetchall() != [("ok",)]
    with pytest.raises(JournalDamaged, match="SQLite's integrity check failed") as caught:
        TaskJournal(db_path)
    assert str(db_path) in str(caught.value) and "Move the file aside" in str(caught.value)


def test_a_write_ahead_log_without_its_journal_is_refused(db_path: Path) -> None:
    """SQLite would replay an earlier journal's log into a new file at the same path."""
    _journal_with_rows(db_path, rows=3)
    raw = sqlite3.connect(db_path, isolation_level=None)
    raw.execute("PRAGMA wal_autocheckpoint = 0")
    raw.execute("DELETE FROM tasks")
    wal = db_path.with_name(db_path.name + "-wal")
    kept = wal.read_bytes()  # a log with committed frames, as a crash leaves it
    raw.close()
    assert kept
    db_path.unlink()
    wal.write_bytes(kept)
    with pytest.raises(JournalDamaged, match="the write-ahead log of an earlier one"):
        TaskJournal(db_path)
    assert not db_path.exists()
    wal.rename(wal.with_name("journal.sqlite3-wal.old"))  # moved aside: a new journal starts
    TaskJournal(db_path).close()


def test_a_new_journal_never_appears_empty_even_to_racing_openers(tmp_path: Path) -> None:
    """A new journal is created whole (header first, then linked into place): many openers racing
    to create it all get the one journal, and none finds an empty file to refuse."""
    path = tmp_path / "data" / "journal.sqlite3"
    path.parent.mkdir()
    opened: list[TaskJournal] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def open_it() -> None:
        start.wait()
        try:
            opened.append(TaskJournal(path))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert failures == [] and len(opened) == 8
        opened[0].record_intent(idempotency_key="one", model="m", mode="generate", prompt="p", params=PARAMS)
        assert all(journal.find_by_idempotency_key("one") is not None for journal in opened)
    finally:
        for journal in opened:
            journal.close()
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith("journal.sqlite3")) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_reopen_without_close_sees_everything(location: str) -> None:
    first = open_journal(location)  # deliberately never closed until the end: a "crashed" writer
    created(first, "k1", "task_1")
    intent(first, "k2")
    second = open_journal(location)
    try:
        assert [e.idempotency_key for e in second.unsubmitted()] == ["k2"]
        assert [e.task_id for e in second.unfinished()] == ["task_1"]
    finally:
        second.close()
        first.close()


def test_survives_a_killed_process(location: str) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from rivya_mcp.journal import open_journal
        journal = open_journal({location!r})
        journal.record_intent(idempotency_key="k1", model="m", mode="generate", prompt="p", params={{}},
                              reference=None)
        journal.attach_task("k1", task_id="task_1", status="processing")
        journal.record_intent(idempotency_key="k2", model="m", mode="generate", prompt="q", params={{}},
                              reference=None)
        os._exit(9)  # no close, no atexit, no flush: as if killed mid-wait
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, check=False)
    assert result.returncode == 9, result.stderr.decode()
    with open_journal(location) as journal:
        assert [e.task_id for e in journal.unfinished()] == ["task_1"]
        assert [e.idempotency_key for e in journal.unsubmitted()] == ["k2"]


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(n: int) -> None:
        try:
            target(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


def test_concurrent_writes_share_one_journal(journal: TaskJournal) -> None:
    def work(n: int) -> None:
        for i in range(25):
            created(journal, f"t{n}-{i}", f"task_{n}_{i}")
            journal.update(f"task_{n}_{i}", status="succeeded", saved_path=f"/out/{n}-{i}.png")

    run_threads(8, work)
    entries = journal.list(limit=1000)
    assert len(entries) == 200 and all(e.status == "succeeded" for e in entries)
    assert journal.unfinished() == []


def test_concurrent_writes_from_separate_connections(location: str) -> None:
    open_journal(location).close()  # create the schema once

    def work(n: int) -> None:
        with open_journal(location) as own:
            for i in range(20):
                created(own, f"c{n}-{i}", f"task_c{n}_{i}")

    run_threads(4, work)
    with open_journal(location) as journal:
        assert len(journal.list(limit=1000)) == 80


def test_one_key_recorded_by_two_writers_at_once_is_one_entry(location: str) -> None:
    """Two replicas (or processes) recording the same key race; one entry, both get it back."""
    open_journal(location).close()
    barrier = threading.Barrier(4)
    seen: list[JournalEntry] = []

    def work(_: int) -> None:
        with open_journal(location) as own:
            barrier.wait()
            seen.append(intent(own, "shared-key"))

    run_threads(4, work)
    assert len(seen) == 4 and len({e.created_at for e in seen}) == 1
    with open_journal(location) as journal:
        assert [e.idempotency_key for e in journal.list()] == ["shared-key"]


@pytest.mark.anyio
@pytest.mark.leaks_api_key_on_purpose  # the sandbox logs the fault rule that echoes the key; files are still scanned
@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_the_api_key_never_reaches_the_journals_files(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """The server that writes the journal holds the key, and the API echoes it in an error.

    The journal itself is never handed the key; the server around it is, so the test drives the
    real server (MCP client → tools → client → sandbox over loopback) with a key, including a
    refusal whose message echoes it (as an API may: "invalid key rvya_sk_…"), and then reads every
    file in the data folder: no key, and no plain hash of it either.
    With the shared database, every value of every table the server wrote is read the same way.
    """
    import hashlib

    import httpx2
    from mcp import Client

    from rivya_mcp.sandbox import SandboxConfig, start_sandbox
    from rivya_mcp.server import build_server
    from rivya_mcp.settings import Secret

    key = "rvya_sk_journal_FAKE0123456789abcdefSECRET"
    hidden = [key.encode()] + [
        hashlib.new(name, key.encode()).hexdigest().encode() for name in ("sha256", "sha1", "md5")
    ]
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.2)) as sandbox:
        settings = Settings(
            api_key=Secret(key),
            base_url=sandbox.base_url,
            output_dir=tmp_path / "out",
            data_dir=tmp_path / "data",
            poll_scale=0.1,
            database_url=Secret(str(request.getfixturevalue("postgres_url"))) if store == "postgres" else None,
        )
        async with Client(build_server(settings)) as client:
            done = await client.call_tool("generate_image", {"prompt": "A lighthouse", "wait_seconds": 20})
            assert not done.is_error and (done.structured_content or {}).get("status") == "succeeded"
            rule = {
                "path": "/api/v1/generations", "method": "POST", "status": 400, "code": "validation_failed",
                "message": f"prompt refused for key {key} (Bearer {key})",
            }  # fmt: skip
            httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [rule]}, timeout=5).raise_for_status()
            refused = await client.call_tool("generate_image", {"prompt": "Another lighthouse", "wait_seconds": 0})
            assert refused.is_error
            listing = await client.call_tool("list_tasks", {})
    rows = (listing.structured_content or {}).get("tasks", [])
    assert {row.get("status") for row in rows} >= {"succeeded", "rejected"}, rows  # both paths were journaled
    if store == "postgres":
        assert settings.database_url is not None
        tables = _database_text(settings.database_url.reveal())
        assert tables.get("tasks"), "the journal wrote nothing: this test would prove nothing"
        for table, data in tables.items():
            assert not [secret for secret in hidden if secret in data], table
        return
    files = [path for path in (tmp_path / "data").rglob("*") if path.is_file()]
    assert files, "the journal wrote nothing: this test would prove nothing"
    for path in files:
        data = path.read_bytes()
        assert not [secret for secret in hidden if secret in data], path


def _database_text(url: str) -> dict[str, bytes]:
    """Table → every value of every row in the URL's schema, as text (bytea as its raw bytes)."""
    import psycopg

    found: dict[str, bytes] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            found[str(table)] = b"\n".join(
                value if isinstance(value, bytes) else str(value).encode() for row in rows for value in row
            )
    return found
