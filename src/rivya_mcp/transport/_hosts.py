"""Which ``Host`` and ``Origin`` headers an HTTP transport accepts (DNS rebinding, local web pages).

Policy, as pure functions over parsed headers:

- ``Host`` must name this server: a loopback name (any port), the address it is bound to, or a
  name configured with ``--allowed-host`` / ``RIVYA_ALLOWED_HOSTS`` (``name`` for any port,
  ``name:port`` for that port only). Anything else is a DNS-rebinding attempt: 421.
- ``Origin`` (sent by browsers; absent from every other client) must be the server's own origin:
  the scheme, host and port the request reached it at (a loopback name for another loopback name on
  the same port, as they are the same socket), or a configured host on http or https. Any other
  origin is a web page on some other site or on another local port: 403. With a bearer token set,
  pages on loopback origins of any port are also let through (a browser-based MCP client such as the
  Inspector), since a page that does not know the token still gets 401 — the browser cannot
  attach it for them.

The SDK's own ``TransportSecurityMiddleware`` stays armed behind this one with a wider allowlist
(its patterns cannot express "own origin"), so that a mistake here is not the only line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

# The syntax of a host name is the settings' (RIVYA_ALLOWED_HOSTS is checked when it is read).
from rivya_mcp.settings import DEFAULT_PORTS, HostName, parse_host

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ALLOWED_HOSTS_ENV = "RIVYA_ALLOWED_HOSTS"


def _is_loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_allowed_host(entry: str) -> HostName:
    """One ``--allowed-host`` / ``RIVYA_ALLOWED_HOSTS`` entry, or a ValueError that says what to write."""
    host = parse_host(entry)
    if host is None or host.name == "*":
        raise ValueError(
            f"Not a host name for --allowed-host / {ALLOWED_HOSTS_ENV}: {entry!r}. Give a name or address as "
            "clients reach the server, with an optional port and no scheme or path, e.g. "
            "'mcp.example.com', 'mcp.example.com:8443' or '[2001:db8::5]:8000'."
        )
    return host


def parse_allowed_hosts(value: str | None) -> tuple[HostName, ...]:
    """The comma-separated ``RIVYA_ALLOWED_HOSTS``; blank entries are ignored."""
    if not value:
        return ()
    return tuple(parse_allowed_host(entry) for entry in value.split(",") if entry.strip())


def _literal(bound: str) -> str:
    name = bound.strip("[]").lower()
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


@dataclass(frozen=True)
class HostPolicy:
    """What one HTTP server accepts: its bind address, the configured hosts, whether a token is set."""

    bound: str
    allowed: tuple[HostName, ...] = ()
    token_required: bool = False

    def _names_any_port(self) -> list[str]:
        return list(dict.fromkeys([*LOOPBACK_NAMES, _literal(self.bound)]))

    def host_allowed(self, host_header: str | None, scheme: str) -> bool:
        host = parse_host(host_header or "")
        if host is None:
            return False
        if host.name in self._names_any_port() or _is_loopback_name(host.name):
            return True
        return any(_matches(entry, host, scheme) for entry in self.allowed)

    def origin_allowed(self, origin: str | None, host_header: str | None, scheme: str) -> bool:
        if origin is None:
            return True  # not a browser, or a same-origin navigation: the Host check still applies
        parsed = _parse_origin(origin)
        if parsed is None:
            return False  # "null" (sandboxed frames, file: pages) or garbage
        origin_scheme, origin_host = parsed
        reached = parse_host(host_header or "")
        if reached is not None and origin_scheme == scheme:
            same_port = origin_host.port_for(origin_scheme) == reached.port_for(scheme)
            if same_port and (
                origin_host.name == reached.name
                or (_is_loopback_name(origin_host.name) and _is_loopback_name(reached.name))
            ):
                return True
        if any(_matches(entry, origin_host, origin_scheme) for entry in self.allowed):
            return True
        return self.token_required and _is_loopback_name(origin_host.name)

    def sdk_settings(self) -> TransportSecuritySettings:
        """The SDK's own check, armed on every bind with a superset of what this policy accepts."""
        hosts: list[str] = []
        for name in self._names_any_port():
            hosts += [name, f"{name}:*"]
        for entry in self.allowed:
            if entry.port is None:
                hosts += [entry.name, f"{entry.name}:*"]
            else:
                hosts.append(f"{entry.name}:{entry.port}")
                if entry.port in DEFAULT_PORTS.values():
                    hosts.append(entry.name)
        origins = [f"{scheme}://{host}" for host in hosts for scheme in DEFAULT_PORTS]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=list(dict.fromkeys(hosts)),
            allowed_origins=list(dict.fromkeys(origins)),
        )


def _matches(entry: HostName, host: HostName, scheme: str) -> bool:
    return entry.name == host.name and (entry.port is None or entry.port == host.port_for(scheme))


def _parse_origin(origin: str) -> tuple[str, HostName] | None:
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        return None
    host = parse_host(rest)
    return (scheme, host) if host is not None else None


def _header(scope: Scope, wanted: bytes) -> list[str]:
    return [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == wanted]


class HostOriginMiddleware:
    """Applies a :class:`HostPolicy` to every HTTP request: 421 for a foreign Host, 403 for a foreign Origin."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme = str(scope.get("scheme", "http"))
        hosts, origins = _header(scope, b"host"), _header(scope, b"origin")
        host = hosts[0] if len(hosts) == 1 else None
        if not self.policy.host_allowed(host, scheme):
            await _refuse(send, 421, b"Invalid Host header: add the name clients use with --allowed-host.\n")
            return
        origin = origins[0] if len(origins) == 1 else (None if not origins else "")
        if not self.policy.origin_allowed(origin, host, scheme):
            await _refuse(send, 403, b"Invalid Origin header.\n")
            return
        await self.app(_lower_case_names(scope), receive, send)


def _lower_case_names(scope: Scope) -> Scope:
    """The request with its ``Host`` and ``Origin`` in lower case, for what runs behind this check.

    Host names and schemes are case-insensitive (RFC 9110 §4.2.3, RFC 6454), and this policy
    compares them so; the SDK's own check behind it compares strings exactly, so ``LOCALHOST`` got
    past this one and was refused there. Only names already accepted reach this point.
    """
    headers = scope.get("headers", ())
    if not any(name in (b"host", b"origin") and value != value.lower() for name, value in headers):
        return scope
    lowered = [(name, value.lower() if name in (b"host", b"origin") else value) for name, value in headers]
    return {**scope, "headers": lowered}


async def _refuse(send: Send, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain; charset=utf-8")]}
    )
    await send({"type": "http.response.body", "body": body})
