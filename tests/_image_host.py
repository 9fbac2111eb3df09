"""A loopback HTTP server that is *not* the sandbox, for tests of what the server fetches from where.

It serves ``/img.png`` (a small whole PNG, ``image_bytes("PNG")``), ``/redirect?to=…`` (a 302 to
anywhere), ``/loop`` (a 302 to itself) and 404 otherwise, and records every path asked for.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 140, 200)).save(buffer, format=fmt)
    return buffer.getvalue()


def is_saved_whole(saved: bytes, served: bytes, task_id: str) -> bool:
    """``saved`` is the ``served`` image as the server saves it: the same pixels, with the task's
    provenance packet (XMP naming ``task_id``) added (docs/provenance.md), not a cut-short body."""
    with Image.open(io.BytesIO(saved)) as on_disk, Image.open(io.BytesIO(served)) as original:
        same_pixels = on_disk.size == original.size and on_disk.tobytes() == original.tobytes()
        xmp = on_disk.info.get("xmp") or on_disk.info.get("XML:com.adobe.xmp") or b""
    packet = xmp.encode() if isinstance(xmp, str) else bytes(xmp)
    return same_pixels and task_id.encode() in packet


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
