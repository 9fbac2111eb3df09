"""A short-lived receiver for the doctor's webhook test delivery.

It listens on one address for as long as the check runs, records the first POST to its one path
(headers and raw body, capped), answers 200, and is gone when the check ends. The public URL must
route to it: see docs/doctor.md for the limits (stop the server, or name a port with ``--listen``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)

# A test event is a few hundred bytes: anything far larger is not one.
MAX_DELIVERY_BYTES = 256 * 1024
STARTUP_SECONDS = 10.0


@dataclass
class Delivery:
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class Receiver:
    """What arrived. ``arrived`` is set by the first delivery."""

    path: str
    deliveries: list[Delivery] = field(default_factory=list)
    arrived: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_DELIVERY_BYTES:
                return JSONResponse({"error": "payload too large"}, status_code=413)
        self.deliveries.append(Delivery(list(request.headers.items()), body))
        self.arrived.set()
        return JSONResponse({"received": True})


class ListenError(OSError):
    """The receiver could not listen on the address it was given."""


@asynccontextmanager
async def receiving(host: str, port: int, path: str) -> AsyncIterator[Receiver]:
    """Serve ``path`` on ``host:port`` until the block ends; raises ``ListenError`` if it cannot bind."""
    receiver = Receiver(path)
    app = Starlette(routes=[Route(path, receiver.handle, methods=["POST"])])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="off"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(STARTUP_SECONDS):
            while not server.started:
                await anyio.sleep(0.01)  # uvicorn has no start event to await
        try:
            yield receiver
        finally:
            server.should_exit = True
    sock.close()
