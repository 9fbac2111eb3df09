"""Retry policy as pure functions: whether to retry, how long to wait first, and when time is up.

The decision is taken on ``error.code`` first and the HTTP status second, because this API uses
409 both for ``idempotency_conflict`` (never retry) and for other conflicts, and 503 for
``public_api_disabled`` (retry later).

One 409 is different: rivya-api.md §6 does not say what triggers ``idempotency_conflict``, a
different body under the key or the same key while the first request is still being processed.
When this client has already sent the key with this very body, only the second reading is
possible, so that 409 means "not settled yet" and is retried under the same key
(``conflict_is_unsettled``). Every wait is bounded by the caller's deadline (``plan_retry``).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ._constants import INITIAL_RETRY_DELAY, JITTER_FRACTION, MAX_RETRY_AFTER, MAX_RETRY_DELAY

__all__ = [
    "NEVER_RETRY_CODES",
    "RETRY_CODES",
    "RETRY_STATUSES",
    "RetryStep",
    "backoff_delay",
    "conflict_is_unsettled",
    "parse_retry_after",
    "plan_retry",
    "retry_delay",
    "should_retry",
]

# Codes where a retry cannot help (the request or the account must change) or would be wrong.
NEVER_RETRY_CODES = frozenset(
    {
        "idempotency_conflict",
        "validation_failed",
        "insufficient_credits",
        "not_found",
        "api_key_missing",
        "api_key_invalid",
        "api_key_revoked",
        "api_key_expired",
        "api_scope_denied",
    }
)
# Codes the docs say to retry later, whatever status carries them.
RETRY_CODES = frozenset({"rate_limited", "public_api_disabled"})
# Statuses worth another attempt when the code is unknown or absent (5xx is handled by range).
RETRY_STATUSES = frozenset({408, 429})


def should_retry(status_code: int | None, code: str | None) -> bool:
    """Whether a failed attempt is worth repeating.

    Args:
        status_code: the HTTP status, or None when no response arrived (connection error, timeout).
        code: the body's ``error.code``, or None when there was none.
    """
    if code in NEVER_RETRY_CODES:
        return False
    if code in RETRY_CODES:
        return True
    if status_code is None:
        return True
    return status_code in RETRY_STATUSES or status_code >= 500


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say (or said nonsense).

    Reads ``retry-after-ms`` first, then ``Retry-After`` as seconds (fractions allowed), then as an
    HTTP date measured against ``now`` (epoch seconds; defaults to the wall clock). A date in the
    past gives a negative number, which ``retry_delay`` treats as "no advice".
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return value
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        return value if math.isfinite(value) else None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return moment.timestamp() - (time.time() if now is None else now)


def backoff_delay(retries_taken: int, rng: random.Random) -> float:
    """Exponential backoff with jitter: ``INITIAL * 2**n`` capped at ``MAX_RETRY_DELAY``, shortened
    by up to ``JITTER_FRACTION``."""
    nominal = min(INITIAL_RETRY_DELAY * 2.0 ** max(retries_taken, 0), MAX_RETRY_DELAY)
    return nominal * (1.0 - JITTER_FRACTION * rng.random())


def retry_delay(retries_taken: int, retry_after: float | None, rng: random.Random) -> float | None:
    """Seconds to sleep before the next attempt, or None to give up now.

    A positive ``retry_after`` within ``MAX_RETRY_AFTER`` is obeyed exactly; one beyond the cap
    means the server will not be ready soon, so the caller gets the error instead of a long hang.
    Absent, zero or negative advice falls back to ``backoff_delay``.
    """
    if retry_after is not None and retry_after > 0:
        if retry_after > MAX_RETRY_AFTER:
            return None
        return retry_after
    return backoff_delay(retries_taken, rng)


def conflict_is_unsettled(*, code: str | None, attempt: int, key_sent_before: bool) -> bool:
    """Whether an error answer to a request sent under an Idempotency-Key means "not settled yet".

    Args:
        code: the answer's ``error.code``.
        attempt: which attempt of this call was answered (1 for the first).
        key_sent_before: the caller sent this key with this same body before this call (a restart
            re-sending an unconfirmed create, a tool call repeating a recorded intent).

    Only ``idempotency_conflict`` qualifies, and only when the key is known to have gone out with
    this body already: on a retry within the call (the body never changes between attempts) or when
    the caller says so. A first attempt with a fresh key answered 409 is the other reading (the key
    was used for a different body) and stays a conflict.
    """
    return code == "idempotency_conflict" and (attempt > 1 or key_sent_before)


@dataclass(frozen=True)
class RetryStep:
    """What the request loop does after a failed attempt."""

    action: Literal["retry", "give_up", "out_of_time"]
    """``retry`` after ``delay``; ``give_up`` and raise the error; ``out_of_time``: raise a
    deadline error now, since the wait would end past the caller's deadline."""
    delay: float = 0.0


def plan_retry(
    *,
    retryable: bool,
    retries_taken: int,
    retry_budget: int | None,
    retry_after: float | None,
    backoff: float,
    remaining: float | None,
) -> RetryStep:
    """The next step after a failed attempt.

    Args:
        retryable: whether the failure is worth repeating at all.
        retries_taken: retries already made in this call.
        retry_budget: the most retries allowed, or None for as many as the deadline allows.
        retry_after: seconds the API asked to wait (``Retry-After``), if it said.
        backoff: the backoff to use when the API did not say (``backoff_delay``).
        remaining: seconds left before the caller's deadline, or None without one.

    A ``Retry-After`` is obeyed exactly, never cut short (coming back early is what it forbids),
    so one that would end at or past the deadline means the call is out of time now, rather than
    after a sleep that cannot help. The same holds for a backoff. Without a deadline a
    ``Retry-After`` beyond ``MAX_RETRY_AFTER`` gives up, as ``retry_delay`` does.
    """
    if not retryable:
        return RetryStep("give_up")
    if retry_budget is not None and retries_taken >= retry_budget:
        return RetryStep("give_up")
    asked = retry_after is not None and retry_after > 0
    delay = retry_after if asked and retry_after is not None else backoff
    if remaining is not None and delay >= remaining:
        return RetryStep("out_of_time", delay)
    if asked and delay > MAX_RETRY_AFTER:
        return RetryStep("give_up", delay)
    return RetryStep("retry", delay)
