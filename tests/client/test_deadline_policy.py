"""The retry policy under a deadline, and a 409 to a key already sent: pure tables, then the request
loop on a fake clock (every sleep and every attempt's timeout is checked against the deadline)."""

from __future__ import annotations

import random
from typing import Any

import httpx2
import pytest

from rivya_mcp.client import (
    MAX_RETRY_AFTER,
    CreateNotSettledError,
    DeadlineExceededError,
    IdempotencyConflictError,
    RateLimitError,
    RetryStep,
    conflict_is_unsettled,
    plan_retry,
)

from .conftest import ClientFactory, FakeTime, error_body, task_body

# --- conflict_is_unsettled -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "attempt", "key_sent_before", "unsettled"),
    [
        ("idempotency_conflict", 1, False, False),  # a fresh key's first answer: a different body
        ("idempotency_conflict", 2, False, True),  # our own retry: the body is the same, so in flight
        ("idempotency_conflict", 5, False, True),
        ("idempotency_conflict", 1, True, True),  # the caller sent this key with this body before
        ("rate_limited", 2, True, False),
        ("validation_failed", 1, True, False),
        (None, 3, True, False),
    ],
)
def test_conflict_is_unsettled(code: str | None, attempt: int, key_sent_before: bool, unsettled: bool) -> None:
    assert conflict_is_unsettled(code=code, attempt=attempt, key_sent_before=key_sent_before) is unsettled


# --- plan_retry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # Not retryable, or out of retries: give up, whatever the time.
        ({"retryable": False}, RetryStep("give_up")),
        ({"retries_taken": 4, "retry_budget": 4}, RetryStep("give_up")),
        # No deadline: as before (Retry-After obeyed up to the cap, backoff otherwise).
        ({}, RetryStep("retry", 0.5)),
        ({"retry_after": 2.0}, RetryStep("retry", 2.0)),
        ({"retry_after": MAX_RETRY_AFTER + 1}, RetryStep("give_up", MAX_RETRY_AFTER + 1)),
        ({"retry_after": 0.0}, RetryStep("retry", 0.5)),  # no advice: backoff
        ({"retry_after": -3.0}, RetryStep("retry", 0.5)),  # a date in the past: backoff
        # A deadline: a wait that ends at or past it is out of time now, never cut short.
        ({"retry_after": 30.0, "remaining": 5.5}, RetryStep("out_of_time", 30.0)),
        ({"retry_after": 5.5, "remaining": 5.5}, RetryStep("out_of_time", 5.5)),
        ({"retry_after": 5.0, "remaining": 5.5}, RetryStep("retry", 5.0)),
        ({"backoff": 4.0, "remaining": 3.0}, RetryStep("out_of_time", 4.0)),
        ({"backoff": 4.0, "remaining": 4.5}, RetryStep("retry", 4.0)),
        ({"remaining": 0.0}, RetryStep("out_of_time", 0.5)),
        # Within a deadline the cap still holds; the deadline is checked first.
        ({"retry_after": 40.0, "remaining": 100.0}, RetryStep("give_up", 40.0)),
        ({"retry_after": 40.0, "remaining": 10.0}, RetryStep("out_of_time", 40.0)),
        # No budget (not settled yet, with a deadline): as many retries as the time allows.
        ({"retries_taken": 50, "retry_budget": None, "backoff": 8.0, "remaining": 9.0}, RetryStep("retry", 8.0)),
        ({"retries_taken": 50, "retry_budget": None, "backoff": 8.0, "remaining": 7.0}, RetryStep("out_of_time", 8.0)),
    ],
)
def test_plan_retry(case: dict[str, Any], expected: RetryStep) -> None:
    arguments: dict[str, Any] = {
        "retryable": True,
        "retries_taken": 0,
        "retry_budget": 4,
        "retry_after": None,
        "backoff": 0.5,
        "remaining": None,
    }
    assert plan_retry(**(arguments | case)) == expected


# --- the request loop on a fake clock ----------------------------------------------------------


def _answers(*responses: httpx2.Response) -> Any:
    queue = list(responses)
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return queue.pop(0) if len(queue) > 1 else queue[0]

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def _conflict() -> httpx2.Response:
    return httpx2.Response(409, json=error_body("idempotency_conflict", "Still being processed."))


