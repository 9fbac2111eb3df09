"""Putting an :class:`Identity` on a Starlette app: the SDK's auth routes and middleware, and ours.

``mount_identity(app, identity, open_paths=…)`` adds, in front of the app's own routes:

- RFC 9728 protected-resource metadata (the SDK's ``create_protected_resource_routes``) at
  ``/.well-known/oauth-protected-resource/mcp`` and, for clients that only try the root, at
  ``/.well-known/oauth-protected-resource``;
- for rivya-login, the SDK's authorization-server routes (``create_auth_routes``: ``/authorize``,
  ``/token``, ``/register``, ``/revoke``) with the metadata document replaced by one that tells
  the whole truth: ``client_id_metadata_document_supported``, ``none`` among the token endpoint's
  auth methods (public clients and CIMD: claude.ai uses CIMD only when both are advertised), the
  ``iss`` parameter in authorization responses (RFC 9207), the ``images`` scope; and the consent page;

and, innermost in the app's middleware, the SDK's ``AuthenticationMiddleware`` with
``BearerAuthBackend`` (tokens checked by the identity's verifier, and their resource against
``{public_url}/mcp``), ``AuthContextMiddleware`` (``get_access_token()``/``current_person()`` in
handlers), and ``RequireAuthMiddleware`` on every path except the open ones: 401 with
``WWW-Authenticate: Bearer … resource_metadata="…"`` without a valid token, 403
``insufficient_scope`` without the required scopes. Default-deny: a route added later is protected
unless it is named open. Both challenges also carry ``scope="…"`` (the spec's scope selection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.auth.handlers.metadata import MetadataHandler
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import (
    REVOCATION_PATH,
    build_metadata,
    cors_middleware,
    create_auth_routes,
    create_protected_resource_routes,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthMetadata
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rivya_mcp.identity._identity import Identity
from rivya_mcp.identity.login._consent import ConsentPage
from rivya_mcp.identity.login._login import CONSENT_PATH, LOGIN_SCOPE

__all__ = ["identity_routes", "login_metadata", "mount_identity"]

AS_METADATA_PATH = "/.well-known/oauth-authorization-server"
ROOT_RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"
OPEN_PREFIXES = ("/.well-known/",)
LOGIN_OPEN_PATHS = frozenset({"/authorize", "/token", "/register", "/revoke", CONSENT_PATH})
PUBLIC_CLIENT_AUTH = ["none", "client_secret_post", "client_secret_basic"]


def login_metadata(identity: Identity) -> OAuthMetadata:
    """RFC 8414 metadata of rivya-login: the SDK's, plus what it leaves out (see the module docstring)."""
    auth = identity.auth
    metadata = build_metadata(
        auth.issuer_url,
        auth.service_documentation_url,
        auth.client_registration_options or ClientRegistrationOptions(),
        auth.revocation_options or RevocationOptions(),
    )
    return metadata.model_copy(
        update={
            "token_endpoint_auth_methods_supported": PUBLIC_CLIENT_AUTH,
            "revocation_endpoint_auth_methods_supported": PUBLIC_CLIENT_AUTH,
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
            "scopes_supported": [LOGIN_SCOPE],
        }
    )


def identity_routes(identity: Identity) -> list[BaseRoute]:
    """The routes of the module docstring, for this identity."""
    auth = identity.auth
    assert auth.resource_server_url is not None
    routes: list[BaseRoute] = list(
        create_protected_resource_routes(
            resource_url=auth.resource_server_url,
            authorization_servers=[auth.issuer_url],
            scopes_supported=list(identity.required_scopes) or None,
            resource_name="rivya-mcp",
        )
    )
    routes.append(Route(ROOT_RESOURCE_METADATA_PATH, endpoint=routes[0].endpoint, methods=["GET", "OPTIONS"]))  # type: ignore[attr-defined]
    if identity.login is None:
        return routes
    metadata_route = Route(
        AS_METADATA_PATH,
        endpoint=cors_middleware(MetadataHandler(login_metadata(identity)).handle, ["GET", "OPTIONS"]),
        methods=["GET", "OPTIONS"],
    )
    sdk_routes = create_auth_routes(
        provider=identity.login,
        issuer_url=auth.issuer_url,
        service_documentation_url=auth.service_documentation_url,
        client_registration_options=auth.client_registration_options,
        revocation_options=auth.revocation_options,
    )
    consent = ConsentPage(identity.login)
    for route in sdk_routes:
        if route.path == REVOCATION_PATH:
            route.app = PublicClientRevocation(route.app)
    routes += [metadata_route, *(r for r in sdk_routes if r.path != AS_METADATA_PATH)]
    routes += [
        Route(CONSENT_PATH, endpoint=consent.show, methods=["GET"]),
        Route(CONSENT_PATH, endpoint=consent.answer, methods=["POST"]),
    ]
    return routes


