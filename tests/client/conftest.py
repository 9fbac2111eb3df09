"""Client test fixtures: a fake clock/sleep pair and clients wired to a mock transport."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from rivya_mcp.client import AsyncRivyaClient

API_KEY = "rvya_sk_test_4f1c2a9e_do_not_leak"
BASE_URL = "https://api.rivya.test"


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


ClientFactory = Callable[..., AsyncRivyaClient]


@pytest.fixture
async def make_client(fake_time: FakeTime) -> AsyncIterator[ClientFactory]:
    """Build clients on a handler or transport; their HTTP clients are closed after the test."""
    http_clients: list[httpx2.AsyncClient] = []

    def factory(
        handler: Callable[[httpx2.Request], Any] | None = None,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        api_key: str | None = API_KEY,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> AsyncRivyaClient:
        if transport is None:
            assert handler is not None
            transport = httpx2.MockTransport(handler)
        http = httpx2.AsyncClient(transport=transport, headers=headers)
        http_clients.append(http)
        options.setdefault("sleep", fake_time.sleep)
        options.setdefault("clock", fake_time.clock)
        options.setdefault("rng", random.Random(7))
        return AsyncRivyaClient(api_key, BASE_URL, http_client=http, **options)

    yield factory
    for http in http_clients:
        await http.aclose()


def error_body(code: str, message: str = "Something went wrong.", request_id: str = "req_test123") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "requestId": request_id}}


def task_body(task_id: str = "task_abc", status: str = "queued", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": task_id,
        "status": status,
        "model": "flux-kontext-max",
        "reserved_credits": 8,
        "final_credits": 0,
        "created_at": "2026-05-11T00:00:00.000Z",
        "updated_at": "2026-05-11T00:00:00.000Z",
        "result": None,
        "error": None,
    }
    body.update(extra)
    return body
