"""What went wrong, in words an agent can act on: what happened, whether retrying helps, what next.

Every failure an agent can fix or wait out becomes an ``isError`` tool result built from a
:class:`ToolFailure`; protocol errors are left for protocol faults.
"""

from __future__ import annotations

from dataclasses import dataclass

from rivya_mcp.client import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    DownloadError,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidRequestError,
    MalformedResponseError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultExpiredError,
    RivyaError,
    ServiceUnavailableError,
    UploadTooLargeError,
)
from rivya_mcp.journal import IdempotencyKeyReused
from rivya_mcp.manifest import ArgumentError
from rivya_mcp.references import ReferenceError as ReferenceLoadError

NOTHING_CHARGED = "Nothing was sent to Rivya, so no credits were spent."
MISSING_KEY_HELP = (
    "No Rivya API key is configured. Set RIVYA_API_KEY in this MCP server's environment "
    "(create a key in your Rivya account settings), or start the server with --sandbox to try "
    "everything offline without a key or credits."
)


@dataclass(frozen=True)
class ToolFailure:
    """An actionable failure: shown to the agent as an isError result."""

    code: str
    message: str
    retryable: bool
    next_step: str
    retry_after: float | None = None
    task_id: str | None = None

    def text(self) -> str:
        lines = [f"Error ({self.code}): {self.message}"]
        if self.retryable:
            wait = f" after about {self.retry_after:g} s" if self.retry_after else ""
            lines.append(f"Retrying{wait} may help.")
        else:
            lines.append("Retrying the same call will not help.")
        lines.append(f"Next step: {self.next_step}")
        return "\n".join(lines)


class ToolInputError(Exception):
    """A tool's own argument (not a model parameter) is unusable, e.g. an unknown task id form."""

    def __init__(self, message: str, next_step: str) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step


# Task-level error codes (a failed generation) → (what happened, retryable, next step).
TASK_ERRORS: dict[str, tuple[str, bool, str]] = {
    "content_moderated": (
        "The generation was blocked by content moderation.",
        False,
        "Rephrase the prompt (or use a different reference image); the same request will be blocked again.",
    ),
    "generation_failed": (
        "The model failed to produce an image.",
        True,
        "Call the tool again with the same arguments; if it keeps failing, simplify the prompt.",
    ),
}


def failure_for_task_error(code: str | None, message: str | None, task_id: str) -> ToolFailure:
    """A failed task (the task reached status ``failed``)."""
    known = TASK_ERRORS.get(code or "")
    detail = f" Rivya said: {message}" if message else ""
    refund = " Credits reserved for a failed task are normally released (see final_credits)."
    if known is None:
        return ToolFailure(
            code or "generation_failed",
            f"Task {task_id} failed.{detail}{refund}",
            True,
            "Try again; if it keeps failing, change the prompt or parameters.",
            task_id=task_id,
        )
    what, retryable, next_step = known
    return ToolFailure(code or "generation_failed", f"{what}{detail}{refund}", retryable, next_step, task_id=task_id)


def failure_for_exception(exc: BaseException) -> ToolFailure | None:
    """Map a known exception to a failure; None for anything unexpected (a bug to log)."""
    if isinstance(exc, ArgumentError):
        problems = "; ".join(exc.problems)
        return ToolFailure(
            "invalid_arguments",
            f"Invalid arguments: {problems}. {NOTHING_CHARGED}",
            False,
            "Fix the listed arguments (see the tool's input schema) and call again.",
        )
    if isinstance(exc, ToolInputError):
        return ToolFailure("invalid_arguments", f"{exc.message} {NOTHING_CHARGED}", False, exc.next_step)
    if isinstance(exc, IdempotencyKeyReused):
        return ToolFailure(
            "idempotency_conflict",
            f"{exc} {NOTHING_CHARGED}",
            False,
            "Use a new idempotency_key for a new request, or repeat the original arguments exactly.",
        )
    if isinstance(exc, ReferenceLoadError):
        return ToolFailure(
            "invalid_reference",
            f"The reference image cannot be used: {exc}. {NOTHING_CHARGED}",
            False,
            "Pass a JPEG, PNG or WebP of at most 10 MB as a local path, an http(s) URL, a data URI, "
            "a file id from upload_reference, or the id of an earlier task.",
        )
    if isinstance(exc, RivyaError):
        return _failure_for_rivya_error(exc)
    return None


