"""The pure retry policy, as tables."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from rivya_mcp.client import (
    INITIAL_RETRY_DELAY,
    JITTER_FRACTION,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    backoff_delay,
    parse_retry_after,
    retry_delay,
    should_retry,
)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (None, None, True),  # connection error or timeout
        (408, None, True),
        (429, "rate_limited", True),
        (429, None, True),
        (500, None, True),
        (502, None, True),
        (503, "public_api_disabled", True),
        (503, None, True),
        (504, "something_new", True),
        (400, "public_api_disabled", True),  # the code decides, whatever status carries it
        (409, "idempotency_conflict", False),
        (400, "validation_failed", False),
        (402, "insufficient_credits", False),
        (404, "not_found", False),
        (401, "api_key_missing", False),
        (401, "api_key_invalid", False),
        (401, "api_key_revoked", False),
        (401, "api_key_expired", False),
        (403, "api_scope_denied", False),
        (500, "validation_failed", False),  # a never-retry code wins over a 5xx status
        (409, "chat_session_conflict", False),
        (409, None, False),  # unlike Stainless, a bare 409 is not retried
        (400, "brand_new_code", False),
        (418, None, False),
        (200, None, False),
    ],
)
def test_should_retry(status: int | None, code: str | None, expected: bool) -> None:
    assert should_retry(status, code) is expected


NOW = 1_800_000_000.0


def _http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"Retry-After": " 12 "}, 12.0),
        ({"Retry-After": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # ms wins
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),  # bad ms falls back to seconds
        ({"Retry-After": _http_date(20)}, 20.0),
        ({"Retry-After": _http_date(-5)}, -5.0),
        ({"Retry-After": "tomorrow-ish"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": ""}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize("retries_taken", range(8))
def test_backoff_delay_bounds(retries_taken: int) -> None:
    rng = random.Random(retries_taken)
    nominal = min(INITIAL_RETRY_DELAY * 2**retries_taken, MAX_RETRY_DELAY)
    for _ in range(200):
        delay = backoff_delay(retries_taken, rng)
        assert nominal * (1 - JITTER_FRACTION) <= delay <= nominal


def test_backoff_delay_is_deterministic_for_a_seed() -> None:
    first = [backoff_delay(n, random.Random(42)) for n in range(5)]
    second = [backoff_delay(n, random.Random(42)) for n in range(5)]
    assert first == second
    assert first == sorted(first)  # each step's floor is above the previous step's ceiling


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (2.0, 2.0),
        (0.25, 0.25),
        (MAX_RETRY_AFTER, MAX_RETRY_AFTER),
        (MAX_RETRY_AFTER + 0.001, None),  # past the cap: give up
        (3600.0, None),
    ],
)
def test_retry_delay_obeys_retry_after_up_to_the_cap(retry_after: float, expected: float | None) -> None:
    assert retry_delay(3, retry_after, random.Random(0)) == expected


@pytest.mark.parametrize("retry_after", [None, 0.0, -4.0])
def test_retry_delay_without_usable_advice_backs_off(retry_after: float | None) -> None:
    assert retry_delay(2, retry_after, random.Random(1)) == backoff_delay(2, random.Random(1))
