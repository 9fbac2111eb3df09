"""Runtime.following: one holder per task (a tool call or the recovery), others wait or give up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from rivya_mcp.settings import Settings
from rivya_mcp.tasks import Runtime

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return Runtime(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))


async def test_a_free_task_is_taken_at_once_and_forgotten_after(runtime: Runtime) -> None:
    async with runtime.following("task_a") as ours:
        assert ours and await runtime.is_busy("task_a")
        async with runtime.following("task_b") as other:  # another task is independent
            assert other
    assert not await runtime.is_busy("task_a")
    assert runtime._task_locks == {}


async def test_a_second_follower_waits_for_the_first(runtime: Runtime) -> None:
    order: list[str] = []

    async def second() -> None:
        async with runtime.following("task_a") as ours:
            assert ours
            order.append("second")

    async with anyio.create_task_group() as tg:
        async with runtime.following("task_a"):
            tg.start_soon(second)
            await _until(lambda: _waiting(runtime, "task_a") == 1)  # the second is queued on the lock
            order.append("first done")
    assert order == ["first done", "second"]
    assert runtime._task_locks == {}


async def test_a_follower_gives_up_after_its_timeout_and_a_cancelled_one_leaves_no_trace(runtime: Runtime) -> None:
    outcomes: list[object] = []
    scope = anyio.CancelScope()

    async def impatient() -> None:
        # A deadline already passed: no wall-clock wait, and a timeout that is ignored would hang
        # this test (the holder below lets go only after both waiters are done).
        async with runtime.following("task_a", timeout=0) as ours:
            outcomes.append(ours)

    async def cancelled() -> None:
        with scope:
            async with runtime.following("task_a"):
                outcomes.append("entered")
        outcomes.append("cancelled")

    async with runtime.following("task_a"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(impatient)
            tg.start_soon(cancelled)
            await _until(lambda: _waiting(runtime, "task_a") == 1 and outcomes == [False])
            scope.cancel()  # while it waits for the lock
    assert sorted(map(str, outcomes)) == ["False", "cancelled"]
    assert runtime._task_locks == {}
    async with runtime.following("task_a") as ours:
        assert ours


def _waiting(runtime: Runtime, task_id: str) -> int:
    lock = runtime._task_locks.get(task_id)
    return 0 if lock is None else lock.statistics().tasks_waiting


async def _until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Let other tasks run until ``condition`` holds; fail (not hang) if it does not within the bound."""
    try:
        with anyio.fail_after(within):
            while not condition():
                await anyio.sleep(0)
    except TimeoutError:
        raise AssertionError(f"the awaited state was not reached within {within:g} s") from None
