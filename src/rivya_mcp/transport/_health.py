"""``/healthz`` and ``/readyz`` for a load balancer, answered before the bearer-token check.

- ``/healthz``: the process serves HTTP (liveness; restart it when this fails).
- ``/readyz``: it can do its work. With a shared database: the database answers and this
  replica's LISTEN connection is in place (send it traffic only then). Without: same as healthz.
  With a public URL it also says what webhook completion is doing, ``"webhooks"``: ``verifying``
  (at start), ``verified`` (deliveries verify: polling is the slow fallback) or ``unverified``
  (no known signature convention verifies them, none arrived, or the endpoint could not be
  registered: tasks finish by polling at the documented pace; the start's WARNING says why). An
  unverified webhook does not make the server unready: it works, by polling.

Neither says anything a caller could use: no versions, no counts, no error text (that goes to the log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from rivya_mcp.tasks import Runtime

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
READY_CHECK_SECONDS = 3.0


async def is_ready(runtime: Runtime) -> bool:
    if runtime.settings.database_url is None:
        return True
    coordinator = runtime.coordinator
    if coordinator is None or not coordinator.listening.is_set():
        return False
    try:
        with anyio.fail_after(READY_CHECK_SECONDS):
            await coordinator.ping()
    except Exception as exc:
        log.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


class HealthMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path not in (HEALTH_PATH, READY_PATH) or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        ok = True if path == HEALTH_PATH else await is_ready(self.runtime)
        answer = {"status": "ok" if ok else "unavailable"}
        if path == READY_PATH and self.runtime.webhooks != "off":
            answer["webhooks"] = self.runtime.webhooks
        body = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200 if ok else 503,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body if scope.get("method") == "GET" else b""})
