"""The journal's mcp_tasks table (schema step 3): additive migration, round trip, absorbing writes.

On both stores: a SQLite file and a real PostgreSQL server (tests/_postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rivya_mcp.journal import (
    FINGERPRINT_SECRET,
    SCHEMA_VERSION,
    account_fingerprint,
    normalise_upstream,
    open_journal,
)
from tests._journals import older_journal, store_for

T0 = datetime(2026, 7, 28, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


def _before_mcp_tasks(location: str) -> None:
    """A journal as the release before the Tasks extension left it: two schema steps, one task."""
    older_journal(location, 2, (("k1", "task_1", "queued"),))


def test_an_older_journal_gains_the_table_and_keeps_its_tasks(location: str) -> None:
    _before_mcp_tasks(location)
    with open_journal(location) as journal:
        entry = journal.get("task_1")
        assert entry is not None and entry.status == "queued"
        record = journal.record_mcp_task(
            "h1", task_id="task_1", tool="generate_image", status="working", ttl_ms=1000, created_at=T0
        )
        assert (record.task_id, record.status, record.ttl_ms, record.created_at) == ("task_1", "working", 1000, T0)
        with journal.store.read() as tx:
            assert tx.all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


def test_conditional_updates_keep_terminal_states(location: str) -> None:
    with open_journal(location) as journal:
        journal.record_mcp_task("h1", task_id="task_1", tool="edit_image", status="working", ttl_ms=None, created_at=T0)
        later = T0 + timedelta(seconds=5)
        assert journal.update_mcp_task("h1", status_message="processing", updated_at=later)
        assert journal.update_mcp_task("h1", status="cancelled", updated_at=later, only_from="working")
        # The follow-up finishing after the cancel must not move the task out of `cancelled`.
        result = {"content": [{"type": "text", "text": "done"}], "isError": False}
        assert not journal.update_mcp_task(
            "h1", status="completed", result=result, updated_at=later, only_from="working"
        )
        assert not journal.update_mcp_task("nope", status="cancelled", updated_at=later)
        record = journal.get_mcp_task("h1")
        assert record is not None
        assert (record.status, record.status_message, record.result, record.ttl_ms, record.updated_at) == (
            "cancelled",
            "processing",
            None,
            None,
            later,
        )
        assert journal.get_mcp_task("nope") is None


def test_a_finished_handle_keeps_its_result(location: str) -> None:
    with open_journal(location) as journal:
        journal.record_mcp_task("h2", task_id="task_2", tool="get_task", status="working", ttl_ms=500, created_at=T0)
        result = {"content": [{"type": "text", "text": "done ✓"}], "isError": False}
        assert journal.update_mcp_task("h2", status="completed", result=result, updated_at=T0, only_from="working")
        record = journal.get_mcp_task("h2")
        assert record is not None and (record.status, record.result, record.error) == ("completed", result, None)


# -- whose handle (schema step 7) ----------------------------------------------------------------

API = "http://127.0.0.1:8765"
KEY_A = "rvya_sk_" + "handle_owner_a"
KEY_B = "rvya_sk_" + "handle_owner_b"
WORKING_RESULT = {"content": [{"type": "text", "text": "done"}], "isError": False}


def test_a_handle_is_known_to_its_owner_only(location: str) -> None:
    """Two keys on one journal (one data folder, one database): B's server never sees or moves A's handle."""
    with (
        open_journal(location, upstream=API, api_key=KEY_A) as a,
        open_journal(location, upstream=API, api_key=KEY_B) as b,
        open_journal(location, upstream="https://rivya.ai", api_key=KEY_A) as elsewhere,
        open_journal(location) as inspector,
    ):
        a.record_intent(idempotency_key="ka", model="m", mode="generate", prompt="p", params={})
        a.attach_task("ka", task_id="task_a", status="queued")
        a.record_mcp_task("ha", task_id="task_a", tool="generate_image", status="working", ttl_ms=None, created_at=T0)
        later = T0 + timedelta(seconds=1)

        for other in (b, elsewhere):
            assert other.get_mcp_task("ha") is None
            # Neither a cancel, nor a failed follow-up, nor a result reaches A's handle.
            assert not other.update_mcp_task("ha", status="cancelled", updated_at=later, only_from="working")
            assert not other.update_mcp_task("ha", status="failed", error={"code": -32603}, updated_at=later)
            assert not other.update_mcp_task("ha", status="completed", result=WORKING_RESULT, updated_at=later)
            assert not other.update_mcp_task("ha", status_message="stolen", updated_at=later)

        mine = a.get_mcp_task("ha")
        assert mine is not None
        assert (mine.status, mine.status_message, mine.error, mine.updated_at) == ("working", None, None, T0)
        # The owner itself still moves it; an unscoped journal (inspection) sees every handle.
        assert a.update_mcp_task("ha", status="completed", result=WORKING_RESULT, updated_at=later, only_from="working")
        seen = inspector.get_mcp_task("ha")
        assert seen is not None and seen.status == "completed"
        b.record_mcp_task("hb", task_id="task_b", tool="edit_image", status="working", ttl_ms=None, created_at=T0)
        assert a.get_mcp_task("hb") is None and b.get_mcp_task("hb") is not None
        with a.store.read() as tx:
            owners = dict(tx.all("SELECT mcp_task_id, account FROM mcp_tasks"))
        assert owners == {"ha": a.owner.account if a.owner else None, "hb": b.owner.account if b.owner else None}
        assert KEY_A not in repr(owners) and KEY_B not in repr(owners)


def test_handles_recorded_before_step_7_take_their_tasks_owner(location: str) -> None:
    """An older journal's handles are its tasks' owner's after the migration; one without its task is nobody's."""
    older_journal(location, 6)  # the release before handles had owners
    store = store_for(location)
    try:
        with store.write() as tx:
            row = tx.one("SELECT value FROM meta WHERE name = ?", (FINGERPRINT_SECRET,))
            assert row is not None
            owner = (normalise_upstream(API), account_fingerprint(bytes.fromhex(str(row[0])), KEY_A))
            tx.execute(
                "INSERT INTO tasks (idempotency_key, task_id, model, mode, prompt, params, status, created_at, "
                "updated_at, upstream, account) "
                "VALUES ('k1', 'task_1', 'm', 'generate', 'p', '{}', 'queued', ?, ?, ?, ?)",
                (T0.isoformat(), T0.isoformat(), *owner),
            )
            for handle, task in (("h1", "task_1"), ("h0", "task_gone")):
                tx.execute(
                    "INSERT INTO mcp_tasks (mcp_task_id, task_id, tool, status, created_at, updated_at) "
                    "VALUES (?, ?, 'generate_image', 'working', ?, ?)",
                    (handle, task, T0.isoformat(), T0.isoformat()),
                )
    finally:
        store.close()
    with (
        open_journal(location, upstream=API, api_key=KEY_A) as a,
        open_journal(location, upstream=API, api_key=KEY_B) as b,
    ):
        assert a.get_mcp_task("h1") is not None
        assert b.get_mcp_task("h1") is None
        assert a.get_mcp_task("h0") is None and b.get_mcp_task("h0") is None  # no known owner: nobody's
        with a.store.read() as tx:
            assert tx.all("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
