"""Uploads whose last bytes wait for a check (``upload_file(confirm=...)``).

The promise: while ``confirm`` has not returned, the server has not received a whole request; if
it raises, the request is abandoned mid-body, the exception reaches the caller as is, and nothing
is retried. Proven on the stream itself, on a raw loopback socket that counts the bytes it
receives, and against the sandbox over loopback HTTP (no file is stored).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio
import httpx2
import pytest
from PIL import Image

from rivya_mcp.client import HELD_BYTES, AsyncRivyaClient, GatedStream
from rivya_mcp.sandbox import start_sandbox

from .conftest import API_KEY
from .test_files import PNG_HEADER, file_body

pytestmark = pytest.mark.anyio

KIB = 1024


class Chunks(httpx2.AsyncByteStream):
    def __init__(self, sizes: list[int]) -> None:
        self.chunks = [bytes([n % 251]) * size for n, size in enumerate(sizes)]
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def aclose(self) -> None:
        self.closed = True


class Refused(Exception):
    pass


async def released_before_confirm(sizes: list[int], held_bytes: int) -> tuple[list[int], list[int]]:
    """(chunk sizes yielded before ``confirm`` was awaited, chunk sizes yielded after it)."""
    out: list[int] = []
    before: list[int] = []

    async def confirm() -> None:
        before.extend(out)

    async for chunk in GatedStream(Chunks(sizes), confirm, held_bytes=held_bytes):
        out.append(len(chunk))
    return before, out[len(before) :]


@pytest.mark.parametrize(
    ("sizes", "held_bytes", "before", "after"),
    [
        # A multipart body as httpx2 encodes it: boundary, part headers, 64 KiB file chunks, CRLF, closing boundary.
        (
            [40, 90, 64 * KIB, 64 * KIB, 64 * KIB, 10 * KIB, 2, 40],
            128 * KIB,
            [40, 90, 64 * KIB],
            [64 * KIB, 64 * KIB, 10 * KIB, 2, 40],
        ),
        # Smaller than the tail: nothing leaves before the go-ahead.
        ([40, 90, 5000, 2, 40], 128 * KIB, [], [40, 90, 5000, 2, 40]),
        # One chunk larger than the tail: held whole (correct, just no overlap).
        ([200 * KIB], 128 * KIB, [], [200 * KIB]),
        # Exactly the tail held back once the rest is released.
        ([10, 10, 10, 10], 20, [10, 10], [10, 10]),
        ([10, 10, 10, 10], 1, [10, 10, 10], [10]),
        # Empty chunks are dropped.
        ([0, 10, 0, 10], 5, [10], [10]),
        ([], 5, [], []),
    ],
)  # fmt: skip
async def test_only_the_tail_waits_for_the_go_ahead(
    sizes: list[int], held_bytes: int, before: list[int], after: list[int]
) -> None:
    assert await released_before_confirm(sizes, held_bytes) == (before, after)


async def test_a_refusal_stops_the_stream_before_the_tail() -> None:
    out: list[bytes] = []

    async def confirm() -> None:
        raise Refused

    inner = Chunks([64 * KIB] * 4)
    stream = GatedStream(inner, confirm, held_bytes=HELD_BYTES)
    with pytest.raises(Refused):
        async for chunk in stream:
            out.append(chunk)
    assert sum(map(len, out)) == 2 * 64 * KIB  # the last 128 KiB were never yielded
    await stream.aclose()
    assert inner.closed


def test_the_tail_must_be_positive() -> None:
    with pytest.raises(ValueError, match="held_bytes"):
        GatedStream(Chunks([]), lambda: anyio.sleep(0), held_bytes=0)


# --- on a raw loopback socket ------------------------------------------------------------------


@dataclass
class Received:
    declared: int
    body: int
    complete: bool


@dataclass
class RawServer:
    """A bare HTTP/1.1 listener: records how much of each request body arrived before the peer left."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    confirm_saw: list[int] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                declared = int(headers["content-length"])
                received = 0
                while received < declared:
                    chunk = await reader.read(min(65536, declared - received))
                    if not chunk:
                        break
                    received += len(chunk)
                self.requests.append(Received(declared, received, received == declared))
                if received < declared:
                    return
                payload = json.dumps(file_body()).encode()
                writer.write(
                    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    def received_so_far(self) -> int:
        return sum(r.body for r in self.requests)


@pytest.fixture
async def raw_server() -> AsyncIterator[RawServer]:
    recorder = RawServer()
    server = await asyncio.start_server(recorder.handle, "127.0.0.1", 0)
    recorder.port = server.sockets[0].getsockname()[1]
    async with server:
        yield recorder


async def _settle(server: RawServer, count: int) -> None:
    with anyio.fail_after(5):
        while len(server.requests) < count:
            await anyio.sleep(0.01)


async def test_a_refused_upload_never_reaches_the_server_whole(raw_server: RawServer) -> None:
    data = PNG_HEADER + b"\xab" * (2 * 1024 * 1024)
    refusal = Refused("the image is truncated")
    confirmed = 0

    async def confirm() -> None:
        nonlocal confirmed
        confirmed += 1
        raise refusal

    async with AsyncRivyaClient(API_KEY, f"http://127.0.0.1:{raw_server.port}", max_retries=3) as client:
        with pytest.raises(Refused) as caught:
            await client.upload_file(data, kind="image", filename="ref.png", confirm=confirm)
    assert caught.value is refusal and confirmed == 1
    await _settle(raw_server, 1)
    (request,) = raw_server.requests  # one attempt, never retried
    assert not request.complete
    # Everything but the held tail may have left; the tail never did.
    assert request.body <= request.declared - HELD_BYTES


async def test_a_confirmed_upload_arrives_whole_after_the_check(raw_server: RawServer) -> None:
    data = PNG_HEADER + b"\xab" * (2 * 1024 * 1024)

    async with AsyncRivyaClient(API_KEY, f"http://127.0.0.1:{raw_server.port}") as client:

        async def confirm() -> None:
            # Let the event loop push out what it may; the request must still be incomplete.
            await anyio.sleep(0.05)
            assert raw_server.requests == []

        uploaded = await client.upload_file(data, kind="image", filename="ref.png", confirm=confirm)
        assert uploaded.id == "file_123"
        # The same keep-alive connection serves the next request: a confirmed upload leaves it clean.
        await client.upload_file(PNG_HEADER, kind="image", filename="small.png")
    assert [r.complete for r in raw_server.requests] == [True, True]


# --- against the sandbox over loopback HTTP ---------------------------------------------------------


@pytest.fixture(scope="module")
def loopback_sandbox_url() -> Iterator[str]:
    with start_sandbox() as running:
        yield running.base_url


async def _stored_files(base_url: str) -> list[dict[str, object]]:
    async with httpx2.AsyncClient(base_url=base_url) as control:
        files: list[dict[str, object]] = (await control.get("/_sandbox/state")).json()["files"]
        return files


async def test_the_sandbox_stores_nothing_from_an_abandoned_upload(
    loopback_sandbox_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = io.BytesIO()
    Image.effect_noise((700, 700), 80).convert("RGB").save(buffer, format="PNG", compress_level=0)
    data = buffer.getvalue()
    assert len(data) > 4 * HELD_BYTES
    before = len(await _stored_files(loopback_sandbox_url))

    async def refuse() -> None:
        raise Refused

    async with AsyncRivyaClient(API_KEY, loopback_sandbox_url) as client:
        with caplog.at_level(logging.INFO), pytest.raises(Refused):
            await client.upload_file(data, kind="image", filename="ref.png", confirm=refuse)
        # The sandbox sees the client leave mid-body (an INFO line, not an error with a traceback).
        with anyio.fail_after(5):
            while not any("left before the body was complete" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.01)
        assert len(await _stored_files(loopback_sandbox_url)) == before
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

        async def accept() -> None:
            await anyio.sleep(0)

        uploaded = await client.upload_file(data, kind="image", filename="ref.png", confirm=accept)
        assert uploaded.size == len(data)
        assert await client.download(uploaded.url, max_bytes=len(data)) == data
    assert len(await _stored_files(loopback_sandbox_url)) == before + 1
