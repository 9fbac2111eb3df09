"""One history per person in the journal: the person column, scoped views, budgets, spend and usage.

Every test that takes ``location`` runs on a SQLite file and on a real PostgreSQL server, as the
other journal tests do: the rules are the journal's, written once for both stores.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rivya_mcp.journal import (
    ABANDONED,
    IDENTITY_STEP,
    MIGRATIONS,
    REJECTED,
    SPENT_SQL,
    UNCONFIRMED,
    UNSUBMITTED,
    BudgetExceeded,
    IdempotencyKeyReused,
    TaskJournal,
    UsageRow,
    credits_spent,
    day_start,
    open_journal,
)
from tests._journals import older_journal, store_for

UPSTREAM = "http://127.0.0.1:8765"
OPERATOR = "rvya_sk_operator_0123456789"
ADA = "oauth:https://idp.example#ada"
BOB = "oauth:https://idp.example#bob"
PARAMS = {"aspectRatio": "1:1"}


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "journal.sqlite3")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 5, 11, 9, 0, tzinfo=UTC))


@pytest.fixture
def root(location: str, clock: Clock) -> Iterator[TaskJournal]:
    """The operator's journal (scoped to the upstream and the operator's key), as a server opens it."""
    with open_journal(location, now=clock, upstream=UPSTREAM, api_key=OPERATOR) as journal:
        yield journal


def _view(root: TaskJournal, person: str | None, key: str = OPERATOR) -> TaskJournal:
    return root.scoped(upstream=UPSTREAM, api_key=key, person=person)


def _intent(journal: TaskJournal, key: str, **overrides: Any) -> None:
    fields: dict[str, Any] = {"idempotency_key": key, "model": "flux-kontext-max", "mode": "generate",
                              "prompt": f"prompt of {key}", "params": PARAMS, "cost": 8}  # fmt: skip
    journal.record_intent(**(fields | overrides))


def test_a_person_sees_only_their_own_rows_handles_and_files(root: TaskJournal, clock: Clock) -> None:
    ada, bob = _view(root, ADA), _view(root, BOB)
    _intent(ada, "ada-1")
    ada.attach_task("ada-1", task_id="task_ada", status="queued", reserved_credits=8)
    ada.update("task_ada", status="succeeded", result_urls=["https://r/x.jpg"], saved_path="/out/2026_task_ada_x.jpg")
    _intent(root, "server-1")
    ada.record_mcp_task("handle-ada", task_id="task_ada", tool="generate_image", status="working", ttl_ms=None,
                        created_at=clock())  # fmt: skip
    ada.record_file("file-ada", kind="image", name="a.png", mime_type="image/png", size=3)

    assert ada.get("task_ada") is not None and bob.get("task_ada") is None and root.get("task_ada") is None
    assert bob.find_by_idempotency_key("ada-1") is None and ada.find_by_idempotency_key("ada-1") is not None
    assert [e.idempotency_key for e in ada.list()] == ["ada-1"]
    assert bob.list() == [] and [e.idempotency_key for e in root.list()] == ["server-1"]
    assert ada.get_mcp_task("handle-ada") is not None
    assert bob.get_mcp_task("handle-ada") is None and root.get_mcp_task("handle-ada") is None
    assert ada.has_file("file-ada") and not bob.has_file("file-ada")
    assert ada.may_serve_image("2026_task_ada_x.jpg")
    assert not bob.may_serve_image("2026_task_ada_x.jpg")
    assert not root.may_serve_image("2026_task_ada_x.jpg")  # the server's person: not a person's image
    assert root.may_serve_image("2026_an_older_image.jpg")  # nobody's on record: the server's folder
    assert not bob.may_serve_image("2026_an_older_image.jpg")
    assert not ada.may_serve_image("2026_task_ada_x_jpg")  # LIKE's wildcards are literal here
    with pytest.raises(KeyError):
        bob.update("task_ada", status="failed")
    assert not bob.update_mcp_task("handle-ada", status="cancelled", updated_at=clock())
    assert ada.get_mcp_task("handle-ada").status == "working"  # type: ignore[union-attr]
    with pytest.raises(IdempotencyKeyReused):
        _intent(bob, "ada-1")  # the key names Ada's request: never shared, never shown
    entry = root.row_of("task_ada")
    assert entry is not None and entry.person == ADA  # the server's own bookkeeping sees whose it is


def test_an_unscoped_journal_sees_every_person(location: str, root: TaskJournal) -> None:
    _intent(_view(root, ADA), "ada-1")
    _intent(_view(root, BOB), "bob-1")
    with open_journal(location) as everything:
        assert {e.idempotency_key for e in everything.list()} == {"ada-1", "bob-1"}


def test_rows_record_the_person_and_the_cost(root: TaskJournal) -> None:
    _intent(_view(root, ADA), "ada-1", cost=16)
    entry = _view(root, ADA).find_by_idempotency_key("ada-1")
    assert entry is not None and entry.person == ADA and entry.cost == 16
    assert entry.account == root.owner[1]  # type: ignore[index]  # the operator's key: issuer mode


def test_a_person_with_their_own_key_is_their_own_account(root: TaskJournal) -> None:
    own = _view(root, "rivya:" + "a" * 32, key="rvya_sk_ada_own_key")
    _intent(own, "own-1")
    entry = own.find_by_idempotency_key("own-1")
    assert entry is not None and entry.account == root.account_of("rvya_sk_ada_own_key") != root.owner[1]  # type: ignore[index]
    # The same person id under another key sees nothing: rows are (upstream, account, person).
    assert _view(root, "rivya:" + "a" * 32).find_by_idempotency_key("own-1") is None


# --- what a row counts against a budget ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "final", "reserved", "cost", "spent"),
    [
        (UNSUBMITTED, None, None, 8, 8.0),  # in flight: counted from the moment it is recorded
        (UNCONFIRMED, None, None, 8, 8.0),  # may have been charged
        (REJECTED, None, None, 8, 0.0),  # refused: nothing charged
        (ABANDONED, None, None, 8, 0.0),  # never re-sent
        ("queued", None, 8, 8, 8.0),
        ("processing", None, 12, 8, 12.0),  # the API's reserved credits win over the estimate
        ("succeeded", 6, 8, 8, 6.0),  # settled: what was finally charged
        ("succeeded", None, 8, None, 8.0),
        ("failed", 0, 8, 8, 0.0),  # refunded (rivya-api §3.3 shows final_credits 0)
        ("failed", None, 8, 8, 0.0),
        (UNSUBMITTED, None, None, None, 0.0),  # recorded before rows kept a cost
    ],
)
def test_credits_spent_and_its_sql_agree(
    status: str, final: float | None, reserved: float | None, cost: float | None, spent: float, tmp_path: Path
) -> None:
    assert credits_spent(status=status, final=final, reserved=reserved, cost=cost) == spent
    store = store_for(str(tmp_path / "j.sqlite3"))
    try:
        store.migrate(MIGRATIONS)
        with store.write() as tx:
            tx.execute(
                "INSERT INTO tasks (idempotency_key, model, mode, params, status, final_credits, reserved_credits, "
                "cost, created_at, updated_at) VALUES ('k', 'm', 'generate', '{}', ?, ?, ?, ?, 'a', 'a')",
                (status, final, reserved, cost),
            )
            row = tx.one(f"SELECT {SPENT_SQL} FROM tasks")
        assert row is not None and float(row[0]) == spent
    finally:
        store.close()


def test_the_budget_refuses_a_create_that_would_pass_it(root: TaskJournal, clock: Clock) -> None:
    ada = _view(root, ADA)
    _intent(ada, "a1", budget=20)
    _intent(ada, "a2", budget=20)
    with pytest.raises(BudgetExceeded) as refused:
        _intent(ada, "a3", budget=20)
    assert (refused.value.limit, refused.value.spent, refused.value.cost, refused.value.left) == (20, 16, 8, 4)
    assert refused.value.resets_at == datetime(2026, 5, 12, tzinfo=UTC)
    assert ada.find_by_idempotency_key("a3") is None  # refused before it was recorded
    _intent(_view(root, BOB), "b1", budget=20)  # another person's budget is their own
    _intent(ada, "a-again", budget=20, cost=4)  # what is left still fits
    assert ada.spent_today() == (20.0, datetime(2026, 5, 12, tzinfo=UTC))
    ada.check_budget(0, 20)
    with pytest.raises(BudgetExceeded):
        ada.check_budget(1, 20)


def test_a_refused_create_frees_its_credits_and_a_revived_one_is_checked_again(root: TaskJournal) -> None:
    ada = _view(root, ADA)
    _intent(ada, "a1", budget=8)
    ada.reject_intent("a1", error_code="insufficient_credits", error_message="no credits")
    _intent(ada, "a2", budget=8)  # the refused one counts nothing
    with pytest.raises(BudgetExceeded):
        _intent(ada, "a1", budget=8)  # re-sending it would spend again: checked like a new one
    assert ada.find_by_idempotency_key("a1").status == REJECTED  # type: ignore[union-attr]
    _intent(ada, "a2", budget=8)  # recording the same intent again adds nothing


def test_yesterdays_spend_does_not_count_today(root: TaskJournal, clock: Clock) -> None:
    ada = _view(root, ADA)
    _intent(ada, "yesterday", budget=8)
    clock.moment += timedelta(days=1)
    clock.moment = day_start(clock.moment)  # 00:00:00 UTC exactly: the new day
    _intent(ada, "today", budget=8)
    assert ada.spent_today()[0] == 8


def test_racing_creates_never_pass_the_budget_together(location: str, clock: Clock) -> None:
    """Eight threads on four journal handles (four processes' worth of connections) race for a
    budget of three creates: exactly three are recorded."""
    journals = [open_journal(location, now=clock, upstream=UPSTREAM, api_key=OPERATOR) for _ in range(4)]
    passed: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(8)

    def create(journal: TaskJournal, key: str) -> None:
        start.wait()
        try:
            _intent(_view(journal, ADA), key, budget=24)
            passed.append(key)
        except BudgetExceeded:
            refused.append(key)

    try:
        threads = [threading.Thread(target=create, args=(journals[n % 4], f"k{n}")) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(passed) == 3 and len(refused) == 5
        assert len(_view(journals[0], ADA).list(limit=100)) == 3
    finally:
        for journal in journals:
            journal.close()


# --- the operator's view --------------------------------------------------------------------------


def test_usage_per_person_and_day(root: TaskJournal, clock: Clock) -> None:
    ada, bob = _view(root, ADA), _view(root, BOB)
    _intent(ada, "a1")
    ada.attach_task("a1", task_id="t1", status="queued", reserved_credits=8)
    _intent(root, "s1")  # the server's own person
    clock.moment += timedelta(days=1)
    _intent(ada, "a2")
    ada.attach_task("a2", task_id="t2", status="queued", reserved_credits=8)
    ada.update("t2", status="failed", final_credits=0, error_code="generation_failed")
    _intent(bob, "b1")
    rows = root.usage(since=datetime(2026, 5, 11, tzinfo=UTC))
    assert rows == [  # newest day first; in a day the server's own first, then people by id
        UsageRow("2026-05-12", ADA, 1, 0.0),
        UsageRow("2026-05-12", BOB, 0, 8.0),
        UsageRow("2026-05-11", None, 0, 8.0),
        UsageRow("2026-05-11", ADA, 1, 8.0),
    ]
    assert root.usage(since=datetime(2026, 5, 12, tzinfo=UTC)) == rows[:2]


def test_pending_owners_name_each_person_with_work(root: TaskJournal) -> None:
    _intent(_view(root, ADA), "a1")
    _intent(_view(root, ADA), "a2")
    _intent(_view(root, BOB, key="rvya_sk_bob_own"), "b1")
    _intent(root, "s1")
    owners = {(account == root.owner[1], person): rows for _, account, person, rows in root.pending_owners()}  # type: ignore[index]
    assert owners == {(True, ADA): 2, (False, BOB): 1, (True, None): 1}


def test_a_version_6_journal_migrates_with_no_person_and_the_sign_in_tables(location: str) -> None:
    older_journal(location, 6, (("old-1", "task_old", "succeeded"),))
    with open_journal(location) as journal:
        entry = journal.get("task_old")
        assert entry is not None and entry.person is None and entry.cost is None
    store = store_for(location)
    try:
        with store.read() as tx:
            assert tx.one("SELECT version FROM schema_version") == (len(MIGRATIONS),)
            assert tx.all("SELECT * FROM identity_people") == []
    finally:
        store.close()
    assert any(step is IDENTITY_STEP for step in MIGRATIONS)  # rivya-login's tables are one of the steps
