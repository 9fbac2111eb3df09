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
    CreateNotSettledError,
    DeadlineExceededError,
    DownloadError,
    DownloadRefusedError,
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
    shown,
    shown_token,
)
from rivya_mcp.journal import BudgetExceeded, IdempotencyKeyReused
from rivya_mcp.manifest import ArgumentError
from rivya_mcp.references import ReferenceError as ReferenceLoadError
from rivya_mcp.tasks import MISSING_KEY_HELP, DataFolderUnusable, IntentTooOld, OutputFolderUnusable, current_caller

NOTHING_CHARGED = "Nothing was sent to Rivya, so no credits were spent."
# A failure's message and next step, at most (an upstream error message can be any length).
MAX_MESSAGE = 4000


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
        # Codes and messages can carry upstream text (Rivya's error code and message, a task id):
        # nothing in them may start a line of its own or restyle the text (``client.shown``).
        code = shown_token(self.code, what="error code")
        lines = [f"Error ({code}): {shown(self.message, limit=MAX_MESSAGE)}"]
        if self.retryable:
            wait = f" after about {self.retry_after:g} s" if self.retry_after else ""
            lines.append(f"Retrying{wait} may help.")
        else:
            lines.append("Retrying the same call will not help.")
        lines.append(f"Next step: {shown(self.next_step, limit=MAX_MESSAGE)}")
        return "\n".join(lines)


class ToolInputError(Exception):
    """A tool's own argument (not a model parameter) is unusable, e.g. an unknown task id form."""

    def __init__(self, message: str, next_step: str) -> None:
        super().__init__(message)
        self.message = message
        self.next_step = next_step


class SpendingNotConfirmed(Exception):
    """A create above the server's confirmation threshold that the user did not (yet) confirm."""

    def __init__(self, tool: str, cost: float, threshold: float, *, declined: bool) -> None:
        super().__init__(f"{tool} costs {cost:g} credits: not confirmed")
        self.tool, self.cost, self.threshold, self.declined = tool, cost, threshold, declined


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
    if isinstance(exc, IntentTooOld):
        return ToolFailure(
            "intent_expired",
            str(exc),
            False,
            "Check the task list as described above before creating the image again; for a new image, call "
            "again with a new idempotency_key (or none).",
        )
    if isinstance(exc, IdempotencyKeyReused):
        return ToolFailure(
            "idempotency_conflict",
            f"{exc} {NOTHING_CHARGED}",
            False,
            "Use a new idempotency_key for a new request, or repeat the original arguments exactly.",
        )
    if isinstance(exc, BudgetExceeded):
        whose = "your" if current_caller().confined else "this server's"
        resets = exc.resets_at.strftime("%Y-%m-%d %H:%M UTC")
        return ToolFailure(
            "budget_exceeded",
            f"This call costs {exc.cost:g} credits, and {whose} daily budget of {exc.limit:g} credits has "
            f"{exc.left:g} left ({exc.spent:g} spent today). The budget resets at {resets} (midnight UTC). "
            f"{NOTHING_CHARGED}",
            False,
            f"Wait until {resets}, or ask the server's operator to raise RIVYA_BUDGET_CREDITS_PER_DAY.",
        )
    if isinstance(exc, SpendingNotConfirmed):
        if exc.declined:
            return ToolFailure(
                "not_confirmed",
                f"The user did not agree to spend {exc.cost:g} credits on {exc.tool}. {NOTHING_CHARGED}",
                False,
                "Ask the user what they want before trying again.",
            )
        return ToolFailure(
            "confirmation_required",
            f"{exc.tool} costs {exc.cost:g} credits, and this server asks the user to confirm any call costing "
            f"more than {exc.threshold:g}. {NOTHING_CHARGED}",
            False,
            f"Ask the user whether to spend {exc.cost:g} credits; if they agree, call {exc.tool} again with the "
            f"same arguments and confirm_credits: {exc.cost:g}.",
        )
    if isinstance(exc, ReferenceLoadError):
        # A server that reads no local files must not send the agent back with another path.
        path = "" if exc.reason == "paths_disabled" else "a local path, "
        return ToolFailure(
            "invalid_reference",
            f"The reference image cannot be used: {exc}. {NOTHING_CHARGED}",
            False,
            f"Pass a JPEG, PNG or WebP of at most 10 MB as {path}an http(s) URL, a data URI, "
            "a file id from upload_reference, or the id of an earlier task.",
        )
    if isinstance(exc, OutputFolderUnusable):
        return ToolFailure(
            "output_folder_unwritable",
            str(exc),
            False,
            f"Ask the user to fix the output folder ({exc.fix}) or set RIVYA_OUTPUT_DIR and restart the server; "
            f'then call get_task with task_id="{exc.task_id}" to save the image. No new task is needed.',
            task_id=exc.task_id,
        )
    if isinstance(exc, DataFolderUnusable):
        return ToolFailure(
            "data_folder_unusable",
            f"{exc} Nothing was sent to Rivya for this call, so no credits were spent.",
            False,
            f"Ask the user to fix the data folder {exc.folder} (or set RIVYA_DATA_DIR) and restart the server.",
        )
    if isinstance(exc, RivyaError):
        return _failure_for_rivya_error(exc)
    return None


@dataclass(frozen=True)
class _ApiRule:
    """How one kind of client error reads to the agent. ``{said}`` is the error's own message."""

    code: str  # used when the error carries no API code of its own (``{status}``: its HTTP status)
    message: str
    next_step: str
    retryable: bool | None = None  # None: as the client judged it (``exc.retryable``)
    own_code: bool = True  # prefer the API's error code when there is one
    retry_after: bool = False  # pass the API's Retry-After on