@pytest.mark.anyio
async def test_409_on_a_retry_is_retried_under_the_same_key_until_settled(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    handler = _answers(
        httpx2.Response(503, json=error_body("internal_error")),
        _conflict(),
        _conflict(),
        httpx2.Response(200, json=task_body()),
    )
    task = await make_client(handler).create_generation(model="m", prompt="p", idempotency_key="k-1", timeout=20)
    assert task.id == "task_abc"
    keys = {request.headers["idempotency-key"] for request in handler.seen}
    assert keys == {"k-1"} and len(handler.seen) == 4


@pytest.mark.anyio
async def test_409_on_a_retry_past_the_deadline_is_not_settled_never_a_conflict(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    handler = _answers(httpx2.Response(502, text="bad gateway"), _conflict())
    client = make_client(handler, max_retries=2)
    with pytest.raises(CreateNotSettledError) as caught:
        await client.create_generation(model="m", prompt="p", idempotency_key="k-2", timeout=12)
    error = caught.value
    assert error.idempotency_key == "k-2" and error.retryable
    assert not isinstance(error, IdempotencyConflictError)
    assert "new" not in str(error).lower().replace("renew", "")
    assert fake_time.now < 12
    # The deadline, not max_retries, bounded the 409s: more tries than 1 + 2.
    assert len(handler.seen) > 3


@pytest.mark.anyio
async def test_409_on_a_retry_without_a_deadline_stops_at_the_retry_budget(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    handler = _answers(httpx2.Response(502, text="bad gateway"), _conflict())
    with pytest.raises(CreateNotSettledError) as caught:
        await make_client(handler, max_retries=3).create_generation(model="m", prompt="p", idempotency_key="k-3")
    assert len(handler.seen) == 4 and "still being processed" in str(caught.value)


@pytest.mark.anyio
async def test_a_first_attempt_409_is_a_conflict_unless_the_key_was_sent_before(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    with pytest.raises(IdempotencyConflictError):
        await make_client(_answers(_conflict())).create_generation(model="m", idempotency_key="k-4", timeout=30)
    handler = _answers(_conflict(), httpx2.Response(200, json=task_body()))
    task = await make_client(handler).create_generation(
        model="m", idempotency_key="k-4", key_sent_before=True, timeout=30
    )
    assert task.id == "task_abc" and len(handler.seen) == 2


@pytest.mark.anyio
async def test_key_sent_before_needs_a_key() -> None:
    from rivya_mcp.client import AsyncRivyaClient

    with pytest.raises(ValueError, match="key_sent_before"):
        await AsyncRivyaClient("rvya_sk_x").create_generation(model="m", key_sent_before=True)


@pytest.mark.anyio
async def test_retry_after_longer_than_the_time_left_ends_the_call_now(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    limited = httpx2.Response(429, json=error_body("rate_limited"), headers={"Retry-After": "30"})
    handler = _answers(limited)
    with pytest.raises(DeadlineExceededError) as caught:
        await make_client(handler).get_generation("task_abc", timeout=8)
    assert fake_time.sleeps == [] and len(handler.seen) == 1  # no sleep that could not help
    assert isinstance(caught.value.last_error, RateLimitError) and caught.value.retry_after == 30
    assert "30.0 s (Retry-After) but only 8.0 s were left" in str(caught.value)
    # Without a deadline the same answer is, as before, given up on at the cap's edge (30 s is within).
    fake_time.sleeps.clear()
    handler = _answers(limited, httpx2.Response(200, json=task_body()))
    assert (await make_client(handler).get_generation("task_abc")).id == "task_abc"
    assert fake_time.sleeps == [30.0]


@pytest.mark.anyio
async def test_every_attempt_is_given_only_the_time_left(make_client: ClientFactory, fake_time: FakeTime) -> None:
    timeouts: list[float] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        return httpx2.Response(503, json=error_body("public_api_disabled"))

    client = make_client(handler, timeout=30.0, rng=random.Random(1))
    with pytest.raises(DeadlineExceededError):
        await client.get_credits(timeout=3.0)
    assert timeouts[0] == pytest.approx(3.0)
    assert all(t <= 3.0 for t in timeouts) and timeouts == sorted(timeouts, reverse=True)
    assert fake_time.now < 3.0


@pytest.mark.anyio
async def test_an_absolute_deadline_and_a_timeout_take_the_earlier(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    fake_time.now = 100.0
    handler = _answers(httpx2.Response(429, json=error_body("rate_limited"), headers={"Retry-After": "5"}))
    with pytest.raises(DeadlineExceededError):
        await make_client(handler).get_credits(deadline=104.0, timeout=60)
    with pytest.raises(DeadlineExceededError):
        await make_client(handler).get_credits(deadline=160.0, timeout=4)
    assert fake_time.sleeps == []


@pytest.mark.anyio
async def test_a_deadline_already_past_sends_nothing(make_client: ClientFactory, fake_time: FakeTime) -> None:
    handler = _answers(httpx2.Response(200, json=task_body()))
    with pytest.raises(DeadlineExceededError, match="Nothing was sent"):
        await make_client(handler).create_generation(model="m", idempotency_key="k-5", deadline=-1.0)
    assert handler.seen == []


@pytest.mark.anyio
async def test_a_wait_under_retry_after_30_returns_the_last_seen_task_by_its_deadline(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    polls = 0

    def handler(request: httpx2.Request) -> httpx2.Response:
        nonlocal polls
        polls += 1
        if polls == 1:
            return httpx2.Response(200, json=task_body(status="processing"))
        return httpx2.Response(429, json=error_body("rate_limited"), headers={"Retry-After": "30"})

    result = await make_client(handler).wait_for_generation("task_abc", timeout=8)
    assert result.status == "processing"
    assert fake_time.now <= 8.0 and max(fake_time.sleeps) < 8.0


@pytest.mark.anyio
async def test_a_download_is_bounded_by_its_deadline(make_client: ClientFactory, fake_time: FakeTime) -> None:
    handler = _answers(httpx2.Response(503, headers={"Retry-After": "20"}))
    with pytest.raises(DeadlineExceededError):
        await make_client(handler).download("https://cdn.example/x.png", max_bytes=100, timeout=10)
    assert fake_time.sleeps == []
