"""The webhook route as a stranger reaches it: the real HTTP app under uvicorn, real sockets.

`POST /webhooks/rivya` needs no token (Rivya cannot send one), so what it reads must be bounded
before it is verified (issue 23 items 1 and 2), and what it answers must hold up when a test
checks it against planted bugs (item 19): the event id is recorded before the answer, so a replay
says ``duplicate``; a signed test event changes no task; the 1 MiB cap is real. Every refusal here
comes with the legitimate delivery still working.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from rivya_mcp.journal import TaskJournal
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, sign, start_sandbox
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import MAX_DELIVERY_BYTES
from rivya_mcp.transport import build_http_app
from tests.server._threaded import ThreadedServer
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

# How long a stranger's body may take to arrive on a token-exempt route (transport/_http.py).
BODY_SECONDS = 10.0


@dataclass
class Hooked:
    url: str
    settings: Settings
    sandbox: RunningSandbox

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/rivya"

    def secret(self) -> str:
        path = Path(self.settings.data_dir) / "journal.sqlite3"
        with TaskJournal(path, upstream=self.settings.base_url, api_key=self.settings.api_key) as journal:
            raw = journal.owned_meta("webhook_endpoint")
        assert raw is not None
        return str(json.loads(raw)["secret"])

    def status_of(self, task_id: str) -> str:
        path = Path(self.settings.data_dir) / "journal.sqlite3"
        with TaskJournal(path, upstream=self.settings.base_url, api_key=self.settings.api_key) as journal:
            entry = journal.get(task_id)
        assert entry is not None
        return entry.status


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    config = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3, webhooks_allow_loopback=True)
    with start_sandbox(config) as sandbox:
        sock = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = settings_for(sandbox, tmp_path_factory.mktemp("hooked"), public_url=url)
        with ThreadedServer(build_http_app(settings, transport="http"), sock=sock) as server:
            deadline = time.monotonic() + 30
            while httpx2.get(f"{server.base_url}/readyz").json().get("webhooks") != "verified":
                assert time.monotonic() < deadline, "the webhook endpoint never verified"
                time.sleep(0.05)  # the app starts in another thread: nothing to await
            yield Hooked(url, settings, sandbox)


def _signed(
    secret: str, event: dict[str, Any], *, stamp: str | None = None, pad: int = 0
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({**event, **({"pad": "x" * pad} if pad else {})}).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": event["id"],
        "webhook-timestamp": stamp if stamp is not None else str(timestamp),
        "webhook-signature": sign(secret, event["id"], timestamp, body),
    }
    return body, headers


def _post(hooked: Hooked, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    # As bytes: a header may carry what no ASCII string can (`²`), as an attacker's request may.
    raw = {name: value.encode() for name, value in headers.items()}
    return httpx2.post(hooked.webhook_url, content=body, headers=raw, timeout=30)


async def _running_task(hooked: Hooked, prompt: str) -> dict[str, Any]:
    async with Client(f"{hooked.url}/mcp") as client:
        started = await client.call_tool(
            "generate_image", {"prompt": f"{prompt} [sandbox:seconds=60]", "wait_seconds": 0}
        )
    data: dict[str, Any] = started.structured_content or {}
    assert data["status"] in ("queued", "processing"), data
    return data


def _failed(task_id: str) -> dict[str, Any]:
    return {"id": task_id, "status": "failed", "result": None, "error": {"code": "generation_failed", "message": "x"}}


async def test_a_replayed_delivery_is_answered_duplicate_because_it_was_recorded_first(hooked: Hooked) -> None:
    task = await _running_task(hooked, "A replayed delivery")
    event = {"id": "evt_replay_route_1", "type": "generation.failed", "data": _failed(task["task_id"])}
    body, headers = _signed(hooked.secret(), event)
    first = _post(hooked, body, headers)
    assert (first.status_code, first.json()) == (200, {"received": True})
    # The same bytes again (Rivya retrying, or someone replaying them): acknowledged, never applied twice.
    again = _post(hooked, body, headers)
    assert (again.status_code, again.json()) == (200, {"received": True, "duplicate": True})
    deadline = time.monotonic() + 10
    while hooked.status_of(task["task_id"]) != "failed":  # the first one was applied, after its answer
        assert time.monotonic() < deadline
        time.sleep(0.05)  # the app's background task, in another thread


async def test_a_signed_test_event_naming_a_real_task_changes_nothing(hooked: Hooked) -> None:
    task = await _running_task(hooked, "A task a test event names")
    secret = hooked.secret()
    for index, event in enumerate(
        [
            {"type": "generation.failed", "test": True, "data": _failed(task["task_id"])},
            {"type": "webhook.test", "data": _failed(task["task_id"])},
        ]
    ):
        body, headers = _signed(secret, {"id": f"evt_test_names_task_{index}", **event})
        answer = _post(hooked, body, headers)
        assert (answer.status_code, answer.json()) == (200, {"received": True})
    time.sleep(0.5)  # gives a wrong application (run after the answer) its time
    assert hooked.status_of(task["task_id"]) == task["status"]
    # The same event without the test mark is applied: the test above can fail.
    body, headers = _signed(secret, {"id": "evt_test_names_task_real", "type": "generation.failed",
                                     "data": _failed(task["task_id"])})  # fmt: skip
    assert _post(hooked, body, headers).status_code == 200
    deadline = time.monotonic() + 10
    while hooked.status_of(task["task_id"]) != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("stamp", ["9" * 5000, "²", "١٢٣", "1e9", "-1", ""])
async def test_a_malformed_timestamp_is_refused_like_a_bad_signature(hooked: Hooked, stamp: str) -> None:
    event = {"id": "evt_bad_stamp", "type": "generation.succeeded", "data": {"id": "task_x", "status": "succeeded"}}
    body, headers = _signed(hooked.secret(), event, stamp=stamp)
    refused = _post(hooked, body, headers)
    assert refused.status_code == 401, refused.text  # never a 500 with a traceback
    body, headers = _signed(hooked.secret(), {**event, "id": f"evt_good_stamp_{len(stamp)}"})
    assert _post(hooked, body, headers).status_code == 200


async def test_the_delivery_cap_holds_with_and_without_a_content_length(hooked: Hooked) -> None:
    secret = hooked.secret()
    event = {"id": "evt_big", "type": "generation.succeeded", "data": {"id": "task_big", "status": "succeeded"}}
    # Just under the cap, signed: a legitimate (if odd) delivery is read and verified.
    body, headers = _signed(secret, event, pad=MAX_DELIVERY_BYTES - 300)
    assert len(body) <= MAX_DELIVERY_BYTES
    assert _post(hooked, body, headers).status_code == 200
    # One byte over, declared: refused on the header.
    body, headers = _signed(secret, {**event, "id": "evt_big_2"}, pad=MAX_DELIVERY_BYTES)
    assert len(body) > MAX_DELIVERY_BYTES
    assert _post(hooked, body, headers).status_code == 413

    # Over, chunked (no Content-Length): refused once the cap is passed, without reading the rest.
    def chunks() -> Iterator[bytes]:
        yield body

    assert httpx2.post(hooked.webhook_url, content=chunks(), headers=headers, timeout=30).status_code == 413


def _raw(hooked: Hooked) -> socket.socket:
    host, port = hooked.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pass
    return received


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(hooked: Hooked) -> None:
    for path in ("/webhooks/rivya", "/healthz", "/token", "/nowhere"):
        with _raw(hooked) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {hooked.url.removeprefix('http://')}\r\n"
                "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n".encode()
            )
            started = time.monotonic()
            answer = _response(sock, 5)  # none of the 300 MB was sent: the answer comes anyway, and the socket closes
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
            assert time.monotonic() - started < 3


@pytest.mark.timeout(90)
async def test_slow_bodies_are_cut_off_and_deliveries_still_work(hooked: Hooked) -> None:
    host = hooked.url.removeprefix("http://")
    drips: list[socket.socket] = []
    try:
        for index in range(50):
            sock = _raw(hooked)
            path = "/webhooks/rivya" if index % 2 == 0 else "/token"
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Content-Length: 1000\r\n\r\n{".encode()
            )
            sock.setblocking(False)
            drips.append(sock)
        started = time.monotonic()
        closed: set[int] = set()
        answers: dict[int, bytes] = {}
        delivered = False
        while len(closed) < len(drips) and time.monotonic() - started < 30:
            for index, sock in enumerate(drips):
                if index in closed:
                    continue
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    try:
                        sock.send(b" ")  # a byte every 2 s, as a slowloris does
                    except OSError:
                        closed.add(index)
                    continue
                except OSError:
                    closed.add(index)
                    continue
                if chunk:
                    answers[index] = answers.get(index, b"") + chunk
                else:
                    closed.add(index)
            if not delivered:
                # Meanwhile a real delivery is read, verified and answered at once.
                event = {"id": "evt_during_drip", "type": "generation.succeeded",
                         "data": {"id": "task_elsewhere", "status": "succeeded"}}  # fmt: skip
                body, headers = _signed(hooked.secret(), event)
                assert _post(hooked, body, headers).status_code == 200
                delivered = True
            time.sleep(2)  # the drip's own pace: a wall clock on purpose, the server's deadline is real time
        took = time.monotonic() - started
        assert len(closed) == len(drips), f"{len(drips) - len(closed)} slow connections still open after {took:.0f} s"
        assert took < BODY_SECONDS + 8
        # The webhook route was reading: cut off by the deadline. /token is not served here (no
        # sign-in configured): answered at once, and hung up on instead of waiting for the rest.
        for index, answer in answers.items():
            expected = b"HTTP/1.1 408" if index % 2 == 0 else b"HTTP/1.1 404"
            assert answer.startswith(expected), (index, answer[:60])
        assert len(answers) == len(drips)
    finally:
        for sock in drips:
            sock.close()


async def test_an_endpoint_rivya_refuses_is_said_and_polling_keeps_the_documented_pace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the sandbox's loopback permission, Rivya refuses our URL (webhook_url_rejected, as
    # the real API refuses anything but public HTTPS): registration fails at start.
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)) as sandbox:
        sock = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        settings = settings_for(sandbox, tmp_path, public_url=url, poll_scale=1.0)
        with ThreadedServer(build_http_app(settings, transport="http"), sock=sock) as server:
            deadline = time.monotonic() + 30
            while (ready := httpx2.get(f"{server.base_url}/readyz").json()).get("webhooks") != "unverified":
                assert time.monotonic() < deadline, ready
                time.sleep(0.05)  # the app starts in another thread: nothing to await
            assert ready == {"status": "ok", "webhooks": "unverified"}
            runtime_pace = httpx2.get(f"{server.base_url}/healthz").json()
            assert runtime_pace == {"status": "ok"}  # liveness says nothing more
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "webhooks" in r.getMessage()]
    assert any("not registered" in w and "webhook_url_rejected" in w and "documented pace" in w for w in warnings)
