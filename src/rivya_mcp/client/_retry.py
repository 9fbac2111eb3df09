"""Retry policy as pure functions: whether to retry, and how long to wait first.

The decision is taken on ``error.code`` first and the HTTP status second, because this API uses
409 both for ``idempotency_conflict`` (never retry) and for other conflicts, and 503 for
``public_api_disabled`` (retry later).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

from ._constants import INITIAL_RETRY_DELAY, JITTER_FRACTION, MAX_RETRY_AFTER, MAX_RETRY_DELAY

__all__ = [
    "NEVER_RETRY_CODES",
    "RETRY_CODES",
    "RETRY_STATUSES",
    "backoff_delay",
    "parse_retry_after",
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
