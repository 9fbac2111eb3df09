"""The failure a call ends with, as a table: what the call did decides what the message may claim."""

from __future__ import annotations

import pytest

from rivya_mcp.client import APIConnectionError, AuthenticationError, NotFoundError, ResultExpiredError
from rivya_mcp.server import CallState, call_failure

T = "task_abc"
GONE = NotFoundError("Generation was not found.", status_code=404, code="not_found")
UNAUTHORIZED = AuthenticationError("bad key", status_code=401, code="api_key_invalid")
DROPPED = APIConnectionError("connection reset")
BUG = RuntimeError("a bug")

# (exception, call state, code, unexpected, words in the text, words not in the text)
TABLE: list[tuple[BaseException, CallState, str, bool, tuple[str, ...], tuple[str, ...]]] = [
    # get_task of an id nobody knows: no claim, no loop back to get_task.
    (GONE, CallState(asked_for=T), "not_found", False, ("No task task_abc", "list_tasks"), ("not lost", "get_task")),
    # get_task of a journaled id the API does not know: say both.
    (GONE, CallState(asked_for=T, task_id=T), "not_found", False, ("journal", "may have removed it"), ("not lost",)),
    # 401: the key advice stays; a known task is named as safe, an unknown one is not.
    (UNAUTHORIZED, CallState(asked_for=T, task_id=T), "api_key_invalid", False, ("RIVYA_API_KEY", "not lost"), ()),
    (UNAUTHORIZED, CallState(asked_for=T), "api_key_invalid", False, ("RIVYA_API_KEY",), ("not lost", "exists")),
    # A network failure after a create: the task is safe, get_task continues it.
    (DROPPED, CallState(task_id=T, created=True), "connection_failed", False, ('task_id="task_abc"',), ()),
    # A create whose answer never came: repeat with the key.
    (DROPPED, CallState(idempotency_key="k-1"), "connection_failed", False, ('idempotency_key="k-1"',), ("task_",)),
    (ResultExpiredError("410"), CallState(task_id=T, created=True), "result_expired", False, ("no longer",), ()),
    # Bugs: "was created" only when it was.
    (BUG, CallState(task_id=T, created=True), "internal_error", True, ("after task task_abc was created",), ()),
    (BUG, CallState(asked_for=T, task_id=T), "internal_error", True, ("while checking task task_abc",), ("created",)),
    (BUG, CallState(asked_for=T), "internal_error", True, ("looking up task task_abc",), ("created", "not lost")),
    (BUG, CallState(), "internal_error", True, ("list_tasks",), ("task_",)),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "state", "code", "unexpected", "present", "absent"), TABLE)
def test_call_failure(
    exc: BaseException,
    state: CallState,
    code: str,
    unexpected: bool,
    present: tuple[str, ...],
    absent: tuple[str, ...],
) -> None:
    failed, was_unexpected = call_failure(exc, state)
    text = failed.text()
    assert (failed.code, was_unexpected) == (code, unexpected)
    for word in present:
        assert word in text, (word, text)
    for word in absent:
        assert word not in text, (word, text)
