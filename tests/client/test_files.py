"""Uploads (streamed from disk, re-sent whole on retry) and result downloads (capped, keyless)."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx2
import pytest

from rivya_mcp.client import (
    MAX_DOWNLOAD_REDIRECTS,
    DownloadError,
    DownloadHop,
    DownloadRefusedError,
    InvalidRequestError,
    ResultExpiredError,
    RivyaFile,
    UploadTooLargeError,
)

from .conftest import API_KEY, ClientFactory, FakeTime, error_body

PNG_HEADER = b"\x89PNG\r\n\x1a\n"


def file_body(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "file_123",
        "object": "file",
        "url": "https://files.rivya.test/file_123.png",
        "kind": "image",
        "name": "ref.png",
        "mimeType": "image/png",
        "size": 1234,
        "created_at": "2026-05-11T00:00:00.000Z",
    }
    body.update(extra)
    return body


class StreamingTransport(httpx2.AsyncBaseTransport):
    """Reads each request body chunk by chunk (as a socket would), keeping only what it is told to.

    ``MockTransport`` reads the whole body into memory first, which would hide whether the
    client streams; this transport does not.
    """

    def __init__(self, respond: Callable[[int, httpx2.Request, bytes], httpx2.Response], *, keep: bool) -> None:
        self.respond = respond
        self.keep = keep
        self.attempts = 0
        self.chunk_sizes: list[int] = []
        self.digests: list[str] = []
        self.bodies: list[bytes] = []
        self.requests: list[httpx2.Request] = []
        self.fail_mid_stream_on: set[int] = set()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.attempts += 1
        self.requests.append(request)
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        digest = hashlib.sha256()
        kept = bytearray()
        async for chunk in request.stream:
            self.chunk_sizes.append(len(chunk))
            digest.update(chunk)
            if self.keep:
                kept += chunk
            if self.attempts in self.fail_mid_stream_on:
                raise httpx2.WriteError("connection reset while sending the body")
        self.digests.append(digest.hexdigest())
        self.bodies.append(bytes(kept))
        return self.respond(self.attempts, request, bytes(kept))


def _part(body: bytes, name: str) -> bytes:
    """The value of one multipart field."""
    marker = f'name="{name}"'.encode()
    start = body.index(marker)
    start = body.index(b"\r\n\r\n", start) + 4
    end = body.index(b"\r\n--", start)
    return body[start:end]


@pytest.mark.anyio
async def test_upload_bytes_sends_the_documented_multipart_fields(make_client: ClientFactory) -> None:
    data = PNG_HEADER + b"pixels"
    transport = StreamingTransport(lambda n, request, body: httpx2.Response(201, json=file_body()), keep=True)
    client = make_client(transport=transport)

    uploaded = await client.upload_file(
        data, kind="image", filename="ref.png", model="flux-kontext-max", client_request_id="trace-7"
    )

    assert isinstance(uploaded, RivyaFile) and uploaded.id == "file_123"
    (request,) = transport.requests
    assert request.url == "https://api.rivya.test/api/v1/files"
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Idempotency-Key"].startswith("rivya-mcp-")
    body = transport.bodies[0]
    assert _part(body, "file") == data
    assert _part(body, "kind") == b"image"
    assert _part(body, "model") == b"flux-kontext-max"
    assert _part(body, "client_request_id") == b"trace-7"
    assert b'filename="ref.png"' in body and b"Content-Type: image/png" in body


@pytest.mark.anyio
async def test_upload_leaves_out_optional_fields(make_client: ClientFactory) -> None:
    transport = StreamingTransport(lambda n, request, body: httpx2.Response(201, json=file_body()), keep=True)
    await make_client(transport=transport).upload_file(PNG_HEADER, kind="image")
    body = transport.bodies[0]
    assert b'name="model"' not in body and b'name="client_request_id"' not in body
    assert b'filename="upload"' in body


@pytest.mark.anyio
async def test_a_path_is_streamed_from_disk_not_read_into_memory(make_client: ClientFactory, tmp_path: Path) -> None:
    size = 8 * 1024 * 1024
    path = tmp_path / "big.png"
    with path.open("wb") as handle:
        handle.write(PNG_HEADER)
        for _ in range(size // 65536):
            handle.write(b"\xab" * 65536)
    expected_size = path.stat().st_size
    transport = StreamingTransport(lambda n, request, body: httpx2.Response(201, json=file_body()), keep=False)
    client = make_client(transport=transport)

    tracemalloc.start()
    try:
        await client.upload_file(path, kind="image")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < expected_size / 8, f"peak {peak} bytes for a {expected_size}-byte file"
    assert max(transport.chunk_sizes) <= 64 * 1024
    assert sum(transport.chunk_sizes) > expected_size
    request = transport.requests[0]
    assert int(request.headers["Content-Length"]) == sum(transport.chunk_sizes)  # size known up front


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["status", "mid-stream"])
async def test_a_retried_upload_resends_the_whole_file(
    make_client: ClientFactory, fake_time: FakeTime, tmp_path: Path, failure: str
) -> None:
    content = PNG_HEADER + bytes(range(256)) * 1024  # ~256 KiB: several chunks
    path = tmp_path / "ref.png"
    path.write_bytes(content)

    def respond(attempt: int, request: httpx2.Request, body: bytes) -> httpx2.Response:
        if attempt == 1:
            return httpx2.Response(503, json=error_body("internal_error"))
        return httpx2.Response(201, json=file_body())

    transport = StreamingTransport(respond, keep=True)
    if failure == "mid-stream":
        transport.fail_mid_stream_on = {1}
    client = make_client(transport=transport)

    await client.upload_file(path, kind="image")

    assert transport.attempts == 2 and len(fake_time.sleeps) == 1
    assert _part(transport.bodies[-1], "file") == content
    if failure == "status":
        assert _part(transport.bodies[0], "file") == content
    keys = {request.headers["Idempotency-Key"] for request in transport.requests}
    assert len(keys) == 1


@pytest.mark.anyio
async def test_max_bytes_refuses_before_sending(make_client: ClientFactory, tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    path.write_bytes(PNG_HEADER + b"\0" * 2000)
    transport = StreamingTransport(lambda n, request, body: httpx2.Response(201, json=file_body()), keep=False)
    client = make_client(transport=transport)
    with pytest.raises(UploadTooLargeError) as caught:
        await client.upload_file(path, kind="image", max_bytes=1000)
    with pytest.raises(UploadTooLargeError):
        await client.upload_file(b"\0" * 1001, kind="image", max_bytes=1000)
    assert "huge.png" in str(caught.value) and not caught.value.retryable
    assert transport.attempts == 0
    await client.upload_file(b"\0" * 1000, kind="image", max_bytes=1000)  # the limit itself is fine
    assert transport.attempts == 1


@pytest.mark.anyio
async def test_an_upload_refused_by_the_api_is_not_retried(make_client: ClientFactory) -> None:
    def respond(attempt: int, request: httpx2.Request, body: bytes) -> httpx2.Response:
        return httpx2.Response(400, json=error_body("validation_failed", "File type not allowed.", "req_up"))

    transport = StreamingTransport(respond, keep=False)
    with pytest.raises(InvalidRequestError) as caught:
        await make_client(transport=transport).upload_file(b"hello", kind="image", filename="fake.png")
    assert caught.value.request_id == "req_up"
    assert transport.attempts == 1


@pytest.mark.parametrize(
    "body",
    [
        {"id": "file_1", "url": "u", "mimeType": "image/png", "durationToken": "dt"},
        {"file_id": "file_1", "url": "u", "mime_type": "image/png", "duration_token": "dt"},
        {"file_id": "file_1", "url": "u", "mimeType": "image/png", "duration_token": "dt", "object": "file"},
    ],
)
def test_file_field_name_variants_are_all_accepted(body: dict[str, str]) -> None:
    parsed = RivyaFile.model_validate(body)
    assert (parsed.id, parsed.mime_type, parsed.duration_token) == ("file_1", "image/png", "dt")


def test_a_file_becomes_a_reference_item() -> None:
    parsed = RivyaFile.model_validate(file_body())
    assert parsed.as_reference_item() == {
        "url": "https://files.rivya.test/file_123.png",
        "kind": "image",
        "name": "ref.png",
        "mimeType": "image/png",
    }
    bare = RivyaFile.model_validate({"id": "f", "url": "u", "durationToken": "t", "durationSeconds": 3.5})
    assert bare.as_reference_item() == {"url": "u", "durationSeconds": 3.5, "durationToken": "t"}


@pytest.mark.anyio
async def test_get_file(make_client: ClientFactory) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        return httpx2.Response(200, json=file_body(file_id="file_123"))

    uploaded = await make_client(handler).get_file("file_123")
    assert uploaded.url.endswith("file_123.png")
    assert seen == ["/api/v1/files/file_123"]


# --- downloads -------------------------------------------------------------------------------


async def _chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield b"\xff" * step


@pytest.mark.anyio
async def test_download_returns_the_bytes_and_never_sends_the_key(make_client: ClientFactory) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=b"JPEGDATA", headers={"Content-Type": "image/jpeg"})

    # Even an injected HTTP client with an Authorization default must not leak it to a result URL.
    client = make_client(handler, headers={"Authorization": f"Bearer {API_KEY}"})
    data = await client.download("https://cdn.rivya.test/results/task_abc.jpg?sig=s3cr3t", max_bytes=1024)
    assert data == b"JPEGDATA"
    (request,) = seen
    assert "Authorization" not in request.headers
    assert "Idempotency-Key" not in request.headers


@pytest.mark.anyio
async def test_download_of_a_relative_url_joins_the_base_url(make_client: ClientFactory) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, content=b"x")

    await make_client(handler).download("/results/task_abc.png", max_bytes=10)
    assert seen == ["https://api.rivya.test/results/task_abc.png"]


@pytest.mark.anyio
@pytest.mark.parametrize("declared", [True, False])
async def test_download_stops_past_max_bytes(make_client: ClientFactory, declared: bool) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if declared:
            return httpx2.Response(200, content=b"\xff" * 5000)
        return httpx2.Response(200, content=_chunks(10 * 1024 * 1024))  # no Content-Length

    with pytest.raises(DownloadError) as caught:
        await make_client(handler).download("https://cdn.rivya.test/r.png", max_bytes=4096)
    assert "4096-byte limit" in str(caught.value) and not caught.value.retryable
    assert not isinstance(caught.value, ResultExpiredError)


@pytest.mark.anyio
async def test_download_at_exactly_max_bytes_is_fine(make_client: ClientFactory) -> None:
    client = make_client(lambda request: httpx2.Response(200, content=_chunks(4096, 1000)))
    assert len(await client.download("https://cdn.rivya.test/r.png", max_bytes=4096)) == 4096


@pytest.mark.anyio
@pytest.mark.parametrize("status", [403, 404, 410])
async def test_an_expired_result_url_says_so(make_client: ClientFactory, fake_time: FakeTime, status: int) -> None:
    calls: list[int] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(status)
        return httpx2.Response(status, text="expired")

    with pytest.raises(ResultExpiredError) as caught:
        await make_client(handler).download("https://cdn.rivya.test/r.png?sig=abc", max_bytes=1024)
    assert caught.value.status_code == status and not caught.value.retryable
    assert "expired" in str(caught.value)
    assert len(calls) == 1 and fake_time.sleeps == []


@pytest.mark.anyio
async def test_download_retries_transient_failures(make_client: ClientFactory, fake_time: FakeTime) -> None:
    answers: list[httpx2.Response | Exception] = [
        httpx2.ConnectError("refused"),
        httpx2.Response(503, headers={"Retry-After": "2"}),
        httpx2.Response(200, content=b"ok"),
    ]

    def handler(request: httpx2.Request) -> httpx2.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await make_client(handler).download("https://cdn.rivya.test/r.png", max_bytes=10) == b"ok"
    assert len(fake_time.sleeps) == 2 and fake_time.sleeps[1] == 2.0


@pytest.mark.anyio
async def test_download_gives_up_on_a_persistent_server_error(make_client: ClientFactory) -> None:
    client = make_client(lambda request: httpx2.Response(500), max_retries=1)
    with pytest.raises(DownloadError) as caught:
        await client.download("https://cdn.rivya.test/r.png", max_bytes=10)
    assert caught.value.status_code == 500 and caught.value.retryable


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://cdn.rivya.test/r.png"])
async def test_download_refuses_non_http_urls(make_client: ClientFactory, url: str) -> None:
    client = make_client(lambda request: httpx2.Response(200, content=b"x"))
    with pytest.raises(DownloadError):
        await client.download(url, max_bytes=10)


@pytest.mark.anyio
async def test_download_logs_leave_out_signed_query_strings(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(lambda request: httpx2.Response(200, content=b"x"))
    with caplog.at_level("DEBUG", logger="rivya_mcp.client"):
        await client.download("https://cdn.rivya.test/r.png?X-Signature=s3cr3t", max_bytes=10)
    assert "s3cr3t" not in caplog.text and "cdn.rivya.test/r.png" in caplog.text


@pytest.mark.anyio
async def test_download_follows_redirects_by_hand_and_no_hop_sees_a_credential(make_client: ClientFactory) -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if request.url.host == "cdn.rivya.test":
            return httpx2.Response(302, headers={"Location": "https://store.rivya.test/r.png?sig=s3cr3t"})
        return httpx2.Response(200, content=b"ok")

    client = make_client(handler, headers={"Authorization": f"Bearer {API_KEY}", "Cookie": "session=1"})
    assert await client.download("https://cdn.rivya.test/r.png", max_bytes=10) == b"ok"
    assert [r.url.host for r in seen] == ["cdn.rivya.test", "store.rivya.test"]
    for request in seen:
        assert "Authorization" not in request.headers and "Cookie" not in request.headers


@pytest.mark.anyio
async def test_download_stops_past_the_redirect_limit_and_names_it(
    make_client: ClientFactory, fake_time: FakeTime
) -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(302, headers={"Location": f"/hop/{len(seen)}"})  # always somewhere new

    with pytest.raises(DownloadError) as caught:
        await make_client(handler).download("https://cdn.rivya.test/hop/0", max_bytes=10)
    assert f"more than {MAX_DOWNLOAD_REDIRECTS} times" in str(caught.value) and not caught.value.retryable
    assert len(seen) == MAX_DOWNLOAD_REDIRECTS + 1 and fake_time.sleeps == []


@pytest.mark.anyio
async def test_a_route_decides_every_hop_and_relative_redirects_keep_the_name(make_client: ClientFactory) -> None:
    """The route pins a hop to an address (as the SSRF rules do): the request goes there with the
    name in Host, and a relative Location is resolved against the name, then routed again."""
    asked: list[str] = []
    seen: list[tuple[str, str]] = []

    async def route(url: httpx2.URL) -> DownloadHop:
        asked.append(str(url))
        if url.host == "refused.rivya.test":
            raise DownloadRefusedError("the result URL points at refused.rivya.test, a loopback address")
        return DownloadHop(url.copy_with(host="192.0.2.7"), {"Host": url.netloc.decode()}, {})

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((str(request.url), request.headers["Host"]))
        if request.url.path == "/start":
            return httpx2.Response(302, headers={"Location": "/image.png"})
        if request.url.path == "/image.png":
            return httpx2.Response(200, content=b"ok")
        return httpx2.Response(302, headers={"Location": "http://refused.rivya.test/x"})

    client = make_client(handler)
    assert await client.download("https://cdn.rivya.test/start", max_bytes=10, route=route) == b"ok"
    assert asked == ["https://cdn.rivya.test/start", "https://cdn.rivya.test/image.png"]
    assert seen == [("https://192.0.2.7/start", "cdn.rivya.test"), ("https://192.0.2.7/image.png", "cdn.rivya.test")]

    asked.clear()
    seen.clear()
    with pytest.raises(DownloadRefusedError):
        await client.download("https://cdn.rivya.test/elsewhere", max_bytes=10, route=route)
    assert asked == ["https://cdn.rivya.test/elsewhere", "http://refused.rivya.test/x"]
    assert [url for url, _ in seen] == ["https://192.0.2.7/elsewhere"]  # nothing reached the refused hop


def test_file_body_round_trips_as_json() -> None:
    assert json.loads(json.dumps(file_body()))["mimeType"] == "image/png"
