"""Request bodies a stranger can send: a size cap and a deadline, checked before and while reading.

The routes that need no token (the webhook route, which Rivya calls without custom headers; the
OAuth routes; the health checks; any path the app does not serve) can be reached by anyone who
reaches the port. Without a limit of their own a 300 MB body is read into memory before anything
looks at it, and fifty connections dripping a byte every two seconds stay open as long as they
like. So, for every request a ``limit_for`` rule covers:

- a declared ``Content-Length`` above the cap is refused (413) before a byte of the body is read;
- a body without one (chunked) is counted as it arrives and refused as soon as it passes the cap;
- the whole body must arrive within the rule's deadline, counted from the request's start, or it
  is refused (408), whatever the app was doing with it.

And for every request, covered or not: a response that starts before the request's body has been
read to its end carries ``Connection: close``, so a client still sending (a refused upload, a drip
answered 401 by the token check) is disconnected instead of kept alive for its next byte.

The MCP transports' own paths are not covered (``limit_for`` returns None): they sit behind the
token or the sign-in, their body cap is the SDK's (``max_request_body_size``), and a 13 MB data URI
over a slow link must not be cut off by a stranger's deadline.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

__all__ = ["BodyLimit", "BodyLimitMiddleware"]


@dataclass(frozen=True)
class BodyLimit:
    """What one request's body may be: at most ``max_bytes``, all of it within ``seconds``."""

    max_bytes: int
    seconds: float


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


def _declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (uvicorn has checked it is one number), or None."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _has_body(scope: Scope) -> bool:
    """Whether the request announces a body at all (a length above 0, or chunked)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """See the module docstring. ``limit_for(path)`` says which rule covers a path (None: none)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], BodyLimit | None]) -> None:
        self.app = app
        self._limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(str(scope.get("path", "")))
        declared = _declared_length(scope)
        if limit is not None and declared is not None and declared > limit.max_bytes:
            # Refused on the header alone: none of the body is read.
            await _refuse(send, 413, f"the request body is larger than {limit.max_bytes} bytes")
            return
        body_done = not _has_body(scope)
        started = False
        received = 0
        deadline = anyio.current_time() + limit.seconds if limit is not None else None

        async def guarded_receive() -> Message:
            nonlocal body_done, received
            if body_done or deadline is None:
                message = await receive()
            else:
                with anyio.move_on_after(max(deadline - anyio.current_time(), 0.0)):
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if limit is not None and received > limit.max_bytes:
                            raise _TooLarge
                    if not message.get("more_body", False):
                        body_done = True
                    return message
                raise _TooSlow
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body_done:
                    # The client may still be sending: answer, then hang up rather than wait for it.
                    headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, closing_send)
        except (_TooLarge, _TooSlow, BaseExceptionGroup) as exc:
            refusal = _refusal(exc)
            if refusal is None or limit is None:
                raise
            if refusal is _TooLarge:
                log.warning("refused a request body over %d bytes to %s", limit.max_bytes, scope["path"])
                if not started:
                    await _refuse(send, 413, f"the request body is larger than {limit.max_bytes} bytes")
            else:
                log.warning(
                    "refused a request body to %s: not all of it came within %g s", scope["path"], limit.seconds
                )
                if not started:
                    await _refuse(send, 408, "the request body did not arrive in time")


def _refusal(exc: BaseException) -> type[Exception] | None:
    """Which of our refusals ``exc`` is (alone, or the only thing in a task group's exception group)."""
    for kind in (_TooLarge, _TooSlow):
        if isinstance(exc, kind):
            return kind
        if isinstance(exc, BaseExceptionGroup):
            matched, rest = exc.split(kind)
            if matched is not None and rest is None:
                return kind
    return None
