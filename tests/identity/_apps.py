"""Servers for the identity tests: an MCP app that answers "who am I", served on a known loopback port.

The public URL (and so the resource ``{public_url}/mcp``) must be known before the identity is
built, and the port before the URL: ``LateApp`` lets the socket be bound first and the app built
after, then served by the suite's ``ThreadedServer``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server import MCPServer
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from rivya_mcp.identity import Identity, current_person, mount_identity
from tests.server._threaded import ThreadedServer


class LateApp:
    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the app was not built before serving"
        await self.app(scope, receive, send)


def serve_late(build: Callable[[str], ASGIApp]) -> ThreadedServer:
    """A server (not yet started) whose app is ``build(base_url)``."""
    late = LateApp()
    server = ThreadedServer(late)
    late.app = build(server.base_url)
    return server


def whoami_app(identity: Identity) -> Starlette:
    """A real MCP server (the SDK's) with one tool reporting ``current_person()``, behind ``identity``."""
    server = MCPServer("whoami")

    @server.tool()
    def whoami() -> dict[str, Any]:
        """Who the token of this call says is calling."""
        person = current_person()
        if person is None:
            return {"person": None}
        return {
            "person": person.id,
            "name": person.display_name,
            "kind": person.kind,
            "subject": person.subject,
            "issuer": person.issuer,
            "scopes": list(person.scopes),
            "own_key": person.spends_own_key,
        }

    app = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")
    mount_identity(app, identity)
    return app
