"""Hostile-input harness: one sandbox per module, the real server in memory, and a record of
every request that reached the sandbox (so a test can prove nothing invalid was sent upstream)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings
from tests._image_host import ImageHost, serve_image_host
from tests._image_host import image_bytes as image_bytes  # the hostile tests' image, from here

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
HOSTILE_KEY = "rvya_sk_test_hostile_5c0ffee5"


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


@dataclass
class Upstream:
    """Every request our client sent to the sandbox, with the answer's status."""

    sent: list[tuple[str, str, int, bytes]] = field(default_factory=list)
    http: httpx2.AsyncClient | None = None

    async def on_response(self, response: httpx2.Response) -> None:
        request = response.request
        if request.method == "GET" and request.url.path == "/api/v1/models":
            # The public catalog, read once just before a call's first upload or create needs its
            # limits (server/_catalog.py): it carries nothing of the call (no prompt, no reference).
            return
        body = request.content if request.method == "POST" and not request.url.path.endswith("/files") else b""
        self.sent.append((request.method, request.url.path, response.status_code, body))

    def creates(self) -> list[tuple[int, dict[str, Any]]]:
        return [(status, json.loads(body)) for method, path, status, body in self.sent
                if method == "POST" and path == "/api/v1/generations"]  # fmt: skip

    def refused(self) -> list[tuple[str, str, int]]:
        """Requests the sandbox judged invalid (4xx other than 404, which is a lookup miss)."""
        return [(m, p, s) for m, p, s, _ in self.sent if 400 <= s < 500 and s != 404]


def hostile_settings(sandbox: RunningSandbox, workdir: Path, **changes: Any) -> Settings:
    return Settings(
        api_key=Secret(HOSTILE_KEY),
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=0.1,
        wait_seconds=0,
    ).with_changes(**changes)


def recording_client(settings: Settings, upstream: Upstream) -> AsyncRivyaClient:
    """The server's API client, recording every answer; close ``upstream.http`` when done."""
    http = httpx2.AsyncClient(event_hooks={"response": [upstream.on_response]}, timeout=10)
    upstream.http = http
    assert settings.api_key is not None
    return AsyncRivyaClient(
        api_key=settings.api_key, base_url=settings.base_url, http_client=http, max_retries=0, poll_scale=0.1
    )


def billable(sandbox: RunningSandbox) -> tuple[int, int, int]:
    """(tasks, charges, files) in the sandbox: what any charge or upload would change.

    Only charges (negative ledger deltas) count: earlier tasks settling on their own add entries.
    """
    snapshot = sandbox.state.snapshot()
    charges = sum(1 for entry in snapshot["ledger"] if entry["delta"] < 0)
    return len(snapshot["tasks"]), charges, len(snapshot["files"])


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    with serve_image_host() as host:
        yield host


@pytest.fixture
def other_image_host() -> Iterator[ImageHost]:
    """A second loopback image host (another port): say, a service a redirect must never reach."""
    with serve_image_host() as host:
        yield host
