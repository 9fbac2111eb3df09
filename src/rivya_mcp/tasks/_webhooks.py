"""Webhook completion: with a public URL, Rivya tells us when a task is done instead of being asked.

(The HTTP route that reads a delivery, with its size cap and deadline, is ``transport``'s; this
module decides what a delivery's bytes mean and does what it says.)

At start the HTTP server finds its endpoint (by URL, through the list endpoint) or creates one for
`generation.succeeded` and `generation.failed`, re-enables it if Rivya disabled it after failed
deliveries (and says so), and keeps the signing secret where the journal is (its ``meta`` table: a
0600 file in the data folder, or the database replicas share).

**The signature scheme is learned, not guessed.** rivya-api.md §3.8 is cut off before it. After
registering, the server asks for the documented test delivery (``POST /webhooks/{id}/test``) and
verifies it with each convention of a small known set (``client.detect_convention``: Standard
Webhooks, ``t=…,v1=…`` as Stripe signs, a hex HMAC of the body; the secret base64 or as text;
seconds or milliseconds). The one that verifies is pinned in the endpoint record, and from then on
every delivery is verified with it alone (``client.verify_delivery``). Every start asks for a test
delivery again, which also proves that the public URL reaches this server. If none verifies, or
none arrives, or registration fails, a WARNING at start names the cause, ``Runtime.webhooks``
says ``unverified`` (the readiness check and ``rivya-mcp doctor`` show it), and tasks finish by
polling at the documented pace: the slower fallback pace (``WEBHOOK_FALLBACK_POLL_FACTOR``) holds
only while deliveries verify.

Deliveries arrive at ``WEBHOOK_PATH``, are verified, their event id recorded (so a replay gets
``duplicate``) *before* the answer goes out, and are then applied: the status is recorded, a call
waiting on the task is woken to fetch the image, or, with no one waiting, the image is downloaded
and saved here. A test event, or one for a task this server did not create, is acknowledged and
changes nothing; an event id already applied changes nothing, on any replica. Polling goes on as a
slow fallback, so a lost delivery costs at most one slow interval, never the image.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
from pydantic import ValidationError

from rivya_mcp.client import (
    SUCCEEDED,
    AsyncRivyaClient,
    Generation,
    RivyaError,
    SignatureConvention,
    Verdict,
    detect_convention,
    signature_header_names,
    verify_delivery,
)
from rivya_mcp.journal import AsyncJournal
from rivya_mcp.tasks._ledger import saved_file
from rivya_mcp.tasks._runtime import Runtime
from rivya_mcp.tasks._service import TaskService

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/rivya"
EVENT_TYPES = ["generation.succeeded", "generation.failed"]
ENDPOINT_NAME = "rivya-mcp"
META_NAME = "webhook_endpoint"
# A generation event is a few KB; anything far larger is not one. The HTTP route refuses more
# before reading it (``transport``); this is the receiver's own check on what it is handed.
MAX_DELIVERY_BYTES = 1024 * 1024
# How long an image save started by a delivery waits for a call that is already saving it.
SAVE_WAIT_SECONDS = 30.0
# How long the start waits for the test delivery it asked for (Rivya retries a failed delivery).
TEST_DELIVERY_WAIT_SECONDS = 30.0
# While waiting, the shared record is looked at this often (a replica behind the same public URL
# may be the one that received it).
TEST_DELIVERY_LOOK_SECONDS = 0.5
# How far apart two replicas' clocks may be when one says it verified the other's test delivery.
CLOCK_SLACK_SECONDS = 5.0


def webhook_url(public_url: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH


def public_host(public_url: str) -> str:
    """The ``name[:port]`` clients and Rivya use to reach ``public_url`` (for the Host check)."""
    return urlsplit(public_url).netloc.rpartition("@")[2]


@dataclass(frozen=True)
class EndpointRecord:
    """What the data folder keeps about our endpoint: the secret is shown by Rivya only once.

    ``convention``: the pinned signature convention (``SignatureConvention.name``), None until a
    delivery verified; ``verified_at``: the Unix time a test delivery last verified (replicas read
    it to learn that another one received theirs).
    """

    endpoint_id: str
    url: str
    base_url: str
    secret: str
    convention: str | None = None
    verified_at: float | None = None

    @property
    def pinned(self) -> SignatureConvention | None:
        if self.convention is None:
            return None
        try:
            return SignatureConvention.parse(self.convention)
        except ValueError:
            return None


class SecretStore:
    """The endpoint record in the task journal's ``meta`` table, under this upstream and account.

    So the secret is where the journal is: a 0600 file in the data folder (SQLite) or the database
    every replica shares (PostgreSQL), and every replica verifies with the same one.
    """

    def __init__(self, journal: Callable[[], Awaitable[AsyncJournal | None]]) -> None:
        self._open = journal

    async def _journal(self) -> AsyncJournal:
        journal = await self._open()
        if journal is None:
            raise OSError("the task journal is unavailable, so the webhook secret cannot be kept")
        return journal

    async def load(self) -> EndpointRecord | None:
        raw = await (await self._journal()).run(lambda j: j.owned_meta(META_NAME))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            convention = data.get("convention")
            verified_at = data.get("verified_at")
            return EndpointRecord(
                str(data["endpoint_id"]),
                str(data["url"]),
                str(data["base_url"]),
                str(data["secret"]),
                convention=convention if isinstance(convention, str) else None,
                verified_at=float(verified_at) if isinstance(verified_at, int | float) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("webhooks: the stored endpoint record is unreadable; a new signing secret will be fetched")
            return None

    async def save(self, record: EndpointRecord) -> None:
        value = json.dumps(dataclasses.asdict(record))
        await (await self._journal()).run(lambda j: j.set_owned_meta(META_NAME, value))

    async def current(self) -> EndpointRecord | None:
        """Read for each delivery: `rivya-mcp webhooks rotate-secret` (another process) may have
        replaced the secret, and from then on only the new one is accepted."""
        return await self.load()


async def ensure_endpoint(client: AsyncRivyaClient, store: SecretStore, *, url: str, base_url: str) -> EndpointRecord:
    """Our endpoint at ``url``, with a signing secret we hold: found, re-keyed or created, and
    re-enabled if Rivya disabled it (after too many failed deliveries)."""
    saved = await store.load()
    existing = next(
        (e for e in await client.list_webhooks() if e.url == url and (e.status or "active") != "revoked"), None
    )
    if existing is not None and (existing.status or "active") != "active":
        await client.enable_webhook(existing.id)
        log.warning(
            "webhooks: endpoint %s was %s at Rivya (%s failed deliveries in a row); re-enabled it",
            existing.id,
            existing.status,
            "?" if existing.failure_count is None else f"{existing.failure_count:g}",
        )
    if existing is not None and saved is not None and saved.endpoint_id == existing.id and saved.base_url == base_url:
        return saved
    if existing is not None:
        # Registered earlier (by us elsewhere, or the secret file was lost): the secret can't be read
        # back, only replaced.
        endpoint = await client.rotate_webhook_secret(existing.id)
        log.info("webhooks: endpoint %s found for %s; signing secret rotated", existing.id, url)
    else:
        endpoint = await client.create_webhook(url=url, event_types=EVENT_TYPES, name=ENDPOINT_NAME)
        log.info("webhooks: endpoint %s created for %s", endpoint.id, url)
    if not endpoint.signing_secret:
        raise RivyaError("Rivya did not return the webhook's signing secret")
    # A new secret: whatever was pinned is kept (the scheme is Rivya's, not the secret's) and confirmed again.
    pinned = saved.convention if saved is not None else None
    record = EndpointRecord(endpoint.id, url, base_url, endpoint.signing_secret, convention=pinned)
    await store.save(record)
    return record


async def rotate_secret(client: AsyncRivyaClient, store: SecretStore, *, url: str, base_url: str) -> EndpointRecord:
    """``rivya-mcp webhooks rotate-secret``: a new secret for our endpoint (registered if missing)."""
    record = await ensure_endpoint(client, store, url=url, base_url=base_url)
    endpoint = await client.rotate_webhook_secret(record.endpoint_id)
    if not endpoint.signing_secret:
        raise RivyaError("Rivya did not return the new signing secret")
    rotated = dataclasses.replace(record, secret=endpoint.signing_secret)
    await store.save(rotated)
    return rotated


def event_generation(event: dict[str, Any]) -> Generation | None:
    """The generation an event carries, under ``data`` or ``generation`` (rivya-api.md §3.8 cuts off
    before naming it); None when there is none."""
    for key in ("data", "generation"):
        value = event.get(key)
        if isinstance(value, dict):
            try:
                return Generation.model_validate(value)
            except ValidationError:
                return None
    return None


@dataclass(frozen=True)
class Delivery:
    """What to answer a delivery, and the event to apply once the answer has gone out (if any)."""

    status: int
    body: dict[str, Any]
    event: dict[str, Any] | None = None


def is_test_event(event: Mapping[str, Any]) -> bool:
    """A test delivery (``POST /webhooks/{id}/test``): marked ``test``, or typed as one. Never applied."""
    kind = event.get("type")
    return event.get("test") is True or (isinstance(kind, str) and (kind == "test" or kind.endswith(".test")))


class WebhookReceiver:
    """What a delivery's bytes mean (verified, new, a task of ours) and what it does to that task."""

    def __init__(self, service: TaskService, store: SecretStore, *, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.store = store
        self._clock = clock
        self._record: EndpointRecord | None = None
        # While the start waits for its test delivery: a refusal then ends the wait at once.
        self._learning = False
        self._arrived = anyio.Event()
        self._refused: str | None = None

    @property
    def runtime(self) -> Runtime:
        return self.service.runtime

    def use(self, record: EndpointRecord) -> None:
        self._record = record

    async def _verify(self, headers: Mapping[str, str], body: bytes) -> tuple[Verdict, EndpointRecord | None]:
        """The delivery checked with the pinned convention; with none pinned (or while the start
        waits for its test delivery), with each known one, pinning the one that verifies."""
        # The journal is the truth: `rivya-mcp webhooks rotate-secret` (another process) replaces
        # the record, and from then on only the new secret is accepted.
        record = await self.store.current() or self._record
        if record is None:
            return Verdict(False, "no webhook endpoint is registered yet"), None
        now = self._clock()
        pinned = record.pinned
        if pinned is not None:
            verdict = verify_delivery(pinned, headers, body, record.secret, now=now)
            if verdict.ok or not self._learning:
                return verdict, record
        detected = detect_convention(headers, body, record.secret, now=now)
        if detected is None:
            seen = ", ".join(signature_header_names(headers)) or "none"
            return Verdict(False, f"no known signature convention verifies it (signature headers: {seen})"), record
        if pinned is not None:
            log.warning("webhooks: deliveries are now signed as %s (was %s); pinned", detected.name, pinned.name)
        else:
            log.info("webhooks: deliveries are signed as %s; pinned", detected.describe())
        record = dataclasses.replace(record, convention=detected.name)
        await self.store.save(record)
        self._record = record
        return verify_delivery(detected, headers, body, record.secret, now=now), record

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Verify a delivery and record its event id; the answer goes out only after that record."""
        if len(body) > MAX_DELIVERY_BYTES:
            return Delivery(413, {"error": "payload too large"})
        verdict, record = await self._verify(headers, body)
        if not verdict.ok:
            log.warning("webhooks: delivery refused: %s", verdict.problem)
            if self._learning:
                self._refused = verdict.problem
                self._arrived.set()
            elif self.runtime.webhooks == "verified":
                # Deliveries that do not verify (a new scheme?) cannot replace polling: back to its pace.
                self.runtime.set_webhooks("unverified")
            return Delivery(401, {"error": "signature verification failed"})
        try:
            event = json.loads(body)
        except ValueError:
            return Delivery(400, {"error": "body is not JSON"})
        if not isinstance(event, dict):
            return Delivery(400, {"error": "body is not an event"})
        self.runtime.set_webhooks("verified")
        if is_test_event(event) and record is not None:
            # Said where every replica can read it: the one that asked for it may be another.
            await self.store.save(dataclasses.replace(await self.store.current() or record, verified_at=self._clock()))
        self._arrived.set()
        event_id = verdict.event_id or _event_id(event, body)
        ledger = await self.runtime.ledger()
        if not await ledger.first_sight_of_event(event_id):
            # A duplicate from Rivya or a replay: acknowledged (so it is not sent again), applied once only.
            return Delivery(200, {"received": True, "duplicate": True})
        # Acknowledged first: the download and save run after the answer has gone out.
        return Delivery(200, {"received": True}, event=event)

    async def apply(self, event: dict[str, Any]) -> None:
        if event.get("type") not in EVENT_TYPES or is_test_event(event):
            return
        generation = event_generation(event)
        if generation is None:
            log.warning("webhooks: event %s carries no readable generation", event.get("id"))
            return
        async with self.runtime.session():
            await self.complete(generation)

    async def complete(self, generation: Generation) -> None:
        # The task's own person (and key): the news lands in their row, their image is saved for them.
        caller = await self.runtime.caller_of(generation.id)
        if caller is None:
            log.debug("webhooks: task %s is not one of ours; ignored", generation.id)
            return
        async with self.runtime.acting_for(caller):
            await self._complete(generation)

    async def _complete(self, generation: Generation) -> None:
        ledger = await self.runtime.ledger()
        entry = await ledger.get(generation.id)
        if entry is None:
            return
        if entry.is_terminal and (entry.status != SUCCEEDED or saved_file(entry) is not None):
            # Finished already: a late or out-of-order event (failed after succeeded) changes nothing.
            return
        if not generation.is_terminal:
            return
        # The journal holds the final status before anyone is woken: a call (or replica) that wakes
        # reads it there.
        await ledger.updated(generation)
        log.info("webhooks: task %s %s", generation.id, generation.status)
        if await self.runtime.announce(generation):
            return  # a call here is following this task: woken, it fetches and saves the image itself
        if generation.status != SUCCEEDED:
            return
        async with self.runtime.following(generation.id, timeout=SAVE_WAIT_SECONDS) as ours:
            if not ours:
                return  # someone else is saving it
            try:
                await self.service.save(generation, prompt=entry.prompt or "", locked=True)
            except (RivyaError, OSError) as exc:
                # Not lost: the task stays unfinished in the journal; get_task or the recovery saves it.
                log.warning("webhooks: task %s succeeded but its image could not be saved yet: %s", generation.id, exc)

    async def fill_gaps(self, client: AsyncRivyaClient) -> int:
        """Apply recent events this server has not seen (deliveries missed while it was down)."""
        applied = 0
        ledger = await self.runtime.ledger()
        for event in reversed(await client.list_webhook_events()):
            event_id = event.get("id")
            generation = event_generation(event)
            if not isinstance(event_id, str) or generation is None:
                continue
            if await self.runtime.caller_of(generation.id) is None:
                continue
            if await ledger.first_sight_of_event(event_id):
                await self.complete(generation)
                applied += 1
        return applied

    async def _confirm(self, client: AsyncRivyaClient, record: EndpointRecord, *, wait: float) -> str | None:
        """Ask for the test delivery and wait for it to verify; None when it did, else why not."""
        asked_at = self._clock()
        self._refused = None
        self._learning = True
        try:
            try:
                await client.send_test_webhook(record.endpoint_id)
            except RivyaError as exc:
                return f"Rivya did not send the test delivery ({exc})"
            with anyio.move_on_after(wait):
                while True:
                    current = await self.store.current()
                    # (Replicas' clocks may differ a little: the record is written by whichever received it.)
                    fresh = current is not None and current.verified_at is not None
                    if fresh and current is not None and (current.verified_at or 0.0) >= asked_at - CLOCK_SLACK_SECONDS:
                        return None
                    if self._refused is not None:
                        return f"the test delivery arrived, but {self._refused}"
                    self._arrived = anyio.Event()
                    with anyio.move_on_after(TEST_DELIVERY_LOOK_SECONDS):
                        await self._arrived.wait()
            return f"no test delivery reached {record.url} within {wait:g} s (is it routed to this server?)"
        finally:
            self._learning = False

    async def start(self, *, public_url: str, test_wait: float = TEST_DELIVERY_WAIT_SECONDS) -> None:
        """Register (or find) the endpoint, learn its signature convention, then fill gaps.

        Never fatal: polling covers everything. What goes wrong is said once, as a WARNING, and in
        ``Runtime.webhooks`` (``unverified``: the documented poll pace applies). The recovery pass
        waits until this is over (``Runtime.hold_recovery``; the HTTP app takes the hold before it
        starts serving): a task a missed event finished costs no status request.
        """
        release = self.runtime.hold_recovery()
        settings = self.runtime.settings
        runtime = self.runtime
        runtime.set_webhooks("verifying")
        try:
            async with runtime.session():
                client = runtime.client()
                record = await ensure_endpoint(
                    client, self.store, url=webhook_url(public_url), base_url=settings.base_url
                )
                self.use(record)
                problem = await self._confirm(client, record, wait=test_wait)
                if problem is None:
                    runtime.set_webhooks("verified")
                else:
                    runtime.set_webhooks("unverified")
                    log.warning(
                        "webhooks: unverified: %s. Tasks finish by polling at the documented pace; "
                        "`rivya-mcp doctor --public-url %s` shows the details.",
                        problem,
                        public_url,
                    )
                applied = await self.fill_gaps(client)
                if problem is None:
                    pinned = (await self.store.current() or record).convention
                    log.info(
                        "webhooks: receiving at %s, deliveries signed as %s (%d missed event(s) applied)",
                        record.url,
                        pinned,
                        applied,
                    )
        except (RivyaError, OSError) as exc:
            runtime.set_webhooks("unverified")
            log.warning("webhooks: not registered (%s); tasks finish by polling at the documented pace", exc)
        finally:
            release()


def _event_id(event: Mapping[str, Any], body: bytes) -> str:
    """The event's own id (signed with the body), or, for one without, the body's digest."""
    event_id = event.get("id")
    if isinstance(event_id, str) and event_id:
        return event_id
    return "sha256:" + hashlib.sha256(body).hexdigest()
