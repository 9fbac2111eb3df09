"""Typed async client for the Rivya Public API v1 (retries, idempotency, one exception tree)."""

from __future__ import annotations

from ._client import AsyncRivyaClient, OnUpdate
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
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
    UnusableAPIKeyError,
    UploadTooLargeError,
)
from ._models import Credits, Generation, GenerationResult, ModelInfo, RivyaFile, TaskError
from ._polling import PollInfo, poll_delay
from ._webhooks import WebhookEndpoint

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncRivyaClient",
    "AuthenticationError",
    "Credits",
    "DownloadError",
    "Generation",
    "GenerationResult",
    "IdempotencyConflictError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidRequestError",
    "MalformedResponseError",
    "MissingAPIKeyError",
    "ModelInfo",
    "NotFoundError",
    "OnUpdate",
    "PermissionDeniedError",
    "PollInfo",
    "RateLimitError",
    "ResultExpiredError",
    "RivyaError",
    "RivyaFile",
    "ServiceUnavailableError",
    "TaskError",
    "UnusableAPIKeyError",
    "UploadTooLargeError",
    "WebhookEndpoint",
    "poll_delay",
]
