"""A streamed result download with no Content-Length: exactly the cap passes, one byte over fails.

Issue 14 item 19. A real HTTP server on loopback sends the body in pieces that do not line up
with the cap, either until the connection closes (HTTP/1.0) or chunked (HTTP/1.1), so only the
count of bytes as they arrive can enforce the limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rivya_mcp.client import AsyncRivyaClient, DownloadError

pytestmark = pytest.mark.anyio

CAP = 100_000
PIECE = 7_919  # a prime: no piece boundary falls on the cap


class _Streamer(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        size = int(self.path.rsplit("/", 1)[1])
        chunked = self.path.startswith("/chunked/")
        self.protocol_version = "HTTP/1.1" if chunked else "HTTP/1.0"
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = bytes(i % 251 for i in range(size))
        try:
            for start in range(0, size, PIECE):
                piece = body[start : start + PIECE]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at the cap
        self.close_connection = True


@pytest.fixture(scope="module")
def streamer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Streamer)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("framing", ["close", "chunked"])
async def test_exactly_the_cap_is_downloaded_whole(streamer: str, framing: str) -> None:
    async with AsyncRivyaClient(api_key="rvya_sk_test_download_cap_000", base_url=streamer, max_retries=0) as client:
        data = await client.download(f"{streamer}/{framing}/{CAP}", max_bytes=CAP)
    assert data == bytes(i % 251 for i in range(CAP))


@pytest.mark.parametrize("framing", ["close", "chunked"])
async def test_one_byte_over_the_cap_is_refused(streamer: str, framing: str) -> None:
    async with AsyncRivyaClient(api_key="rvya_sk_test_download_cap_000", base_url=streamer, max_retries=0) as client:
        with pytest.raises(DownloadError) as refused:
            await client.download(f"{streamer}/{framing}/{CAP + 1}", max_bytes=CAP)
    assert f"larger than the {CAP}-byte limit" in str(refused.value)
    assert refused.value.retryable is False
