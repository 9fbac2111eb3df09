"""Errors raised by the Rivya client.

```
RivyaError
├── MissingAPIKeyError              no key configured; raised before any request
├── UnusableAPIKeyError             the key has characters a header can't carry; raised before any request
├── UploadTooLargeError             a file exceeds the caller's max_bytes; raised before sending
├── ModelNotCallableError           the catalog lists the model, but not as callable through the API
├── APIConnectionError              network failure after retries
│   └── APITimeoutError
│       └── DeadlineExceededError   the caller's deadline came first (a Retry-After or backoff would outlast it)
│           └── CreateNotSettledError   a create sent under an Idempotency-Key is not settled yet: retry that key
├── MalformedResponseError          body is not JSON or not the documented shape
├── DownloadError                   fetching a result URL failed (a redirect loop too)
│   ├── ResultExpiredError          the URL answered 403/404/410 (expired)
│   └── DownloadRefusedError        the caller's route refused the URL or a redirect (an address not to fetch from)
└── APIStatusError                  code, status_code, message, request_id, body, retry_after
    ├── AuthenticationError         401 api_key_missing|invalid|revoked|expired
    ├── PermissionDeniedError       403 api_scope_denied
    ├── InvalidRequestError         400 validation_failed
    ├── InsufficientCreditsError    insufficient_credits (402 in the sandbox)
    ├── NotFoundError               404 not_found
    ├── IdempotencyConflictError    409 idempotency_conflict
    ├── RateLimitError              429 rate_limited
    ├── ServiceUnavailableError     503 public_api_disabled
    └── InternalServerError         other 5xx
```

The class is chosen by ``error.code`` first, then by HTTP status, then ``APIStatusError``; a code
this module has never heard of is normal (the API adds codes without a new version). Every error
has ``code``, ``status_code``, ``message``, ``request_id`` and ``retryable``; ``str(error)`` reads
``[code] message (request req_…)``. No message ever contains the API key: the client scrubs
server-provided text before building an error.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "CreateNotSettledError",
    "DeadlineExceededError",
    "DownloadError",
    "DownloadRefusedError",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "ModelNotCallableError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultExpiredError",
    "RivyaError",
    "ServiceUnavailableError",
    "UnusableAPIKeyError",
    "UploadTooLargeError",
    "make_status_error",
]


class RivyaError(Exception):
    """Base class of every error the client raises."""

    retryable: bool = False
    """Whether repeating the same call later may succeed (the client already retried it)."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code
        self.request_id = request_id
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        label = self.code or (f"HTTP {self.status_code}" if self.status_code is not None else None)
        text = f"[{label}] {self.message}" if label else self.message
        if self.request_id:
            text += f" (request {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, code={self.code!r}, "
            f"status_code={self.status_code!r}, request_id={self.request_id!r})"
        )


class MissingAPIKeyError(RivyaError):
    """No API key is configured; raised before any request is sent."""


class UnusableAPIKeyError(RivyaError):
    """The key has characters an HTTP header can't carry; raised before any request is sent.

    Without this check httpx refuses to build the request (a crash) or, for a control
    character, the connection layer does (retried as a network failure).
    """


class UploadTooLargeError(RivyaError):
    """The file to upload is larger than the ``max_bytes`` the caller allowed; nothing was sent."""


class APIConnectionError(RivyaError):
    """No usable response arrived (connection refused, reset or dropped), even after retries."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """An attempt ran past the client's timeout, even after retries."""


class DeadlineExceededError(APITimeoutError):
    """The call ran out of time: the deadline the caller passed came before an answer did.

    Raised instead of waiting past the deadline, whatever the API asked for: a ``Retry-After`` or
    a backoff that would end after it, or an attempt cut short by it. ``last_error`` is the last
    failure seen (None when nothing was sent); ``retry_after`` what the API last asked to wait.
    Repeating the call later may succeed.
    """

    def __init__(
        self,
        message: str,
        *,
        last_error: RivyaError | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, code=None, request_id=request_id)
        self.last_error = last_error
        self.retry_after = retry_after


