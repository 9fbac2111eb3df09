"""Fault injection by rule, in the style of LocalStack's Chaos API: an ordered list, first match wins.

A rule matches a request by ``method`` (optional) and ``path`` prefix, applies ``times`` times (or
forever) and, with ``probability``, only when the seeded RNG says so. It then waits ``delay_ms``
and/or answers an error ``status``/``code`` (with ``retry_after``), ``drop``s the connection,
sends a ``malformed`` body, or answers a JSON ``body`` of the test's choosing (e.g. a task that
failed with a given error). ``request_id`` sets the answer's ``requestId`` and ``x-request-id``
(a test can make the API echo anything, an API key included, in every field it sends). With
``"phase": "after"`` the request is processed first, so e.g. a create is charged but its answer
is lost; an after-rule may also ``merge`` an object into a JSON answer (objects merge key by key,
anything else, ``null`` included, replaces), which is how a test gets an answer the docs allow but
the sandbox never gives on its own (a status they do not list, a succeeded task without ``urls``).
An after-rule may instead ``truncate`` the real answer to its first N bytes, sent without a
``Content-Length`` and ended cleanly: a body cut short that no HTTP framing betrays (a result image
a proxy or a dying server ended early).
``drip_ms`` sends whatever the answer is one byte at a time, that many milliseconds apart (a result
download that trickles in, to hold a reader's deadline to account).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx2
from starlette.responses import JSONResponse

from rivya_mcp.sandbox._errors import REQUEST_ID_HEADER, error_response, new_request_id

Phase = Literal["before", "after"]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

CONTROL_PREFIX = "/_sandbox/"
MEDIA_PREFIX = "/_sandbox/media/"
MALFORMED_BODY = b'{"id": "task_'  # cut-off JSON: what a truncated upstream answer looks like
_DEFAULT_CODES = {
    400: "validation_failed",
    401: "api_key_invalid",
    402: "insufficient_credits",
    403: "api_scope_denied",
    404: "not_found",
    409: "idempotency_conflict",
    429: "rate_limited",
    503: "public_api_disabled",
}
_RULE_KEYS = frozenset(
    {
        "method",
        "path",
        "times",
        "probability",
        "status",
        "code",
        "message",
        "retry_after",
        "delay_ms",
        "drop",
        "malformed",
        "body",
        "request_id",
        "phase",
        "merge",
        "truncate",
        "drip_ms",
    }
)


class ConnectionDropped(httpx2.RemoteProtocolError):
    """Raised by the app to drop a connection.

    Under uvicorn the response has already started, so uvicorn closes the socket and the client
    sees ``RemoteProtocolError`` (peer closed connection without sending the complete body).
    In process (``httpx2.ASGITransport``) the exception propagates to the client as the same type.
    """


@dataclass
class FaultRule:
    path: str = "/api/"
    method: str | None = None
    times: int | None = None
    probability: float | None = None
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    delay_ms: float | None = None
    drop: bool = False
    malformed: bool = False
    body: dict[str, Any] | None = None
    request_id: str | None = None
    phase: Phase = "before"
    merge: dict[str, Any] | None = None
    truncate: int | None = None
    drip_ms: float | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if path.startswith(MEDIA_PREFIX) and not self.path.startswith(MEDIA_PREFIX.rstrip("/")):
            # Result downloads are only faulted by rules that name them explicitly.
            return False
        return path.startswith(self.path)

    @property
    def acts(self) -> bool:
        """Whether the rule answers in place of the app (rather than only delaying it)."""
        return self.status is not None or self.body is not None or self.drop or self.malformed

    def summary(self) -> str:
        """The rule's action for a log line, without the free text it answers with (which a test
        may fill with anything, an API key included)."""
        action = "drop" if self.drop else "malformed" if self.malformed else None
        if self.truncate is not None:
            action = f"truncate to {self.truncate} bytes"
        if action is None and self.acts:
            action = f"status {self.status or 200}" + (" with a body" if self.body is not None else "")
        delay = f" after {self.delay_ms:g} ms" if self.delay_ms else ""
        drip = f" dripping a byte every {self.drip_ms:g} ms" if self.drip_ms else ""
        return f"{action or ('drip' if drip else 'delay')}{delay}{drip} ({self.phase}, hit {self.hits})"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "phase": self.phase, "hits": self.hits}
        names = ("method", "times", "probability", "status", "code", "message", "retry_after", "delay_ms", "drip_ms")
        for name in (*names, "body", "request_id"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.drop:
            data["drop"] = True
        if self.malformed:
            data["malformed"] = True
        if self.merge is not None:
            data["merge"] = self.merge
        if self.truncate is not None:
            data["truncate"] = self.truncate
        return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_rules(payload: Any) -> list[FaultRule]:
    """Parse ``{"rules": [...]}``; raise ValueError naming every problem."""
    if not isinstance(payload, dict) or not isinstance(payload.get("rules"), list):
        raise ValueError('body: must be {"rules": [...]}')
    rules: list[FaultRule] = []
    problems: list[str] = []
    for index, raw in enumerate(payload["rules"]):
        at = f"rules[{index}]"
        if not isinstance(raw, dict):
            problems.append(f"{at}: must be an object")
            continue
        before = len(problems)
        unknown = sorted(set(raw) - _RULE_KEYS)
        if unknown:
            problems.append(f"{at}: unknown field(s): {', '.join(unknown)}")
        path = raw.get("path", "/api/")
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"{at}.path: must be a path prefix starting with /")
        method = raw.get("method")
        if method is not None and not isinstance(method, str):
            problems.append(f"{at}.method: must be a string")
        times = raw.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            problems.append(f"{at}.times: must be a positive integer")
        probability = raw.get("probability")
        if probability is not None and (not _number(probability) or not 0 <= probability <= 1):
            problems.append(f"{at}.probability: must be between 0 and 1")
        status = raw.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599):
            problems.append(f"{at}.status: must be an HTTP status code")
        for name in ("retry_after", "delay_ms"):
            value = raw.get(name)
            if value is not None and (not _number(value) or value < 0):
                problems.append(f"{at}.{name}: must be a number >= 0")
        drip_ms = raw.get("drip_ms")
        if drip_ms is not None and (not _number(drip_ms) or drip_ms <= 0):
            problems.append(f"{at}.drip_ms: must be a number > 0")
        for name in ("code", "message", "request_id"):
            if raw.get(name) is not None and not isinstance(raw.get(name), str):
                problems.append(f"{at}.{name}: must be a string")
        drop = raw.get("drop", False)
        malformed = raw.get("malformed", False)
        if not isinstance(drop, bool) or not isinstance(malformed, bool):
            problems.append(f"{at}: drop and malformed must be booleans")
        body = raw.get("body")
        if body is not None and not isinstance(body, dict):
            problems.append(f"{at}.body: must be a JSON object")
        phase = raw.get("phase", "before")
        if phase not in ("before", "after"):
            problems.append(f'{at}.phase: must be "before" or "after"')
        merge = raw.get("merge")
        if merge is not None and (not isinstance(merge, dict) or phase != "after"):
            problems.append(f'{at}.merge: must be an object, with "phase": "after"')
        truncate = raw.get("truncate")
        if truncate is not None and (
            not isinstance(truncate, int) or isinstance(truncate, bool) or truncate < 0 or phase != "after"
        ):
            problems.append(f'{at}.truncate: must be a byte count >= 0, with "phase": "after"')
        # A body answers with ``status`` (default 200): the two together are one action.
        answers = status is not None or body is not None
        actions = (
            int(answers and not malformed)
            + int(drop is True)
            + int(malformed is True)
            + int(merge is not None)
            + int(truncate is not None)
        )
        if actions > 1:
            problems.append(f"{at}: choose one of status (with or without body), drop, malformed, merge, truncate")
        if actions == 0 and raw.get("delay_ms") is None and drip_ms is None:
            actions_named = "status, body, delay_ms, drip_ms, drop, malformed, merge or truncate"
            problems.append(f"{at}: needs an action: {actions_named}")
        if len(problems) > before:
            continue
        rules.append(
            FaultRule(
                path=path,
                method=method,
                times=times,
                probability=None if probability is None else float(probability),
                status=status,
                code=raw.get("code"),
                message=raw.get("message"),
                retry_after=raw.get("retry_after"),
                delay_ms=raw.get("delay_ms"),
                drop=drop,
                malformed=malformed,
                body=body,
                request_id=raw.get("request_id"),
                phase=phase,
                merge=merge,
                truncate=truncate,
                drip_ms=drip_ms,
            )
        )
    if problems:
        raise ValueError("; ".join(problems))
    return rules


def is_control_path(path: str) -> bool:
    return path.startswith(CONTROL_PREFIX) and not path.startswith(MEDIA_PREFIX)


class FaultMiddleware:
    """ASGI middleware that applies the first matching rule (looked up through ``take``)."""

    def __init__(
        self,
        app: ASGIApp,
        take: Callable[[str, str], FaultRule | None],
        retry_after: Callable[[float], str] | None = None,
        error_extras: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.app = app
        self.take = take
        # How the profile writes Retry-After and which unknown fields it adds to error envelopes.
        self.retry_after = retry_after or (lambda seconds: str(math.ceil(seconds)))
        self.error_extras = error_extras or dict
        self.logger = logging.getLogger("rivya_mcp.sandbox")

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_control_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        rule = self.take(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        self.logger.info("fault injected on %s %s: %s", scope["method"], scope["path"], rule.summary())
        if rule.drip_ms:
            send = _dripping(send, rule.drip_ms / 1000)
        if rule.phase == "before":
            if rule.delay_ms:
                await anyio.sleep(rule.delay_ms / 1000)
            if rule.acts:
                await _act(rule, send, self.retry_after, self.error_extras())
            else:
                await self.app(scope, receive, send)
            return

        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        await self.app(scope, receive, capture)
        if rule.delay_ms:
            await anyio.sleep(rule.delay_ms / 1000)
        if rule.acts:
            await _act(rule, send, self.retry_after, self.error_extras())
            return
        if rule.merge is not None:
            captured = _merged(captured, rule.merge)
        if rule.truncate is not None:
            captured = _truncated(captured, rule.truncate)
        for message in captured:
            await send(message)


def _dripping(send: Send, gap: float) -> Send:
    """``send`` with every response body split into single bytes, ``gap`` seconds apart."""

    async def drip(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        for index in range(len(body)):
            await send({"type": "http.response.body", "body": body[index : index + 1], "more_body": True})
            await anyio.sleep(gap)
        if not more:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return drip


def _merge(target: Any, patch: dict[str, Any]) -> Any:
    if not isinstance(target, dict):
        return dict(patch)
    merged = dict(target)
    for key, value in patch.items():
        merged[key] = _merge(merged.get(key), value) if isinstance(value, dict) else value
    return merged


def _merged(messages: list[Message], patch: dict[str, Any]) -> list[Message]:
    """The captured answer with ``patch`` merged into its JSON body (a non-JSON answer is left as is)."""
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    try:
        data = json.loads(body)
    except ValueError:
        return messages
    if start is None or not isinstance(data, dict):
        return messages
    new_body = json.dumps(_merge(data, patch)).encode()
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(new_body)).encode()))
    return [{**start, "headers": headers}, {"type": "http.response.body", "body": new_body}]


def _truncated(messages: list[Message], keep: int) -> list[Message]:
    """The captured answer cut to its first ``keep`` body bytes, without a ``Content-Length``.

    The server then frames it by chunks (or by closing the connection), so the body ends cleanly
    and only its content shows that it is short.
    """
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:
        return messages
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    return [{**start, "headers": headers}, {"type": "http.response.body", "body": body[:keep], "more_body": False}]


async def _act(rule: FaultRule, send: Send, retry_after: Callable[[float], str], extras: dict[str, Any]) -> None:
    if rule.drop:
        # Start a response that promises a body, then fail: uvicorn closes the socket mid-response.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
        raise ConnectionDropped("sandbox fault: connection dropped")
    if rule.malformed:
        rid = rule.request_id or new_request_id()
        await send(
            {
                "type": "http.response.start",
                "status": rule.status or 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(MALFORMED_BODY)).encode()),
                    (REQUEST_ID_HEADER.encode(), rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": MALFORMED_BODY})
        return
    if rule.body is not None:
        rid = rule.request_id or new_request_id()
        answer = JSONResponse(rule.body, status_code=rule.status or 200, headers={REQUEST_ID_HEADER: rid})
        await answer({"type": "http"}, _no_receive, send)
        return
    assert rule.status is not None
    code = rule.code or _DEFAULT_CODES.get(rule.status, "internal_error")
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = retry_after(rule.retry_after)
    message = rule.message or f"Injected sandbox fault ({code})."
    response = error_response(rule.status, code, message, request_id=rule.request_id, headers=headers, extras=extras)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
