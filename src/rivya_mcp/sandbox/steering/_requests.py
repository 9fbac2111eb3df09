"""The sandbox's request log (control surface, not part of the Rivya API): when each API request
arrived, when its answer was sent, and its status.

``GET /_sandbox/requests`` lists ``[{method, path, start, end, status}]`` (wall-clock epoch
seconds, oldest first); ``DELETE`` clears it. Tests and benchmarks check the client's pace from
the sandbox's side with it: a status request the client never sent cannot appear here, and one it
sent cannot be hidden. The log wraps the fault middleware, so injected faults are logged too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rivya_mcp.sandbox._routes import ok

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# The most recent requests kept; older ones are dropped (a long-running sandbox stays small).
MAX_LOGGED_REQUESTS = 10_000


class RequestLog:
    """Thread-safe, bounded record of API requests."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            return sorted((dict(r) for r in self._records), key=lambda r: float(r["start"]))

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


class RequestLogMiddleware:
    """Records every ``/api/`` request; everything else passes untouched."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "start": self.log.clock()}

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            record["end"] = self.log.clock()
            record.setdefault("status", None)  # dropped before an answer started
            self.log.add(record)


async def requests_route(request: Request) -> Response:
    log: RequestLog = request.app.state.request_log
    if request.method == "DELETE":
        log.clear()
    return ok({"requests": log.records()})


def request_log_routes() -> list[Route]:
    return [Route("/_sandbox/requests", requests_route, methods=["GET", "DELETE"])]