class CreateNotSettledError(DeadlineExceededError):
    """A create (or another request sent under an ``Idempotency-Key``) is not settled yet.

    Either the API kept answering ``409 idempotency_conflict`` to a key this client had already
    sent with the same body, which means the first request is still being processed, or the
    deadline came while retrying it. The request may have been accepted, and charged: the one safe
    next step is to send it again with the *same* ``idempotency_key``, never a new one.
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str,
        last_error: RivyaError | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, last_error=last_error, retry_after=retry_after, request_id=request_id)
        self.idempotency_key = idempotency_key


class ModelNotCallableError(RivyaError):
    """The catalog lists the model but says it is not callable through the Public API.

    ``api_status`` is what the catalog says (``coming_soon``, ``studio_only``, …), or None for a
    chat model (those are refused by ``POST /generations``, rivya-api.md §3.2).
    """

    def __init__(self, message: str, *, model_id: str, api_status: str | None) -> None:
        super().__init__(message, code="model_not_callable")
        self.model_id = model_id
        self.api_status = api_status


class MalformedResponseError(RivyaError):
    """The response body is not JSON, or not the documented shape.

    ``retryable`` is True when the body could not be parsed at all (a truncated or proxy-made
    answer: the request may or may not have been processed, so it is retried like a dropped
    connection, which the Idempotency-Key makes safe) and False when it is well-formed JSON of
    the wrong shape (repeating the request would get the same answer).
    """


class DownloadError(RivyaError):
    """Fetching a result URL failed, or its body exceeded ``max_bytes``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, retryable=retryable)
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), when it said."""


class ResultExpiredError(DownloadError):
    """The result URL answered 403, 404 or 410: it has expired (or never existed)."""


class DownloadRefusedError(DownloadError):
    """A download's route refused the result URL, or a hop it redirects to, before any request
    went there (a loopback, private or cloud metadata address: see ``download(route=...)``)."""

    retryable = False


class APIStatusError(RivyaError):
    """The API answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code, request_id=request_id, retryable=retryable)
        self.status_code: int = status_code
        self.body = body
        """The parsed JSON body (or None when it was not JSON), with the API key scrubbed."""
        self.retry_after = retry_after
        """Seconds the server asked to wait (``Retry-After``), when it said."""


class AuthenticationError(APIStatusError):
    """The key is missing, invalid, revoked or expired (401)."""


class PermissionDeniedError(APIStatusError):
    """The key lacks the scope this endpoint needs (403 ``api_scope_denied``)."""


class InvalidRequestError(APIStatusError):
    """The body, model, prompt, params or file is invalid (400 ``validation_failed``)."""


class InsufficientCreditsError(APIStatusError):
    """The account has too few credits for this job."""


class NotFoundError(APIStatusError):
    """No such task or file on this account (404 ``not_found``)."""


class IdempotencyConflictError(APIStatusError):
    """The Idempotency-Key was already used with a different body (409); never retried.

    Raised only when this call's first attempt is answered so, and the caller did not say the key
    had been sent before: a 409 to a key already sent with this body is ``CreateNotSettledError``.
    """


class RateLimitError(APIStatusError):
    """Too many requests in the current window (429 ``rate_limited``)."""


class ServiceUnavailableError(APIStatusError):
    """The Public API is switched off for now (503 ``public_api_disabled``)."""


class InternalServerError(APIStatusError):
    """The API failed on its side (5xx)."""


_BY_CODE: dict[str, type[APIStatusError]] = {
    "api_key_missing": AuthenticationError,
    "api_key_invalid": AuthenticationError,
    "api_key_revoked": AuthenticationError,
    "api_key_expired": AuthenticationError,
    "api_scope_denied": PermissionDeniedError,
    "validation_failed": InvalidRequestError,
    "insufficient_credits": InsufficientCreditsError,
    "not_found": NotFoundError,
    "idempotency_conflict": IdempotencyConflictError,
    "rate_limited": RateLimitError,
    "public_api_disabled": ServiceUnavailableError,
}
# 409 is deliberately absent: the API also uses it for conflicts that are not about idempotency.
_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}


def error_class_for(status_code: int, code: str | None) -> type[APIStatusError]:
    """The exception class for a status and code: by code, then by status, then the base class."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if status_code >= 500:
        return InternalServerError
    return APIStatusError


def make_status_error(
    *,
    status_code: int,
    code: str | None,
    message: str,
    request_id: str | None,
    body: Any,
    retry_after: float | None,
    retryable: bool,
) -> APIStatusError:
    """Build the right ``APIStatusError`` subclass for an error response."""
    cls = error_class_for(status_code, code)
    return cls(
        message,
        status_code=status_code,
        code=code,
        request_id=request_id,
        body=body,
        retry_after=retry_after,
        retryable=retryable,
    )
