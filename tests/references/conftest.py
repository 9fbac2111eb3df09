"""Image fixtures and a loopback HTTP server for the reference loader's tests."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from rivya_mcp.manifest import UploadPolicy, get_manifest


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims ``width``×``height``: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture
def policy() -> UploadPolicy:
    return get_manifest("flux-kontext-max").upload


@pytest.fixture
def small_policy(policy: UploadPolicy) -> UploadPolicy:
    """The real policy with a 64 KB cap, so size tests stay fast."""
    return UploadPolicy(max_files=1, kinds=policy.kinds, max_bytes=64_000, mime_types=policy.mime_types)


@dataclass
class LoopbackServer:
    base: str  # "http://127.0.0.1:PORT"
    port: int
    seen_headers: list[dict[str, str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


PNG = image_bytes("PNG")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # bodies end when the connection closes; no keep-alive games

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        self.server.owner.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        try:
            getattr(self, "route_" + split.path.strip("/").replace("-", "_").replace(".", "_"), self.route_missing)(
                query
            )
        except (BrokenPipeError, ConnectionResetError):
            pass

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {"Content-Type": "image/png", "Content-Length": str(len(body))}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def route_missing(self, query: dict[str, str]) -> None:
        self.send(404, b"not found", {"Content-Type": "text/plain"})

    def route_img_png(self, query: dict[str, str]) -> None:
        self.send(200, PNG)

    def route_page(self, query: dict[str, str]) -> None:
        self.send(200, b"<!DOCTYPE html><html><body>hi</body></html>", {"Content-Type": "text/html"})

    def route_redirect(self, query: dict[str, str]) -> None:
        self.send(302, b"", {"Location": query["to"], "Content-Length": "0"})

    def route_loop(self, query: dict[str, str]) -> None:
        self.send(302, b"", {"Location": "/loop", "Content-Length": "0"})

    def route_big(self, query: dict[str, str]) -> None:
        # No Content-Length: the cap must hold mid-stream.
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG[:16])
        for _ in range(200):
            self.wfile.write(b"\0" * 8192)

    def route_big_declared(self, query: dict[str, str]) -> None:
        self.send(200, PNG, {"Content-Type": "image/png", "Content-Length": str(50_000_000)})

    def route_gzip(self, query: dict[str, str]) -> None:
        body = zlib.compress(PNG)
        self.send(200, body, {"Content-Encoding": "deflate", "Content-Length": str(len(body))})

    def route_slow(self, query: dict[str, str]) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(PNG[:16])
        self.wfile.flush()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # a byte every 50 ms: never idle long, never done
            time.sleep(0.05)
            self.wfile.write(b"\0")
            self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up on purpose is not a test failure


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    port = server.server_address[1]
    server.owner = LoopbackServer(base=f"http://127.0.0.1:{port}", port=port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.owner
    finally:
        server.shutdown()
        server.server_close()