_SAME_KEY = "Wait, then call again (with the same idempotency_key if you set one)."
_NEW_KEY = "Use a new idempotency_key for a new request, or repeat the original arguments exactly."

# Client errors → failures, most specific class first: the first matching row wins.
_API_RULES: tuple[tuple[type[RivyaError] | tuple[type[RivyaError], ...], _ApiRule], ...] = (
    (MissingAPIKeyError, _ApiRule("missing_api_key", MISSING_KEY_HELP, "Configure RIVYA_API_KEY or use --sandbox.",
                                  retryable=False, own_code=False)),
    (UnusableAPIKeyError, _ApiRule("api_key_unusable", "{said}",
                                   "Set RIVYA_API_KEY to the key exactly as Rivya shows it (copy it again, without "
                                   "quotes or stray characters), then restart the server.", retryable=False,
                                   own_code=False)),
    (AuthenticationError, _ApiRule("api_key_invalid", "Rivya rejected the API key: {said}",
                                   "Check or rotate RIVYA_API_KEY in the server's environment, then restart the "
                                   "server.", retryable=False)),
    (PermissionDeniedError, _ApiRule("api_scope_denied", "The API key lacks a needed permission: {said}",
                                     "Create a key with the generations and files scopes and set it as "
                                     "RIVYA_API_KEY.", retryable=False)),
    (InsufficientCreditsError, _ApiRule("insufficient_credits", "Not enough credits for this request: {said}",
                                        "Top up credits in your Rivya account (get_credits shows the balance), then "
                                        "call again.", retryable=False, own_code=False)),
    (RateLimitError, _ApiRule("rate_limited", "Rivya is rate limiting requests: {said}", _SAME_KEY,
                              retryable=True, own_code=False, retry_after=True)),
    (IdempotencyConflictError, _ApiRule("idempotency_conflict",
                                        "This idempotency_key was already used for a different request: {said}",
                                        _NEW_KEY, retryable=False, own_code=False)),
    (InvalidRequestError, _ApiRule("validation_failed", "Rivya refused the request as invalid: {said}",
                                   "Fix the request (compare the arguments with the tool's input schema) and call "
                                   "again.", retryable=False)),
    (NotFoundError, _ApiRule("not_found", "Not found: {said}. Tasks and files are visible only to the account that "
                             "created them.", "Check the id (list_tasks shows recent tasks).", retryable=False,
                             own_code=False)),
    ((ServiceUnavailableError, InternalServerError),
     _ApiRule("upstream_unavailable", "Rivya is temporarily unavailable: {said}", "Wait a minute and call again.",
              retryable=True, retry_after=True)),
    (APIStatusError, _ApiRule("http_{status}", "Rivya answered with an error: {said}",
                              "Call again later; if it persists, report the request id to Rivya support.",
                              retry_after=True)),
    (CreateNotSettledError, _ApiRule("create_not_settled", "Rivya has not settled this request yet: {said}",
                                     "Call again with exactly the same arguments and the same idempotency_key (never "
                                     "a new one): Rivya may already have created, and charged, the task.",
                                     retryable=True, own_code=False, retry_after=True)),
    (DeadlineExceededError, _ApiRule("upstream_slow", "Rivya did not answer within this call's time: {said}",
                                     "Call again in a little while (get_task with the task id, if you have one).",
                                     retryable=True, own_code=False, retry_after=True)),
    (ModelNotCallableError, _ApiRule("model_not_callable", "{said}",
                                     "No create was sent, so nothing was charged. Ask the user to set RIVYA_MODEL "
                                     "to a model Rivya's catalog lists as available through the API (rivya-mcp "
                                     "doctor checks it), or to wait until Rivya offers this one.",
                                     retryable=False, own_code=False)),
    (APIConnectionError, _ApiRule("connection_failed", "Could not reach Rivya: {said}",
                                  "Check the network (and RIVYA_BASE_URL), then call again; pass an idempotency_key so "
                                  "a request that did arrive is not paid twice.", retryable=True, own_code=False)),
    (ResultExpiredError, _ApiRule("result_expired",
                                  "The result's download URL has expired and no saved copy exists: {said}",
                                  "Generate the image again.", retryable=False, own_code=False)),
    (DownloadRefusedError, _ApiRule("result_url_refused", "The image was not downloaded: {said}.",
                                    "The task is paid and not lost, but its image is not fetched from where Rivya "
                                    "points. Tell the operator the host named above; get_task tries again only if "
                                    "Rivya later gives another URL.", retryable=False, own_code=False)),
    (DownloadError, _ApiRule("download_failed", "Downloading the result failed: {said}",
                             "Call get_task with the task id to try the download again.", retryable=True,
                             own_code=False)),
    (UploadTooLargeError, _ApiRule("reference_too_large", "The reference file is too large: {said}. " + NOTHING_CHARGED,
                                   "Use an image of at most 10 MB.", retryable=False, own_code=False)),
    (MalformedResponseError, _ApiRule("malformed_response", "Rivya sent an unexpected answer: {said}",
                                      "Call again; if it persists, report it.", own_code=False)),
    (RivyaError, _ApiRule("rivya_error", "{said}", "Call again later.")),
)  # fmt: skip


def _failure_for_rivya_error(exc: RivyaError) -> ToolFailure:
    rule = next(rule for kinds, rule in _API_RULES if isinstance(exc, kinds))
    status = getattr(exc, "status_code", None)
    return ToolFailure(
        (exc.code if rule.own_code and exc.code else None) or rule.code.format(status=status),
        rule.message.format(said=str(exc)),
        exc.retryable if rule.retryable is None else rule.retryable,
        rule.next_step,
        retry_after=getattr(exc, "retry_after", None) if rule.retry_after else None,
    )
