"""stdio, legacy SSE (``/sse``) and Streamable HTTP (``/mcp``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.identity import Identity, JournalIdentityStore, build_identity, identity_mode, mount_identity
from rivya_mcp.journal import TaskJournal
from rivya_mcp.server import build_server, build_tool_bodies, runtime_of
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import (
    MAX_DELIVERY_BYTES,
    WEBHOOK_PATH,
    Runtime,
    SecretStore,
    WebhookReceiver,
    public_host,
)
from rivya_mcp.transport._body_limits import BodyLimit, BodyLimitMiddleware
from rivya_mcp.transport._health import HealthMiddleware
from rivya_mcp.transport._hosts import HostOriginMiddleware, HostPolicy, parse_allowed_host
from rivya_mcp.transport._people import caller_source, keyring
from rivya_mcp.transport._security import BearerTokenMiddleware, check_bind

log = logging.getLogger(__name__)

Transport = Literal["stdio", "sse", "http"]
HttpTransport = Literal["sse", "http"]
# A 10 MB reference as a base64 data URI is ~13.4 MB of JSON; the SDK's default is 4 MiB.
MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024
MCP_PATH = "/mcp"
SSE_PATH = "/sse"
MESSAGES_PATH = "/messages/"
# Every path but the MCP transports' own needs no token (the webhook route, OAuth, health) or is
# not served at all: a stranger's body there is small and must arrive whole within seconds.
# (A generation event is a few KB; OAuth forms and registrations are a few hundred bytes.)
OPEN_BODY_SECONDS = 10.0
OPEN_ROUTE_BODY = BodyLimit(64 * 1024, OPEN_BODY_SECONDS)
WEBHOOK_BODY = BodyLimit(MAX_DELIVERY_BYTES, OPEN_BODY_SECONDS)


def open_route_limit(path: str) -> BodyLimit | None:
    """The body limit of a path anyone may reach (None: an MCP transport path, behind the token)."""
    if path in (MCP_PATH, SSE_PATH) or path.startswith(MESSAGES_PATH):
        return None
    return WEBHOOK_BODY if path == WEBHOOK_PATH else OPEN_ROUTE_BODY


def build_http_app(
    settings: Settings,
    *,
    transport: HttpTransport,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote_without_token: bool = False,
    client: AsyncRivyaClient | None = None,
    journal: TaskJournal | None = None,
    identity: Identity | None = None,
) -> Starlette:
    """The ASGI app for one HTTP transport, with Host/Origin checks and the optional bearer token.

    With ``--oauth-issuer`` or ``--rivya-login`` (or an ``identity`` given, as tests do) every
    request but the OAuth and webhook routes needs an access token (``rivya_mcp.identity``).

    Raises RemoteBindRefused (a ValueError) for a non-loopback ``host`` without a token, and a
    ValueError for an allowed host that is not a host name or identity settings that can't work.
    """
    token = settings.auth_token.reveal() if settings.auth_token else None
    # People bring their own tokens: as safe to expose as the shared token (IdentityConfigError early).
    identified = identity is not None or identity_mode(settings) is not None
    check_bind(host, has_token=bool(token) or identified, allow_remote_without_token=allow_remote_without_token)
    allowed = [parse_allowed_host(entry) for entry in settings.allowed_hosts]
    if settings.public_url:
        # Rivya's deliveries arrive for the public URL's host: it is one of ours by definition.
        allowed.append(parse_allowed_host(public_host(settings.public_url)))
    policy = HostPolicy(host, tuple(allowed), token_required=bool(token) or identified)
    bodies = build_tool_bodies(settings, client=client, journal=journal, local_paths=False)
    if identity is None and identified:
        identity = _identity(settings, bodies.runtime)
    # Each request acts for its person (their rows, their key); background work finds their key here.
    bodies.runtime.set_keyring(keyring(identity))
    server = build_server(settings, bodies=bodies, caller=caller_source(identity))
    receiver: WebhookReceiver | None = None
    if settings.public_url:
        receiver = WebhookReceiver(bodies.service, SecretStore(bodies.runtime.journal))
        server.custom_route(WEBHOOK_PATH, methods=["POST"])(webhook_route(receiver))
    security = policy.sdk_settings()
    if transport == "http":
        app = server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
            transport_security=security,
            host=host,
        )
    else:
        app = server.sse_app(
            sse_path=SSE_PATH,
            message_path=MESSAGES_PATH,
            max_request_body_size=MAX_REQUEST_BODY_BYTES,
            transport_security=security,
            host=host,
        )
    exempt = frozenset({WEBHOOK_PATH}) if receiver is not None else frozenset()
    if token:
        app.user_middleware.insert(0, Middleware(BearerTokenMiddleware, token=token, exempt_paths=exempt))
    if identity is not None:
        mount_identity(app, identity, open_paths=exempt)
        if identity.login is not None:
            _journal_for_the_app(app, bodies.runtime)
    # Before the token: a request for a foreign Host or from a foreign page is refused first.
    app.user_middleware.insert(0, Middleware(HostOriginMiddleware, policy=policy))
    # Around every check and reader: a body over its cap, or too slow, never reaches them, and any
    # refusal sent before the body was read hangs up on a client still sending it.
    app.user_middleware.insert(0, Middleware(BodyLimitMiddleware, limit_for=open_route_limit))
    # Outermost: a load balancer's probes carry no token and reach a replica by its address (a Host
    # no allow-list names); /healthz and /readyz answer only "ok" or "unavailable", nothing to steal.
    app.user_middleware.insert(0, Middleware(HealthMiddleware, runtime=runtime_of(server)))
    _run_with_app(app, runtime_of(server), receiver, settings.public_url)
    log.debug("built %s app for %s:%d", transport, host, port)
    return app


def webhook_route(receiver: WebhookReceiver) -> Callable[[Request], Awaitable[Response]]:
    """``POST /webhooks/rivya``: the delivery's bytes to the receiver, its event applied after the answer."""

    async def deliver(request: Request) -> Response:
        body = await request.body()
        delivery = await receiver.receive(request.headers, body)
        event = delivery.event
        background = BackgroundTask(receiver.apply, event) if event is not None else None
        return JSONResponse(delivery.body, status_code=delivery.status, background=background)

    return deliver