MAX_REVOCATION_BODY = 16 * 1024


class PublicClientRevocation:
    """Lets a public client revoke with ``token`` and ``client_id`` alone, as RFC 7009 §2.1 allows.

    The SDK's ``RevocationRequest`` declares ``client_secret: str | None`` without a default, so a
    form without the field is refused with 400 (mcp 2.3.0, and its main branch when this was
    written): a public client (``none``, every CIMD client) could then never revoke, and its tokens
    would outlive a disconnect. This adds an empty ``client_secret`` to such a form, which the
    SDK's ``ClientAuthenticator`` ignores for ``none`` clients and refuses for secret-holding ones.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if scope["type"] != "http" or not content_type.startswith(b"application/x-www-form-urlencoded"):
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_REVOCATION_BODY:
                await self.app(scope, _replay(body, more=message.get("more_body", False), receive=receive), send)
                return
            if not message.get("more_body", False):
                break
        names = {part.partition(b"=")[0] for part in body.split(b"&")}
        if b"client_secret" not in names:
            body += b"&client_secret=" if body else b"client_secret="
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, _replay(body, more=False, receive=receive), send)


def _replay(body: bytes, *, more: bool, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replayed


def _with_scope_challenge(send: Send, scope_hint: str) -> Send:
    """Adds ``scope="…"`` to the SDK's 401/403 challenge (the MCP spec's scope selection strategy)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in (401, 403):
            headers = []
            for name, value in message.get("headers", []):
                if name.lower() == b"www-authenticate" and b" scope=" not in value and b",scope=" not in value:
                    value = value + b', scope="' + scope_hint.encode("ascii") + b'"'
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return sending if scope_hint else send


class RequireToken:
    """The SDK's ``RequireAuthMiddleware`` on every HTTP path but the open ones."""

    def __init__(self, app: ASGIApp, *, identity: Identity, open_paths: frozenset[str]) -> None:
        self.app = app
        self._guarded = RequireAuthMiddleware(
            app, list(identity.required_scopes), AnyHttpUrl(identity.resource_metadata_url)
        )
        self._open = open_paths
        self._scope_hint = " ".join(identity.required_scopes)

    def _is_open(self, path: str) -> bool:
        return path in self._open or path.startswith(OPEN_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_open(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, _with_scope_challenge(send, self._scope_hint))


def mount_identity(app: Starlette, identity: Identity, *, open_paths: Collection[str] = ()) -> None:
    """Add ``identity``'s routes and middleware to ``app`` (before it first serves).

    ``open_paths`` carry their own authentication and stay reachable without a token (the Rivya
    webhook route, which checks each delivery's signature). The app's lifespan gains the identity's
    start (rivya-login: refuse a RIVYA_SECRET_KEY that can't open the stored keys) and close.
    """
    app.router.routes[0:0] = identity_routes(identity)
    backend = BearerAuthBackend(identity.verifier, resource_server_url=identity.auth.resource_server_url)
    opened = frozenset(open_paths) | (LOGIN_OPEN_PATHS if identity.login is not None else frozenset())
    app.user_middleware += [
        Middleware(AuthenticationMiddleware, backend=backend),
        Middleware(AuthContextMiddleware),
        Middleware(RequireToken, identity=identity, open_paths=opened),
    ]
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        await identity.start()
        try:
            async with inner(started) as state:
                yield state
        finally:
            await identity.aclose()

    app.router.lifespan_context = lifespan
