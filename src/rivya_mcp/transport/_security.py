"""HTTP transport safety: loopback by default, DNS-rebinding checks, an optional bearer token."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from rivya_mcp.settings import HostName
from rivya_mcp.transport._hosts import HostPolicy


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


def transport_security(host: str, allowed: Sequence[HostName] = ()) -> TransportSecuritySettings:
    """Host/Origin allowlists for the SDK's own check, armed for every bind (see ``_hosts``).

    The SDK arms these only for loopback binds; for any other host it would switch them off.
    """
    return HostPolicy(host, tuple(allowed)).sdk_settings()


def token_matches(given: bytes, token: bytes) -> bool:
    """Whether an ``Authorization`` value is ``Bearer <token>``, the whole token and nothing else.

    The scheme is case-insensitive (RFC 7235 §2.1) and followed by exactly one space (RFC 6750 §2.1:
    ``"Bearer" 1*SP b64token``; we accept only one). The credential is compared whole with
    ``hmac.compare_digest``, whose time depends on the lengths alone, never on how much of a guess
    was right.
    """
    scheme, space, credential = given.partition(b" ")
    if not space or scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credential, token)


class BearerTokenMiddleware:
    """Requires ``Authorization: Bearer <token>`` on every HTTP request, whatever its path or method.

    A request with two Authorization headers is refused: which one a proxy or framework would
    read is not ours to guess.

    ``exempt_paths`` carry their own authentication: the webhook route, which Rivya calls without
    custom headers and which verifies each delivery's signature instead.
    """

    def __init__(self, app: ASGIApp, token: str, exempt_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self._token = token.encode()
        self._exempt = exempt_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope.get("headers", ()) if name == b"authorization"]
        if len(given) != 1 or not token_matches(given[0], self._token):
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
