"""Webhook endpoints, events and the delivery log (rivya-api.md §3.8), behind one lock.

Stated by the docs and kept as stated: the endpoint object and its fields, `whsec_` secrets shown
only at creation (and on rotation), HTTPS-only URLs with credentials, fragments, localhost names
and private, loopback or reserved addresses refused with `webhook_url_rejected` (400), the two
event types, POST + JSON deliveries, no redirects, a short timeout, `failure_count`.

Sandbox decisions where the docs are silent (also listed in docs/sandbox.md):
- how deliveries are signed is `SandboxConfig.webhook_signing`, by default the profile's
  (``signature_headers``): `standard` is Standard Webhooks, headers `webhook-id` (the event id),
  `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
  `{id}.{timestamp}.{body}` keyed with the base64 part of the secret); `stripe` is one header
  `Rivya-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">` keyed with the secret
  as text; `unknown` is a scheme outside every known convention (HMAC-SHA512 of `{body}:{t}`);
- the event is `{id: "evt_…", type, api_version, created_at, data: <the §3.3 generation>}`; the
  variant profile names the object `generation` instead of `data`;
- a failed attempt (no answer, a timeout, a redirect or any non-2xx status) is retried with a
  doubling delay, `webhook_max_attempts` attempts in all; every failed attempt adds one to the
  endpoint's `failure_count`, a success sets it back to 0, and `webhook_disable_after` failures
  in a row disable the endpoint (`status: "disabled"`, `disabled_at`);
- `DELETE` revokes an endpoint (`status: "revoked"`, `revoked_at`): it leaves the list and gets
  nothing more; rotation replaces the secret at once (no grace period);
- `POST …/test` sends a `webhook.test` event, marked `"test": true`, that names no task.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from rivya_mcp.sandbox._errors import SandboxError, not_found, validation_failed
from rivya_mcp.sandbox.steering._clock import iso

EVENT_TYPES = ("generation.succeeded", "generation.failed")
TEST_EVENT_TYPE = "webhook.test"
STRIPE_HEADER = "rivya-signature"
UNKNOWN_HEADERS = ("x-rivya-signature", "x-rivya-timestamp")
API_VERSION = "2026-05-11"  # the date the docs' examples carry
SECRET_PREFIX = "whsec_"
MAX_NAME = 200
MAX_URL = 2048
MAX_LOG = 1000  # delivery attempts and events kept per sandbox (oldest dropped first)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")

EndpointStatus = Literal["active", "disabled", "revoked"]


def url_problem(url: object, *, allow_loopback: bool = False) -> str | None:
    """Why a webhook URL is refused (rivya-api.md §3.8), or None.

    ``allow_loopback`` is the sandbox-only switch that lets tests and the demo receive deliveries
    on ``http://127.0.0.1:…``; it admits loopback and nothing else the rules refuse.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return "url must be an absolute HTTPS URL"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "url is not a valid URL"
    host = (parts.hostname or "").lower()
    loopback = allow_loopback and host in LOOPBACK_HOSTS
    if parts.scheme != "https" and not (loopback and parts.scheme == "http"):
        return "url must use HTTPS"
    if not host:
        return "url must name a host"
    if parts.username is not None or parts.password is not None:
        return "url must not contain credentials"
    if parts.fragment or url.endswith("#"):
        return "url must not contain a fragment"
    if port == 0:
        return "url has an invalid port"
    if loopback:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        single_label = "." not in host  # e.g. `intranet`: a local-network name
        if host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or single_label:
            return "url must not point at localhost or a local-network name"
        return None  # a public-looking name: the sandbox does not resolve it
    if (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or not address.is_global
    ):
        return "url must not point at a private, loopback or reserved address"
    return None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(scheme: str, secret: str, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The signing headers of one delivery under ``scheme`` (``standard``, ``stripe`` or ``unknown``)."""
    if scheme == "stripe":
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return {STRIPE_HEADER: f"t={timestamp},v1={digest}"}
    if scheme == "unknown":
        # Deliberately outside what any receiver of ours knows: another hash, another signed string.
        digest = hmac.new(secret.encode(), body + f":{timestamp}".encode(), hashlib.sha512).hexdigest()
        return {UNKNOWN_HEADERS[0]: f"sha512={digest}", UNKNOWN_HEADERS[1]: str(timestamp)}
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event_id, timestamp, body),
    }


def preview(secret: str) -> str:
    return f"{secret[:8]}...{secret[-6:]}"


@dataclass
class Endpoint:
    id: str
    account: str
    name: str
    url: str
    event_types: list[str]
    secret: str = field(repr=False)
    created_at: float
    updated_at: float
    status: EndpointStatus = "active"
    failure_count: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    disabled_at: float | None = None
    revoked_at: float | None = None

    def as_json(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "name": self.name,
            "url": self.url,
            "event_types": list(self.event_types),
            "status": self.status,
            "secret_preview": preview(self.secret),
            "last_success_at": _iso(self.last_success_at),
            "last_failure_at": _iso(self.last_failure_at),
            "failure_count": self.failure_count,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "disabled_at": _iso(self.disabled_at),
            "revoked_at": _iso(self.revoked_at),
        }
        if with_secret:
            body["signing_secret"] = self.secret
        return body


@dataclass(frozen=True)
class Event:
    id: str
    account: str
    type: str
    created_at: float
    body: dict[str, Any]


@dataclass
class Delivery:
    """One event on its way to one endpoint; attempts are logged as they are made."""

    id: str
    event: Event
    endpoint_id: str
    attempts: int = 0
    due: float = 0.0  # on the dispatcher's clock


def _iso(value: float | None) -> str | None:
    return iso(value) if value is not None else None


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class WebhookRegistry:
    """Endpoints, events, pending deliveries and the attempt log of one sandbox. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._endpoints: dict[str, Endpoint] = {}
        self._events: list[Event] = []
        self._pending: list[Delivery] = []
        self._log: list[dict[str, Any]] = []

    # -- management (the §3.8 endpoints) -----------------------------------------------------

    def create(self, account: str, body: object, *, now: float, allow_loopback: bool) -> dict[str, Any]:
        name, url, types = _parse_endpoint(body, allow_loopback=allow_loopback, partial=False)
        with self._lock:
            endpoint = Endpoint(
                id=_id("whend"),
                account=account,
                name=name or "",
                url=url or "",
                event_types=types or list(EVENT_TYPES),
                secret=new_secret(),
                created_at=now,
                updated_at=now,
            )
            self._endpoints[endpoint.id] = endpoint
            return endpoint.as_json(with_secret=True)

    def listing(self, account: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e.as_json() for e in self._endpoints.values() if e.account == account and e.status != "revoked"]

    def _own(self, account: str, endpoint_id: str) -> Endpoint:
        endpoint = self._endpoints.get(endpoint_id)
        if endpoint is None or endpoint.account != account or endpoint.status == "revoked":
            raise not_found("The webhook endpoint")
        return endpoint

    def get(self, account: str, endpoint_id: str) -> dict[str, Any]:
        with self._lock:
            return self._own(account, endpoint_id).as_json()

    def patch(
        self, account: str, endpoint_id: str, body: object, *, now: float, allow_loopback: bool
    ) -> dict[str, Any]:
        name, url, types = _parse_endpoint(body, allow_loopback=allow_loopback, partial=True)
        status = body.get("status") if isinstance(body, dict) else None
        if status is not None and status not in ("active", "disabled"):
            raise validation_failed(['status: must be "active" or "disabled"'])
        with self._lock:
            endpoint = self._own(account, endpoint_id)
            if name is not None:
                endpoint.name = name
            if url is not None:
                endpoint.url = url
            if types is not None:
                endpoint.event_types = types
            if status == "active" and endpoint.status != "active":
                endpoint.status, endpoint.disabled_at, endpoint.failure_count = "active", None, 0
            elif status == "disabled" and endpoint.status != "disabled":
                endpoint.status, endpoint.disabled_at = "disabled", now
            endpoint.updated_at = now
            return endpoint.as_json()

    def revoke(self, account: str, endpoint_id: str, *, now: float) -> dict[str, Any]:
        with self._lock:
            endpoint = self._own(account, endpoint_id)
            endpoint.status, endpoint.revoked_at, endpoint.updated_at = "revoked", now, now
            self._pending = [d for d in self._pending if d.endpoint_id != endpoint_id]
            return endpoint.as_json()

    def rotate(self, account: str, endpoint_id: str, *, now: float) -> dict[str, Any]:
        with self._lock:
            endpoint = self._own(account, endpoint_id)
            endpoint.secret, endpoint.updated_at = new_secret(), now
            return endpoint.as_json(with_secret=True)

    def deliveries(self, account: str, endpoint_id: str) -> list[dict[str, Any]]:
        with self._lock:
            self._own(account, endpoint_id)
            return [dict(a) for a in reversed(self._log) if a["endpoint_id"] == endpoint_id]

    def events(self, account: str, *, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            mine = [e.body for e in reversed(self._events) if e.account == account]
            return [json.loads(json.dumps(body)) for body in mine[:limit]]

    # -- events and deliveries ---------------------------------------------------------------

    def emit(
        self,
        account: str,
        event_type: str,
        payload_key: str,
        data: dict[str, Any],
        *,
        now: float,
        due: float,
        test_endpoint: str | None = None,
    ) -> Event:
        """Record an event and queue one delivery per active endpoint subscribed to it."""
        event_id = _id("evt")
        body: dict[str, Any] = {
            "id": event_id,
            "type": event_type,
            "api_version": API_VERSION,
            "created_at": iso(now),
            payload_key: data,
        }
        if test_endpoint is not None:
            body["test"] = True
        event = Event(id=event_id, account=account, type=event_type, created_at=now, body=body)
        with self._lock:
            if test_endpoint is None:
                self._events.append(event)
                del self._events[:-MAX_LOG]
            for endpoint in self._endpoints.values():
                wanted = endpoint.id == test_endpoint if test_endpoint else event_type in endpoint.event_types
                if endpoint.account == account and endpoint.status == "active" and wanted:
                    self._pending.append(Delivery(id=_id("whdel"), event=event, endpoint_id=endpoint.id, due=due))
        return event

    def due(self, now: float) -> list[tuple[Delivery, str, str]]:
        """Deliveries whose time has come, with their endpoint's URL and current secret; they leave the queue."""
        with self._lock:
            ready = [d for d in self._pending if d.due <= now]
            self._pending = [d for d in self._pending if d.due > now]
            out = []
            for delivery in ready:
                endpoint = self._endpoints.get(delivery.endpoint_id)
                if endpoint is not None and endpoint.status == "active":
                    delivery.attempts += 1
                    out.append((delivery, endpoint.url, endpoint.secret))
            return out

    def requeue(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending.append(delivery)

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def record_attempt(
        self,
        delivery: Delivery,
        *,
        at: float,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        retry_due: float | None,
        max_attempts: int,
        disable_after: int,
    ) -> None:
        """Log one attempt; on failure count it against the endpoint and queue the retry, if any is left."""
        success = error is None and status_code is not None and 200 <= status_code < 300
        with self._lock:
            self._log.append(
                {
                    "id": f"{delivery.id}_{delivery.attempts}",
                    "object": "webhook_delivery",
                    "endpoint_id": delivery.endpoint_id,
                    "event_id": delivery.event.id,
                    "event_type": delivery.event.type,
                    "attempt": delivery.attempts,
                    "status_code": status_code,
                    "success": success,
                    "error": error,
                    "duration_ms": round(duration_ms, 1),
                    "created_at": iso(at),
                }
            )
            del self._log[:-MAX_LOG]
            endpoint = self._endpoints.get(delivery.endpoint_id)
            if endpoint is None:
                return
            if success:
                endpoint.failure_count, endpoint.last_success_at = 0, at
                return
            endpoint.failure_count += 1
            endpoint.last_failure_at = at
            if endpoint.failure_count >= disable_after and endpoint.status == "active":
                endpoint.status, endpoint.disabled_at, endpoint.updated_at = "disabled", at, at
                self._pending = [d for d in self._pending if d.endpoint_id != endpoint.id]
                return
            if retry_due is not None and delivery.attempts < max_attempts:
                delivery.due = retry_due
                self._pending.append(delivery)

    def attempts(self) -> list[dict[str, Any]]:
        """Every logged attempt, oldest first (``GET /_sandbox/state``)."""
        with self._lock:
            return [dict(a) for a in self._log]

    def endpoints_snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{**e.as_json(), "account": e.account} for e in self._endpoints.values()]


def _parse_endpoint(
    body: object, *, allow_loopback: bool, partial: bool
) -> tuple[str | None, str | None, list[str] | None]:
    if not isinstance(body, dict):
        raise validation_failed(["body: must be a JSON object"])
    problems: list[str] = []
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        problems.append(f"name: must be a string of at most {MAX_NAME} characters")
    url = body.get("url")
    if url is None and not partial:
        problems.append("url: is required")
    types = body.get("event_types")
    if types is None and not partial:
        problems.append(f"event_types: is required (any of {', '.join(EVENT_TYPES)})")
    elif types is not None and (
        not isinstance(types, list)
        or not types
        or any(t not in EVENT_TYPES for t in types)
        or len(set(types)) != len(types)
    ):
        problems.append(f"event_types: must be a non-empty list of distinct values from {', '.join(EVENT_TYPES)}")
    if problems:
        raise validation_failed(problems)
    if url is not None:
        reason = url_problem(url, allow_loopback=allow_loopback)
        if reason is not None:
            raise SandboxError(400, "webhook_url_rejected", f"The webhook URL is not allowed: {reason}.")
    return name, url, list(types) if types is not None else None
