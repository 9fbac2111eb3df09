"""How hosts reach the server: stdio, the HTTP app (Streamable HTTP at ``/mcp``, legacy SSE at
``/sse``), its Host/Origin and bearer-token guards, health checks and the webhook route."""

from __future__ import annotations

from rivya_mcp.settings import HostName, parse_host
from rivya_mcp.transport._health import HEALTH_PATH, READY_PATH, HealthMiddleware, is_ready
from rivya_mcp.transport._hosts import HostOriginMiddleware, HostPolicy, parse_allowed_host, parse_allowed_hosts
from rivya_mcp.transport._http import (
    MAX_REQUEST_BODY_BYTES,
    MCP_PATH,
    MESSAGES_PATH,
    SSE_PATH,
    HttpTransport,
    Transport,
    build_http_app,
    serve,
    webhook_route,
)
from rivya_mcp.transport._security import (
    BearerTokenMiddleware,
    RemoteBindRefused,
    check_bind,
    is_loopback,
    token_matches,
    transport_security,
)
from rivya_mcp.transport._stdio import ScreenedLine, screen_line, serve_stdio

__all__ = [
    "HEALTH_PATH",
    "MAX_REQUEST_BODY_BYTES",
    "MCP_PATH",
    "MESSAGES_PATH",
    "READY_PATH",
    "SSE_PATH",
    "BearerTokenMiddleware",
    "HealthMiddleware",
    "HostName",
    "HostOriginMiddleware",
    "HostPolicy",
    "HttpTransport",
    "RemoteBindRefused",
    "ScreenedLine",
    "Transport",
    "build_http_app",
    "check_bind",
    "is_loopback",
    "is_ready",
    "parse_allowed_host",
    "parse_allowed_hosts",
    "parse_host",
    "screen_line",
    "serve",
    "serve_stdio",
    "token_matches",
    "transport_security",
    "webhook_route",
]
