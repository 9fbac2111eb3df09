"""Policy of the MCP Tasks extension (SEP-2663), as pure functions: tested as tables.

What a protocol task's status is for a given Rivya task, when it expires, what a cancel does,
and how often a client is told to poll. ``_tasks_ext`` applies these; nothing here does I/O.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final, Literal

from rivya_mcp.client import poll_delay
from rivya_mcp.journal import UNSUBMITTED

TaskStatus = Literal["working", "input_required", "completed", "failed", "cancelled"]

WORKING: Final = "working"
INPUT_REQUIRED: Final = "input_required"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
# The spec's terminal states are absorbing: once there, a task never moves again.
TERMINAL: Final = frozenset({COMPLETED, FAILED, CANCELLED})

# A handle lives a day from its creation: the same horizon as the journal's unanswered creates
# (recovery's INTENT_MAX_AGE). The journal keeps the row afterwards, and get_task still answers
# by the Rivya task id (named in every status message), so expiry loses no image.
DEFAULT_TTL_MS: Final = 24 * 60 * 60 * 1000
# The spec wants pollIntervalMs > 0; below this a client would only burn requests on our DB.
MIN_POLL_INTERVAL_MS: Final = 50


def status_for(rivya_status: str, *, needs_finishing: bool) -> TaskStatus:
    """The protocol status of a task the follow-up has just looked at (before any cancel).

    A succeeded task is ``working`` until its image is saved: the result is the saved image.
    A failed Rivya task (moderation, upstream error) is ``completed``: its result is the same
    ``isError`` tool result a blocking call returns. ``failed`` is kept for protocol faults.
    An intent whose create is not answered yet (``unsubmitted``) is still working too.
    """
    if needs_finishing or rivya_status == UNSUBMITTED:
        return WORKING
    return COMPLETED


def next_status(current: str, new: TaskStatus) -> str:
    """Terminal states are absorbing: a late follow-up never overwrites a cancel or a result."""
    return current if current in TERMINAL else new


def after_cancel(current: str) -> str:
    """``tasks/cancel`` of a task in ``current``: a running task ends ``cancelled``, a terminal one stays.

    Rivya has no cancel endpoint, so a cancel only stops our follow-up; the message says so.
    """
    return next_status(current, CANCELLED)


def is_expired(created_at: datetime, ttl_ms: int | None, now: datetime) -> bool:
    """Past ``createdAt + ttlMs`` the handle is gone (``tasks/*`` answer -32602); None never expires."""
    if ttl_ms is None:
        return False
    return now >= created_at + timedelta(milliseconds=ttl_ms)


def poll_interval_ms(elapsed_seconds: float, *, polls: int, poll_scale: float = 1.0) -> int:
    """The ``pollIntervalMs`` to suggest (``polls``: 0 on the create result): Rivya's documented pace.

    The same schedule the server polls Rivya by (``client.poll_delay``, rivya-api.md §3.4): our
    ``tasks/get`` reads the journal, not Rivya, but a host polling faster than the job moves would
    only see the same state again. ``poll_scale`` is the server's test/sandbox time scale.
    """
    seconds = poll_delay(polls, elapsed_seconds) * poll_scale
    return max(MIN_POLL_INTERVAL_MS, round(seconds * 1000))


def cancel_message(rivya_task_id: str) -> str:
    return (
        f"Cancelled: this server stopped following Rivya task {rivya_task_id}. Rivya cannot cancel a "
        "running job, so it may still finish and is paid; call the get_task tool with "
        f'task_id="{rivya_task_id}" to fetch the image later.'
    )


def expired_message(task_id: str) -> str:
    return f"Unknown or expired task {task_id!r}"
