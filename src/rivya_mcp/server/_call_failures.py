"""The failure a tool call ends with, told from what the call really did.

A message may only claim a paid task when one was created (or returned for its idempotency key)
in this call, or when the journal records it: a get_task for an id nobody knows must not read
"task X exists and is not lost", nor send the agent back to get_task with the same id.
Pure: ``call_failure`` maps an exception and the call's state to the failure shown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from rivya_mcp.client import CreateNotSettledError, DeadlineExceededError, NotFoundError, ResultExpiredError
from rivya_mcp.server._errors import ToolFailure, failure_for_exception

_LOG = "(details are in its log)"


@dataclass
class CallState:
    """What a call has done so far, so a late failure can still name the paid task."""

    # A paid task a failure may name: created (or returned for its key) in this call, or one the
    # journal records. Never an id merely taken from the arguments.
    task_id: str | None = None
    created: bool = False  # task_id came from this call's create or idempotent replay
    asked_for: str | None = None  # the task id a reading call (get_task) was asked about, known or not
    # The Idempotency-Key of a create whose outcome is not known yet: a failure names it, so the
    # agent can repeat the call without paying twice.
    idempotency_key: str | None = None
    # A call that made several images (count > 1): each as structured content, for the viewer's grid.
    candidates: list[dict[str, Any]] | None = None
    # list_tasks: the listing as structured content would carry it (the viewer's gallery reads it).
    listing: dict[str, Any] | None = None


def call_failure(exc: BaseException, state: CallState) -> tuple[ToolFailure, bool]:
    """The failure for ``exc`` raised during a call in ``state``, and whether it was unexpected (a bug)."""
    failed = failure_for_exception(exc)
    if failed is None:
        return unexpected_failure(state), True
    task = state.task_id
    if isinstance(exc, NotFoundError) and state.asked_for and not state.created:
        return unknown_task(failed, state.asked_for, recorded=task is not None), False
    if task and isinstance(exc, ResultExpiredError):
        # "Call get_task" would only fail again: the image is gone upstream and not on disk.
        message = f"{failed.message} Task {task} succeeded, but its image can no longer be fetched."
        return dataclasses.replace(failed, message=message, task_id=task), False
    if task and failed.task_id is None:
        message = f"{failed.message} Task {task} exists and is not lost."
        if failed.retryable:
            next_step = f'Call get_task with task_id="{task}" instead of creating a new task.'
        else:
            # Keep the advice that fixes the cause (a key, a scope); the task waits meanwhile.
            next_step = f'{failed.next_step} Then call get_task with task_id="{task}" instead of creating a new task.'
        return dataclasses.replace(failed, message=message, next_step=next_step, task_id=task), False
    if isinstance(exc, CreateNotSettledError):
        if exc.idempotency_key == state.idempotency_key:
            return not_settled(failed, exc), False
        # Another keyed request (an upload) ran out of the call's time: no create was sent.
        slow = DeadlineExceededError(
            str(exc), last_error=exc.last_error, retry_after=exc.retry_after, request_id=exc.request_id
        )
        failed = failure_for_exception(slow) or failed
    if state.idempotency_key and failed.retryable:
        # A create whose outcome is unknown: repeating it under the same key is safe.
        next_step = (
            f'{failed.next_step} Pass idempotency_key="{state.idempotency_key}" when you call again: if the '
            "first request did reach Rivya you get that task instead of paying twice."
        )
        return dataclasses.replace(failed, next_step=next_step), False
    return failed, False


def not_settled(failed: ToolFailure, exc: CreateNotSettledError) -> ToolFailure:
    """A create sent under ``key`` that Rivya had not settled when the call's time ran out.

    It may already be created and charged, so the one safe way forward is that same key: the
    server keeps re-sending it in the background (``tasks.TaskService.pursue``) and the agent may too.
    """
    key = exc.idempotency_key
    last = exc.last_error
    answer = f" Rivya's last answer: {last.code or type(last).__name__}." if last is not None else ""
    return dataclasses.replace(
        failed,
        message=(
            f"This call's create was sent to Rivya under idempotency_key {key!r}, and Rivya has not settled it "
            "yet: it may already be created, and charged. This server keeps re-sending it under that same key "
            "in the background until Rivya answers, then finishes the task and saves the image; list_tasks "
            f"shows it as soon as it exists.{answer}"
        ),
        next_step=(
            f"Wait a little, then call list_tasks (and get_task with the task id it shows); or call again with "
            f'exactly the same arguments and idempotency_key="{key}" to get that same task. Never a new '
            "idempotency_key for this request: that would create, and charge, a second image."
        ),
    )


def unknown_task(failed: ToolFailure, task_id: str, *, recorded: bool) -> ToolFailure:
    """Rivya answered 404 for a task id the agent asked about."""
    if recorded:
        return ToolFailure(
            "not_found",
            f"Rivya does not know task {task_id} for the current API key, although this server's journal "
            "records it for this key and RIVYA_BASE_URL: Rivya may have removed it, or the key now belongs "
            f"to another account. Rivya said: {failed.message}",
            False,
            "Create a new task if you still need the image; list_tasks shows the tasks this server recorded.",
        )
    return ToolFailure(
        "not_found",
        f"No task {task_id} is known to Rivya for this API key, and this server has no record of it. "
        f"Rivya said: {failed.message}",
        False,
        "Check the task id (copy it exactly from the generate_image or edit_image result); list_tasks shows "
        "the tasks this server created.",
    )


def unexpected_failure(state: CallState) -> ToolFailure:
    """A bug: say only what is known about the call, and what may still work."""
    if state.task_id and state.created:
        return ToolFailure(
            "internal_error",
            f"The server hit an unexpected error after task {state.task_id} was created {_LOG}.",
            True,
            f'The task is not lost: call get_task with task_id="{state.task_id}".',
            task_id=state.task_id,
        )
    if state.task_id:
        return ToolFailure(
            "internal_error",
            f"The server hit an unexpected error while checking task {state.task_id} {_LOG}. The task is "
            "recorded in this server's journal; this error did not change it.",
            True,
            f'Call get_task with task_id="{state.task_id}" again; if the error repeats, report the server log.',
            task_id=state.task_id,
        )
    if state.asked_for:
        return ToolFailure(
            "internal_error",
            f"The server hit an unexpected error while looking up task {state.asked_for} {_LOG}.",
            True,
            "Call again; if the error repeats, check the id with list_tasks and report the server log.",
        )
    return ToolFailure(
        "internal_error",
        f"The server hit an unexpected error {_LOG}.",
        False,
        "Call list_tasks to check whether a task was created before trying again.",
    )
