"""Hostile-input harness: one sandbox per module, the real server in memory, and a record of
every request that reached the sandbox (so a test can prove nothing invalid was sent upstream)."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from PIL import Image

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
HOSTILE_KEY = "rvya_sk_test_hostile_5c0ffee5"


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 140, 200)).save(buffer, format=fmt)
    return buffer.getvalue()


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


@dataclass
class ImageHost:
    """A loopback HTTP server that is *not* the sandbox: an image, a redirect, a loop, and a request log."""

    port: int
    paths: list[str] = field(default_factory=list)

    def url(self, path: str, *, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _ImageHandler(BaseHTTPRequestHandler):
    server: _ImageServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        self.server.owner.paths.append(split.path)
        if split.path == "/img.png":
            body = image_bytes("PNG")
            self._send(200, body, {"Content-Type": "image/png", "Content-Length": str(len(body))})
        elif split.path == "/redirect":
            target = parse_qs(split.query)["to"][0]
            self._send(302, b"", {"Location": target, "Content-Length": "0"})
        elif split.path == "/loop":  # a redirect back to itself, for ever
            self._send(302, b"", {"Location": "/loop", "Content-Length": "0"})
        else:
            self._send(404, b"", {"Content-Length": "0"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class _ImageServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: ImageHost


@contextmanager
def serve_image_host() -> Iterator[ImageHost]:
    server = _ImageServer(("127.0.0.1", 0), _ImageHandler)
    server.owner = ImageHost(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.owner
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    with serve_image_host() as host:
        yield host


@pytest.fixture
def other_image_host() -> Iterator[ImageHost]:
    """A second loopback image host (another port): say, a service a redirect must never reach."""
    with serve_image_host() as host:
        yield host