def _failure_for_rivya_error(exc: RivyaError) -> ToolFailure:
    said = str(exc)
    if isinstance(exc, MissingAPIKeyError):
        return ToolFailure("missing_api_key", MISSING_KEY_HELP, False, "Configure RIVYA_API_KEY or use --sandbox.")
    if isinstance(exc, AuthenticationError):
        return ToolFailure(
            exc.code or "api_key_invalid",
            f"Rivya rejected the API key: {said}",
            False,
            "Check or rotate RIVYA_API_KEY in the server's environment, then restart the server.",
        )
    if isinstance(exc, PermissionDeniedError):
        return ToolFailure(
            exc.code or "api_scope_denied",
            f"The API key lacks a needed permission: {said}",
            False,
            "Create a key with the generations and files scopes and set it as RIVYA_API_KEY.",
        )
    if isinstance(exc, InsufficientCreditsError):
        return ToolFailure(
            "insufficient_credits",
            f"Not enough credits for this request: {said}",
            False,
            "Top up credits in your Rivya account (get_credits shows the balance), then call again.",
        )
    if isinstance(exc, RateLimitError):
        return ToolFailure(
            "rate_limited",
            f"Rivya is rate limiting requests: {said}",
            True,
            "Wait, then call again (with the same idempotency_key if you set one).",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, IdempotencyConflictError):
        return ToolFailure(
            "idempotency_conflict",
            f"This idempotency_key was already used for a different request: {said}",
            False,
            "Use a new idempotency_key for a new request, or repeat the original arguments exactly.",
        )
    if isinstance(exc, InvalidRequestError):
        return ToolFailure(
            exc.code or "validation_failed",
            f"Rivya refused the request as invalid: {said}",
            False,
            "Fix the request (compare the arguments with the tool's input schema) and call again.",
        )
    if isinstance(exc, NotFoundError):
        return ToolFailure(
            "not_found",
            f"Not found: {said}. Tasks and files are visible only to the account that created them.",
            False,
            "Check the id (list_tasks shows recent tasks).",
        )
    if isinstance(exc, ServiceUnavailableError | InternalServerError):
        return ToolFailure(
            exc.code or "upstream_unavailable",
            f"Rivya is temporarily unavailable: {said}",
            True,
            "Wait a minute and call again.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, APIStatusError):
        return ToolFailure(
            exc.code or f"http_{exc.status_code}",
            f"Rivya answered with an error: {said}",
            exc.retryable,
            "Call again later; if it persists, report the request id to Rivya support.",
            retry_after=exc.retry_after,
        )
    if isinstance(exc, APIConnectionError):
        return ToolFailure(
            "connection_failed",
            f"Could not reach Rivya: {said}",
            True,
            "Check the network (and RIVYA_BASE_URL), then call again; pass an idempotency_key so a "
            "request that did arrive is not paid twice.",
        )
    if isinstance(exc, ResultExpiredError):
        return ToolFailure(
            "result_expired",
            f"The result's download URL has expired and no saved copy exists: {said}",
            False,
            "Generate the image again.",
        )
    if isinstance(exc, DownloadError):
        return ToolFailure(
            "download_failed",
            f"Downloading the result failed: {said}",
            True,
            "Call get_task with the task id to try the download again.",
        )
    if isinstance(exc, UploadTooLargeError):
        return ToolFailure(
            "reference_too_large",
            f"The reference file is too large: {said}. {NOTHING_CHARGED}",
            False,
            "Use an image of at most 10 MB.",
        )
    if isinstance(exc, MalformedResponseError):
        return ToolFailure(
            "malformed_response",
            f"Rivya sent an unexpected answer: {said}",
            exc.retryable,
            "Call again; if it persists, report it.",
        )
    return ToolFailure(exc.code or "rivya_error", said, exc.retryable, "Call again later.")