def _identity(settings: Settings, runtime: Runtime) -> Identity | None:
    """The identity of the settings; rivya-login keeps its sign-ins in the runtime's journal (its
    tables are a step of the journal's schema), which the app holds open for its whole life
    (``_journal_for_the_app``): a sign-in is checked on every request, session or not."""
    if not settings.rivya_login:
        return build_identity(settings)
    return build_identity(settings, store=JournalIdentityStore(runtime.store, ensure_schema=False))


def _journal_for_the_app(app: Starlette, runtime: Runtime) -> None:
    """The app's lifespan holds a session of the runtime, with its journal open, from before the
    identity starts until after it stops: one journal handle, shared by the tasks and the sign-ins.

    Without it the runtime would close its journal when the last MCP session ends (legacy SSE: each
    connection is one), while tokens are checked on every request. An unusable journal fails the
    start, loudly: rivya-login can keep no sign-in without it.
    """
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        async with runtime.session():
            await runtime.ledger()
            async with inner(started) as state:
                yield state

    app.router.lifespan_context = lifespan


def _run_with_app(app: Starlette, runtime: Runtime, receiver: WebhookReceiver | None, public_url: str | None) -> None:
    """For the app's whole life: one runtime session (the recovery pass, replicas' listener and
    sweep, and follow-ups that outlive a call run in it, whatever MCP sessions come and go), and
    the webhook endpoint's registration in the background (never delaying start-up)."""
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        # Held before any session can start the recovery pass: missed webhook events are applied
        # before it polls anything (``WebhookReceiver.start`` takes a hold of its own, too).
        release = runtime.hold_recovery() if receiver is not None and public_url else None

        async def start_webhooks(receiver: WebhookReceiver, public_url: str) -> None:
            try:
                await receiver.start(public_url=public_url)
            finally:
                if release is not None:
                    release()

        try:
            async with inner(started) as state, runtime.session(), anyio.create_task_group() as group:
                if receiver is not None and public_url:
                    group.start_soon(start_webhooks, receiver, public_url)
                yield state
                group.cancel_scope.cancel()
        finally:
            if release is not None:
                release()  # once is enough; again changes nothing

    app.router.lifespan_context = lifespan


async def serve(
    settings: Settings,
    *,
    transport: Transport,
    host: str = "127.0.0.1",
    port: int = 8000,
    allow_remote_without_token: bool = False,
) -> None:
    """Run the server until cancelled. stdout carries only the protocol in stdio mode."""
    if transport == "stdio":
        from rivya_mcp.transport._stdio import serve_stdio

        await serve_stdio(build_server(settings))
        return
    app = build_http_app(
        settings, transport=transport, host=host, port=port, allow_remote_without_token=allow_remote_without_token
    )
    path = MCP_PATH if transport == "http" else SSE_PATH
    log.info("serving MCP over %s at http://%s:%d%s", transport, host, port, path)
    # log_config=None: uvicorn uses our logging (stderr) instead of its own stdout access log.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, log_level=settings.log_level.lower())
    await uvicorn.Server(config).serve()
