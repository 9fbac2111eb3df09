"""Task leases in PostgreSQL: one holder at a time, a lapsed lease is taken over, waiters are woken by NOTIFY."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from rivya_mcp.journal import AsyncJournal, TaskJournal, open_journal
from rivya_mcp.journal.postgres import PostgresStore
from rivya_mcp.tasks import Coordinator

pytestmark = pytest.mark.anyio


@pytest.fixture
def journal(postgres_url: str) -> Iterator[TaskJournal]:
    with open_journal(postgres_url) as journal:
        yield journal


def store_of(journal: TaskJournal) -> PostgresStore:
    assert isinstance(journal.store, PostgresStore)
    return journal.store


def test_one_holder_at_a_time_and_a_lapsed_lease_is_taken_over(journal: TaskJournal) -> None:
    store = store_of(journal)
    assert store.try_lease("task:t1", "replica-a", 30) is None
    left = store.try_lease("task:t1", "replica-b", 30)
    assert left is not None and 25 < left <= 30  # b is told how long a's lease has left
    assert store.try_lease("task:t1", "replica-a", 30) is None  # a renews its own
    assert store.lease_holder("task:t1") == "replica-a"
    # a dies: its lease is not renewed. Made to lapse by the database clock, not by waiting.
    with store.write() as tx:
        tx.execute("UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = ?", ("task:t1",))
    assert store.lease_holder("task:t1") is None
    assert store.try_lease("task:t1", "replica-b", 30) is None
    assert store.lease_holder("task:t1") == "replica-b"
    store.release_lease("task:t1", "replica-a")  # a stale holder can't release b's lease
    assert store.lease_holder("task:t1") == "replica-b"
    store.release_lease("task:t1", "replica-b")
    assert store.lease_holder("task:t1") is None


async def test_a_waiter_on_another_replica_is_woken_by_notify_not_by_polling(journal: TaskJournal) -> None:
    # Two coordinators on one database: two replicas. Leases far longer than the test may take,
    # so only the NOTIFY of the release can wake the waiter in time.
    holder = Coordinator(AsyncJournal(journal), lease_seconds=120)
    waiter = Coordinator(AsyncJournal(journal), lease_seconds=120)
    tries: list[str] = []
    original = waiter.try_lease

    async def counted(name: str) -> float | None:
        tries.append(name)
        return await original(name)

    waiter.try_lease = counted  # type: ignore[method-assign]
    order: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(waiter.listen)
        with anyio.fail_after(10):
            await waiter.listening.wait()
        held = anyio.Event()
        release = anyio.Event()

        async def hold() -> None:
            async with holder.lease("task:t2") as had:
                assert had
                held.set()
                await release.wait()
                order.append("released")

        async def wait_for_it() -> None:
            await held.wait()
            async with waiter.lease("task:t2") as had:
                assert had
                order.append("taken")

        group.start_soon(hold)
        group.start_soon(wait_for_it)
        with anyio.fail_after(10):
            while not tries:
                await anyio.sleep(0.01)
        release.set()
        with anyio.fail_after(10):  # far less than the 120 s lease: woken, not timed out
            while "taken" not in order:
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert order == ["released", "taken"]
    assert tries == ["task:t2", "task:t2"]  # one failed try, one after the wake-up: no polling loop


async def test_a_lease_times_out_for_a_caller_with_a_deadline(journal: TaskJournal) -> None:
    first = Coordinator(AsyncJournal(journal), lease_seconds=120)
    second = Coordinator(AsyncJournal(journal), lease_seconds=120)
    async with first.lease("task:t3") as had:
        assert had
        async with second.lease("task:t3", timeout=0.2) as had_too:
            assert not had_too
    async with second.lease("task:t3", timeout=0) as had_now:
        assert had_now  # released on leaving the block


def test_shared_images_round_trip(journal: TaskJournal) -> None:
    store = store_of(journal)
    store.put_image("2026-01-01_task_1_fox.png", "task_1", "image/png", b"\x89PNG...")
    store.put_image("2026-01-01_task_1_fox.png", "task_1", "image/png", b"other")  # a second save: ignored
    assert store.get_image("2026-01-01_task_1_fox.png") == ("image/png", b"\x89PNG...")
    assert store.image_of_task("task_1") == ("2026-01-01_task_1_fox.png", b"\x89PNG...")
    assert store.get_image("nope.png") is None and store.count_images("task_1") == 1
