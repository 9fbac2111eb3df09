"""Every failure maps to a message that says what happened, whether retrying helps and what to do."""

from __future__ import annotations

import pytest

from rivya_mcp.client import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    CreateNotSettledError,
    DeadlineExceededError,
    DownloadError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    ModelNotCallableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultExpiredError,
    RivyaError,
    ServiceUnavailableError,
    UnusableAPIKeyError,
    UploadTooLargeError,
)
from rivya_mcp.journal import IdempotencyKeyReused
from rivya_mcp.manifest import ArgumentError
from rivya_mcp.references import ReferenceError as ReferenceLoadError
from rivya_mcp.server import ToolInputError, failure_for_exception, failure_for_task_error


def _status(cls: type[APIStatusError], code: str, status: int, **kw: object) -> APIStatusError:
    return cls("upstream said no", status_code=status, code=code, request_id="req_1", **kw)  # type: ignore[arg-type]


# (exception, code, retryable, words the message or next step must contain)
TABLE: list[tuple[BaseException, str, bool, tuple[str, ...]]] = [
    (ArgumentError(["aspectRatio: '2:1' is not one of …"]), "invalid_arguments", False, ("aspectRatio", "no credits")),
    (ToolInputError("Task x is queued.", "Call get_task."), "invalid_arguments", False, ("get_task",)),
    (ReferenceLoadError("the file is 12 MB", reason="too_large"), "invalid_reference", False, ("12 MB", "10 MB")),
    (IdempotencyKeyReused("key 'a' was already used"), "idempotency_conflict", False, ("new idempotency_key",)),
    (MissingAPIKeyError("no key"), "missing_api_key", False, ("RIVYA_API_KEY", "--sandbox")),
    (UnusableAPIKeyError("bad key"), "api_key_unusable", False, ("RIVYA_API_KEY", "restart")),
    (_status(AuthenticationError, "api_key_invalid", 401), "api_key_invalid", False, ("RIVYA_API_KEY",)),
    (_status(PermissionDeniedError, "api_scope_denied", 403), "api_scope_denied", False, ("scope",)),
    (_status(InsufficientCreditsError, "insufficient_credits", 402), "insufficient_credits", False, ("Top up",)),
    (_status(RateLimitError, "rate_limited", 429, retry_after=7.0), "rate_limited", True, ("Wait", "7 s")),
    (_status(IdempotencyConflictError, "idempotency_conflict", 409), "idempotency_conflict", False, ("new",)),
    (_status(InvalidRequestError, "validation_failed", 400), "validation_failed", False, ("input schema",)),
    (_status(NotFoundError, "not_found", 404), "not_found", False, ("list_tasks",)),
    (_status(ServiceUnavailableError, "public_api_disabled", 503), "public_api_disabled", True, ("Wait",)),
    (_status(InternalServerError, "internal", 500), "internal", True, ("Wait",)),
    (
        CreateNotSettledError("sent under k-9, not settled", idempotency_key="k-9", retry_after=2.0),
        "create_not_settled",
        True,
        ("same idempotency_key", "never a new one", "k-9"),
    ),
    (
        DeadlineExceededError("GET /generations/t ran out of time", retry_after=30.0),
        "upstream_slow",
        True,
        ("get_task", "30 s"),
    ),
    (
        ModelNotCallableError("m is coming_soon", model_id="m", api_status="coming_soon"),
        "model_not_callable",
        False,
        ("coming_soon", "nothing was charged"),
    ),
    (APIConnectionError("connection refused"), "connection_failed", True, ("idempotency_key",)),
    (APITimeoutError("timed out"), "connection_failed", True, ("network",)),
    (ResultExpiredError("410"), "result_expired", False, ("expired", "again")),
    (DownloadError("reset"), "download_failed", True, ("get_task",)),
    (UploadTooLargeError("too big"), "reference_too_large", False, ("10 MB",)),
    (MalformedResponseError("not json", retryable=True), "malformed_response", True, ("again",)),
    # The catch-alls: a status error of no known kind, without an API code, and the base class.
    (APIStatusError("teapot", status_code=418, retryable=False), "http_418", False, ("request id",)),
    (RivyaError("odd {brace} text", code="weird", retryable=True), "weird", True, ("odd {brace} text",)),
    (NotFoundError("no task {id}", status_code=404), "not_found", False, ("no task {id}",)),  # braces kept as said
]


@pytest.mark.parametrize(("exc", "code", "retryable", "words"), TABLE, ids=[type(t[0]).__name__ for t in TABLE])
def test_exception_maps_to_actionable_failure(
    exc: BaseException, code: str, retryable: bool, words: tuple[str, ...]
) -> None:
    failure = failure_for_exception(exc)
    assert failure is not None
    assert (failure.code, failure.retryable) == (code, retryable)
    text = failure.text()
    assert text.startswith(f"Error ({code}):")
    assert ("may help" in text) is retryable and ("will not help" in text) is not retryable
    assert "Next step:" in text
    for word in words:
        assert word in text, (word, text)


def test_unknown_exception_is_not_mapped() -> None:
    assert failure_for_exception(RuntimeError("bug")) is None


@pytest.mark.parametrize(
    ("code", "retryable", "word"),
    [
        ("content_moderated", False, "Rephrase"),
        ("generation_failed", True, "again"),
        ("weird_new_code", True, "Try again"),
    ],
)
def test_task_errors(code: str, retryable: bool, word: str) -> None:
    failure = failure_for_task_error(code, "details from Rivya", "task_1")
    assert failure.code == code and failure.retryable is retryable and failure.task_id == "task_1"
    assert word in failure.text() and "details from Rivya" in failure.text()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"safetyTolerance": "3"}, {"safetyTolerance": 3}),
        ({"enableTranslation": "false"}, {"enableTranslation": False}),
        ({"enableTranslation": "True"}, {"enableTranslation": True}),
        ({"wait_seconds": "2.5"}, {"wait_seconds": 2.5}),
        ({"safetyTolerance": "true"}, {"safetyTolerance": "true"}),  # not a number: left for validation
        ({"aspectRatio": "16"}, {"aspectRatio": "16"}),  # strings stay strings
        ({"enableTranslation": "1"}, {"enableTranslation": "1"}),
    ],
)
def test_stringified_scalars_are_coerced(given: dict[str, object], expected: dict[str, object]) -> None:
    from rivya_mcp.manifest import get_manifest
    from rivya_mcp.server import coerce_scalars, generation_tool_schema

    schema = generation_tool_schema(get_manifest("flux-kontext-max"), "generate", default_wait=45)
    assert coerce_scalars(schema, {"prompt": "p", **given}) == {"prompt": "p", **expected}
