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
read to its end (a refusal by a check that never reads it: the Host check, the token, a path not
served) is held while the rest of the body is read and thrown away, within the same bounds (``DRAIN``
for a path without a rule). If it all comes, the answer goes out and the connection lives on; if not,
the answer goes out with ``Connection: close`` and the connection ends, so a client dripping bytes
into a refused request is disconnected instead of kept alive for its next byte. (Closing at once on
a client still sending would reset the connection before it read the answer.)

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

__all__ = ["DRAIN", "BodyLimit", "BodyLimitMiddleware"]


@dataclass(frozen=True)
class BodyLimit:
    """What one request's body may be: at most ``max_bytes``, all of it within ``seconds``."""

    max_bytes: int
    seconds: float


# After an early answer on a path without a rule of its own (the MCP endpoints, refused by the token
# check): read and thrown away, not kept, so the cap costs bandwidth, never memory.
DRAIN = BodyLimit(16 * 1024 * 1024, 10.0)


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
    """See the module docstring. ``limit_for(path)`` says which rule covers a path while the app reads
    its body (None: none); ``drain`` bounds what is read and thrown away after an early answer on a
    path no rule covers."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], BodyLimit | None], *, drain: BodyLimit = DRAIN) -> None:
        self.app = app
        self._limit_for = limit_for
        self._drain = drain

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
        body = _Body(receive, done=not _has_body(scope))
        if limit is not None:
            body.bound(limit)
        # An answer that starts before the body has all been read (a refusal by a check that never
        # reads it) is held until the rest has been read and thrown away, within the same bounds:
        # closing the connection on a client still sending would reset it before it reads the answer.
        held: list[Message] = []
        started = False

        async def holding_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not body.done:
                    held.append(message)
                    return
            if held:
                held.append(message)
                return
            await send(message)

        try:
            await self.app(scope, body.receive, holding_send)
        except (_TooLarge, _TooSlow, BaseExceptionGroup) as exc:
            refusal = _refusal(exc)
            if refusal is None or limit is None:
                raise
            self._log(refusal, limit, scope)
            if not started:
                await _refuse(send, *_ANSWERS[refusal](limit))
            return
        if held:
            whole = await body.drain(limit or self._drain)
            if not whole:
                log.warning("stopped reading a request body to %s after answering it", scope["path"])
            await _flush(send, held, close=not whole)

    @staticmethod
    def _log(refusal: type[Exception], limit: BodyLimit, scope: Scope) -> None:
        if refusal is _TooLarge:
            log.warning("refused a request body over %d bytes to %s", limit.max_bytes, scope["path"])
        else:
            log.warning("refused a request body to %s: not all of it came within %g s", scope["path"], limit.seconds)


_ANSWERS: dict[type[Exception], Callable[[BodyLimit], tuple[int, str]]] = {
    _TooLarge: lambda limit: (413, f"the request body is larger than {limit.max_bytes} bytes"),
    _TooSlow: lambda limit: (408, f"the request body did not arrive within {limit.seconds:g} s"),
}


class _Body:
    """The request's body as the app reads it: counted, and bounded once ``bound`` is called."""

    def __init__(self, receive: Receive, *, done: bool) -> None:
        self._receive = receive
        self.done = done
        self._received = 0
        self._limit: BodyLimit | None = None
        self._deadline = 0.0

    def bound(self, limit: BodyLimit) -> None:
        self._limit = limit
        self._deadline = anyio.current_time() + limit.seconds

    async def receive(self) -> Message:
        if self.done or self._limit is None:
            message = await self._receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                self.done = True
            return message
        with anyio.move_on_after(max(self._deadline - anyio.current_time(), 0.0)):
            message = await self._receive()
            if message["type"] == "http.request":
                self._received += len(message.get("body", b""))
                if self._received > self._limit.max_bytes:
                    raise _TooLarge
            if not message.get("more_body", False) or message["type"] == "http.disconnect":
                self.done = True
            return message
        raise _TooSlow

    async def drain(self, limit: BodyLimit) -> bool:
        """Read what is left of the body and throw it away, within ``limit`` (counted from now when
        no bound was set before); whether all of it came."""
        if self._limit is None:
            self.bound(limit)
        try:
            while not self.done:
                await self.receive()
        except (_TooLarge, _TooSlow):
            return False
        return True


async def _flush(send: Send, messages: list[Message], *, close: bool) -> None:
    for message in messages:
        if close and message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)


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
