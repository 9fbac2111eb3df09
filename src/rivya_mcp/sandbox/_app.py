"""``create_app``: the sandbox as one Starlette app whose state lives in ``app.state.sandbox``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from rivya_mcp.sandbox._config import SandboxConfig
from rivya_mcp.sandbox._errors import SandboxError, error_response
from rivya_mcp.sandbox._routes import api_routes
from rivya_mcp.sandbox._state import SandboxState
from rivya_mcp.sandbox.steering._clock import Clock
from rivya_mcp.sandbox.steering._control import control_routes
from rivya_mcp.sandbox.steering._faults import ConnectionDropped, FaultMiddleware
from rivya_mcp.sandbox.steering._requests import RequestLog, RequestLogMiddleware, request_log_routes
from rivya_mcp.sandbox.webhooks._delivery import WebhookDispatcher
from rivya_mcp.sandbox.webhooks._routes import webhook_routes

logger = logging.getLogger("rivya_mcp.sandbox")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _sandbox_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SandboxError)
    if exc.status >= 500 or exc.status == 429:
        logger.info("%s %s → %d %s", request.method, request.url.path, exc.status, exc.code)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers, extras=_extras(request))


def _extras(request: Request) -> dict[str, Any]:
    state: SandboxState = request.app.state.sandbox
    return state.profile.error_extras()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "validation_failed" if exc.status_code < 500 else "internal_error")
    message = "No such endpoint." if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}), extras=_extras(request))


async def _internal_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConnectionDropped):
        # A deliberate drop fault: the response has started, so this answer is never sent.
        return Response(status_code=500)
    if isinstance(exc, ClientDisconnect):
        # Sandbox decision: a client that leaves before its request body is complete (e.g. an
        # upload abandoned because the image failed its check) gets nothing done: no file, no task.
        logger.info(
            "%s %s: the client left before the body was complete; nothing done", request.method, request.url.path
        )
        return Response(status_code=400)  # never read: there is no one left to answer
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "The sandbox hit an internal error.")


def create_app(config: SandboxConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A fresh sandbox. ``clock`` (seconds since the epoch) replaces wall time, e.g. a ``ManualClock``."""
    state = SandboxState(config, clock=clock)
    request_log = RequestLog()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Webhook deliveries go out from the server's own event loop, for as long as it serves.
        async with anyio.create_task_group() as group:
            group.start_soon(WebhookDispatcher(state).run)
            yield
            group.cancel_scope.cancel()

    app = Starlette(
        routes=[*api_routes(), *webhook_routes(), *control_routes(), *request_log_routes()],
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLogMiddleware, log=request_log),  # outermost: faulted requests are logged too
            Middleware(
                FaultMiddleware,
                take=state.take_fault,
                retry_after=state.retry_after_header,
                error_extras=lambda: state.profile.error_extras(),
            ),
        ],
        exception_handlers={SandboxError: _sandbox_error, HTTPException: _http_error, Exception: _internal_error},
    )
    app.state.sandbox = state
    app.state.request_log = request_log
    return app
