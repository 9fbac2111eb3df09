"""The Tasks extension's policy (``rivya_mcp.server.task_policy``), as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rivya_mcp.server import task_policy as policy

T0 = datetime(2026, 7, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rivya_status", "needs_finishing", "expected"),
    [
        ("queued", True, "working"),
        ("processing", True, "working"),
        ("unsubmitted", False, "working"),  # an intent whose answer is not in yet
        ("succeeded", True, "working"),  # finished upstream, image not saved yet: still ours to do
        ("succeeded", False, "completed"),  # saved: the result is the saved image
        ("failed", False, "completed"),  # moderation / upstream error: completed, result isError
        ("expired", False, "completed"),
        ("canceled", False, "completed"),
    ],
)
def test_rivya_status_to_task_status(rivya_status: str, needs_finishing: bool, expected: str) -> None:
    assert policy.status_for(rivya_status, needs_finishing=needs_finishing) == expected


@pytest.mark.parametrize(
    ("current", "after"),
    [
        ("working", "cancelled"),
        ("input_required", "cancelled"),
        ("completed", "completed"),  # a cancel of a terminal task is an ack that changes nothing
        ("failed", "failed"),
        ("cancelled", "cancelled"),
    ],
)
def test_cancel_of_each_state(current: str, after: str) -> None:
    assert policy.after_cancel(current) == after


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        ("working", "completed", "completed"),
        ("cancelled", "completed", "cancelled"),  # a follow-up finishing after a cancel
        ("completed", "working", "completed"),
        ("failed", "completed", "failed"),
    ],
)
def test_terminal_states_are_absorbing(current: str, new: policy.TaskStatus, expected: str) -> None:
    assert policy.next_status(current, new) == expected


@pytest.mark.parametrize(
    ("age", "ttl_ms", "expired"),
    [
        (timedelta(0), 1000, False),
        (timedelta(milliseconds=999), 1000, False),
        (timedelta(milliseconds=1000), 1000, True),  # createdAt + ttlMs is the end
        (timedelta(days=400), None, False),  # null: unlimited
        (timedelta(hours=23, minutes=59), policy.DEFAULT_TTL_MS, False),
        (timedelta(hours=24), policy.DEFAULT_TTL_MS, True),
    ],
)
def test_ttl(age: timedelta, ttl_ms: int | None, expired: bool) -> None:
    assert policy.is_expired(T0, ttl_ms, T0 + age) is expired


@pytest.mark.parametrize(
    ("elapsed", "polls", "scale", "expected"),
    [
        (0.0, 0, 1.0, 2500),  # the create result: Rivya's first look is 2-3 s after the create
        (1.0, 1, 1.0, 5000),  # then every 5-10 s (rivya-api.md 3.4)
        (20.0, 1, 1.0, 5000),
        (60.0, 1, 1.0, 9000),  # grows with the wait
        (3600.0, 1, 1.0, 30000),  # "poll more slowly for long jobs": the server's own schedule
        (250.0, 1, 1.0, 10000),  # a long image job: the documented 10 s
        (60.0, 1, 0.05, 450),  # the sandbox's time scale
        (0.0, 0, 0.001, policy.MIN_POLL_INTERVAL_MS),  # always a positive integer
        (0.004, 0, 1.0, 2500),  # the create result a few ms after the create: still the first look
        (-1.0, 1, 1.0, 5000),  # a clock step back does not break it
    ],
)
def test_poll_interval_follows_the_upstream_pace(elapsed: float, polls: int, scale: float, expected: int) -> None:
    assert policy.poll_interval_ms(elapsed, polls=polls, poll_scale=scale) == expected


def test_the_cancel_message_says_what_a_cancel_cannot_do() -> None:
    message = policy.cancel_message("task_abc")
    assert "may still finish and is paid" in message
    assert 'get_task tool with task_id="task_abc"' in message
