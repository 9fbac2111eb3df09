"""The poll schedule (a pure function) and ``wait_for_generation`` driven by it."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from rivya_mcp.client import (
    FIRST_POLL_DELAY,
    LONG_WAIT_SECONDS,
    MAX_LONG_POLL_INTERVAL,
    MAX_POLL_INTERVAL,
    MIN_POLL_INTERVAL,
    Generation,
    NotFoundError,
    PollInfo,
    ServiceUnavailableError,
    poll_delay,
)

from .conftest import ClientFactory, FakeTime, error_body, task_body


@pytest.mark.parametrize(
    ("polls", "elapsed", "expected"),
    [
        (0, 0.0, FIRST_POLL_DELAY),
        (0, 50.0, FIRST_POLL_DELAY),  # the first look is always after the same pause
        (1, 2.5, MIN_POLL_INTERVAL),  # never sooner than 5 s apart
        (3, 20.0, MIN_POLL_INTERVAL),
        (6, 33.3, MIN_POLL_INTERVAL),
        (7, 40.0, 6.0),  # then 15% of the task's age
        (9, 60.0, 9.0),
        (10, 66.7, MAX_POLL_INTERVAL),
        (30, 299.0, MAX_POLL_INTERVAL),
        (31, LONG_WAIT_SECONDS, MAX_POLL_INTERVAL),  # long waits: the age over 30, 10 s and beyond
        (40, 450.0, 15.0),
        (60, 900.0, MAX_LONG_POLL_INTERVAL),
        (90, 3600.0, MAX_LONG_POLL_INTERVAL),
        (1, -1.0, MIN_POLL_INTERVAL),  # a clock that went back is not a reason to hurry
    ],
)
def test_poll_delay_schedule(polls: int, elapsed: float, expected: float) -> None:
    assert poll_delay(polls, elapsed) == pytest.approx(expected)


def test_the_documented_pace_holds_at_every_age() -> None:
    """rivya-api §3.4: first look 2-3 s after the create, then 5-10 s apart, slower over time."""
    assert 2.0 <= FIRST_POLL_DELAY <= 3.0
    previous = 0.0
    for tenth in range(36_000):
        interval = poll_delay(1, tenth / 10)
        assert interval >= MIN_POLL_INTERVAL >= 5.0
        assert interval >= previous  # never faster as the task ages
        previous = interval
    assert poll_delay(1, 60.0) <= MAX_POLL_INTERVAL <= 10.0


def _simulate(job_seconds: float, latency: float) -> list[float]:
    """Poll a job that finishes at ``job_seconds``; returns the poll start times."""
    now, polls, starts = 0.0, 0, []
    while True:
        now += poll_delay(polls, now)
        starts.append(now)
        polls += 1
        now += latency
        if now - latency >= job_seconds:
            return starts


def test_polls_per_task_stay_few() -> None:
    assert len(_simulate(3.0, 0.0)) == 2  # 2.5 s, then 7.5 s
    assert len(_simulate(30.0, 0.2)) == 7
    assert len(_simulate(600.0, 0.0)) < 60  # ~30 polls in the first 5 minutes, then 10-20 s apart


def _status_server(statuses: list[str], seen: list[str] | None = None) -> object:
    remaining = list(statuses)

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.method == "GET"
        if seen is not None:
            seen.append(request.url.path)
        status = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        extra: dict[str, Any] = {}
        if status == "succeeded":
            extra = {
                "final_credits": 8,
                "result": {"primary_url": "https://cdn.test/r.png", "urls": ["https://cdn.test/r.png"]},
            }
        return httpx2.Response(200, json=task_body(status=status, **extra))

    return handler


@pytest.mark.anyio
async def test_wait_reports_every_poll_and_returns_the_terminal_task(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    seen: list[str] = []
    client = make_client(_status_server(["queued", "queued", "processing", "succeeded"], seen))
    updates: list[tuple[str, PollInfo]] = []

    async def on_update(generation: Generation, info: PollInfo) -> None:
        updates.append((generation.status, info))

    result = await client.wait_for_generation("task_abc", timeout=45, on_update=on_update)

    assert result.status == "succeeded" and result.is_terminal
    assert result.result is not None and result.result.primary_url == "https://cdn.test/r.png"
    assert fake_time.sleeps == [2.5, 5.0, 5.0, 5.0]
    assert seen == ["/api/v1/generations/task_abc"] * 4
    assert [(status, info.polls, info.changed) for status, info in updates] == [
        ("queued", 1, True),
        ("queued", 2, False),
        ("processing", 3, True),
        ("succeeded", 4, True),
    ]
    assert [info.elapsed for _, info in updates] == pytest.approx([2.5, 7.5, 12.5, 17.5])


@pytest.mark.anyio
async def test_wait_cuts_the_last_sleep_to_the_deadline_and_polls_there(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(_status_server(["processing"]))
    polls: list[float] = []

    async def on_update(generation: Generation, info: PollInfo) -> None:
        polls.append(info.elapsed)

    result = await client.wait_for_generation("task_abc", timeout=9.0, on_update=on_update)

    assert result.status == "processing"  # time ran out: the last seen task, not an error
    assert fake_time.sleeps == pytest.approx([2.5, 5.0, 1.5])
    assert polls == pytest.approx([2.5, 7.5, 9.0])


@pytest.mark.anyio
async def test_wait_with_no_time_left_polls_once_without_sleeping(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(_status_server(["queued"]))
    result = await client.wait_for_generation("task_abc", timeout=0)
    assert result.status == "queued"
    assert fake_time.sleeps == []


@pytest.mark.anyio
async def test_poll_scale_multiplies_every_delay(make_client: ClientFactory, fake_time: FakeTime) -> None:
    client = make_client(_status_server(["queued", "processing", "succeeded"]), poll_scale=0.01)
    result = await client.wait_for_generation("task_abc", timeout=None)
    assert result.status == "succeeded"
    assert fake_time.sleeps == pytest.approx([0.025, 0.05, 0.05])


@pytest.mark.anyio
async def test_a_failed_task_is_terminal(make_client: ClientFactory) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        failed = task_body(status="failed", error={"code": "generation_failed", "message": "The generation failed."})
        return httpx2.Response(200, json=failed)

    result = await make_client(handler).wait_for_generation("task_abc", timeout=30)
    assert result.status == "failed" and result.is_terminal
    assert result.error is not None and result.error.code == "generation_failed"


@pytest.mark.anyio
async def test_an_unknown_status_is_not_terminal(make_client: ClientFactory) -> None:
    client = make_client(_status_server(["paused_for_review", "succeeded"]))
    assert (await client.wait_for_generation("task_abc", timeout=30)).status == "succeeded"


@pytest.mark.anyio
async def test_a_permanent_error_during_polling_propagates_at_once(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    client = make_client(lambda request: httpx2.Response(404, json=error_body("not_found", "No such task.")))
    with pytest.raises(NotFoundError):
        await client.wait_for_generation("task_gone", timeout=30)
    assert fake_time.sleeps == [2.5]  # the first look, no retries


@pytest.mark.anyio
async def test_a_transient_error_that_outlasts_the_retries_propagates(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    calls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx2.Response(200, json=task_body(status="processing"))
        return httpx2.Response(503, json=error_body("public_api_disabled", "The Public API is disabled."))

    client = make_client(handler, max_retries=2)
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.wait_for_generation("task_abc", timeout=300)
    assert caught.value.retryable
    assert calls == 1 + 3  # one good poll, then one poll tried three times


@pytest.mark.anyio
async def test_a_transient_error_retried_to_success_does_not_disturb_the_wait(make_client: ClientFactory) -> None:
    answers = [
        httpx2.Response(200, json=task_body(status="processing")),
        httpx2.Response(502, text="<html>Bad gateway</html>"),
        httpx2.Response(200, json=task_body(status="succeeded")),
    ]
    client = make_client(lambda request: answers.pop(0))
    updates: list[int] = []

    async def on_update(generation: Generation, info: PollInfo) -> None:
        updates.append(info.polls)

    assert (await client.wait_for_generation("task_abc", timeout=30, on_update=on_update)).status == "succeeded"
    assert updates == [1, 2]  # a retried request is still one poll


def test_poll_info_is_a_plain_value() -> None:
    info = PollInfo(elapsed=1.0, polls=1, changed=True)
    assert json.loads(json.dumps(info.__dict__)) == {"elapsed": 1.0, "polls": 1, "changed": True}
