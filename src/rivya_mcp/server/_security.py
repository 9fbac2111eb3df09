"""HTTP transport safety: loopback by default, DNS-rebinding checks, an optional bearer token."""

from __future__ import annotations

import hmac
import ipaddress

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class RemoteBindRefused(ValueError):
    """Binding a non-loopback address without a bearer token would expose the key's credits."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, has_token: bool, allow_remote_without_token: bool) -> None:
    if is_loopback(host) or has_token or allow_remote_without_token:
        return
    raise RemoteBindRefused(
        f"Refusing to listen on {host} without a bearer token: anyone who can reach it could spend "
        "your Rivya credits. Set RIVYA_MCP_AUTH_TOKEN (clients then send 'Authorization: Bearer <token>'), "
        "bind 127.0.0.1, or pass --allow-remote-without-token if another layer protects it."
    )


def _host_literal(host: str) -> str:
    name = host.strip("[]")
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def transport_security(host: str) -> TransportSecuritySettings:
    """Host/Origin allowlists for the bound host and the loopback names, armed for every bind.

    The SDK arms these only for loopback binds; for any other host it would switch them off.
    """
    hosts = list(dict.fromkeys([_host_literal(host), *LOCAL_HOSTS]))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for name in hosts for h in (name, f"{name}:*")],
        allowed_origins=[
            o for name in hosts for o in (f"http://{name}", f"http://{name}:*", f"https://{name}", f"https://{name}:*")
        ],
    )


class BearerTokenMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every HTTP request (constant-time compare).

    ``exempt_paths`` carry their own authentication: the webhook route, which Rivya calls without
    custom headers and which verifies each delivery's signature instead.
    """

    def __init__(self, app: ASGIApp, token: str, exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._exempt = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                given = value
                break
        if not hmac.compare_digest(given, self._expected):
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": b"Missing or wrong bearer token.\n"})
            return
        await self.app(scope, receive, send)
