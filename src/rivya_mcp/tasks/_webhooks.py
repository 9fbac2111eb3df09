"""Webhook completion: with a public URL, Rivya tells us when a task is done instead of being asked.

(The HTTP route that reads a delivery, with its size cap and deadline, is ``transport``'s; this
module decides what a delivery's bytes mean and does what it says.)

At start the HTTP server finds its endpoint (by URL, through the list endpoint) or creates one for
`generation.succeeded` and `generation.failed`, and keeps the signing secret where the journal is
(its ``meta`` table: a 0600 file in the data folder, or the database replicas share). Deliveries
arrive at ``WEBHOOK_PATH`` on the same HTTP app, are verified (``_webhook_signature``),
acknowledged at once, and then applied: the status is recorded, a call waiting on the task is
woken to fetch the image, or, with no one waiting, the image is downloaded and saved here. A
delivery for a task this server did not create is acknowledged and ignored; an event id already
applied changes nothing, on any replica. Polling goes on as a slow fallback, so a lost delivery
costs at most one slow interval, never the image.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from rivya_mcp.client import SUCCEEDED, AsyncRivyaClient, Generation, RivyaError
from rivya_mcp.journal import AsyncJournal
from rivya_mcp.tasks._ledger import saved_file
from rivya_mcp.tasks._runtime import Runtime
from rivya_mcp.tasks._service import TaskService
from rivya_mcp.tasks._webhook_signature import WebhookVerificationError, verify

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/rivya"
EVENT_TYPES = ["generation.succeeded", "generation.failed"]
ENDPOINT_NAME = "rivya-mcp"
META_NAME = "webhook_endpoint"
# A generation event is a few KB; anything far larger is not one.
MAX_DELIVERY_BYTES = 1024 * 1024
# How long an image save started by a delivery waits for a call that is already saving it.
SAVE_WAIT_SECONDS = 30.0


def webhook_url(public_url: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH


def public_host(public_url: str) -> str:
    """The ``name[:port]`` clients and Rivya use to reach ``public_url`` (for the Host check)."""
    return urlsplit(public_url).netloc.rpartition("@")[2]


@dataclass(frozen=True)
class EndpointRecord:
    """What the data folder keeps about our endpoint: the secret is shown by Rivya only once."""

    endpoint_id: str
    url: str
    base_url: str
    secret: str


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
            return EndpointRecord(
                str(data["endpoint_id"]), str(data["url"]), str(data["base_url"]), str(data["secret"])
            )
        except (ValueError, KeyError, TypeError):
            log.warning("webhooks: the stored endpoint record is unreadable; a new signing secret will be fetched")
            return None

    async def save(self, record: EndpointRecord) -> None:
        value = json.dumps(record.__dict__)
        await (await self._journal()).run(lambda j: j.set_owned_meta(META_NAME, value))

    async def current(self) -> EndpointRecord | None:
        """Read for each delivery: `rivya-mcp webhooks rotate-secret` (another process) may have
        replaced the secret, and from then on only the new one is accepted."""
        return await self.load()


async def ensure_endpoint(client: AsyncRivyaClient, store: SecretStore, *, url: str, base_url: str) -> EndpointRecord:
    """Our endpoint at ``url``, with a signing secret we hold: found, re-keyed or created."""
    saved = await store.load()
    existing = next(
        (e for e in await client.list_webhooks() if e.url == url and (e.status or "active") != "revoked"), None
    )
    if existing is not None and saved is not None and saved.endpoint_id == existing.id and saved.base_url == base_url:
        if (existing.status or "active") != "active":
            log.warning(
                "webhooks: endpoint %s is %s at Rivya (too many failed deliveries?); polling finishes tasks until "
                "it is active again",
                existing.id,
                existing.status,
            )
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
    record = EndpointRecord(endpoint.id, url, base_url, endpoint.signing_secret)
    await store.save(record)
    return record


async def rotate_secret(client: AsyncRivyaClient, store: SecretStore, *, url: str, base_url: str) -> EndpointRecord:
    """``rivya-mcp webhooks rotate-secret``: a new secret for our endpoint (registered if missing)."""
    record = await ensure_endpoint(client, store, url=url, base_url=base_url)
    endpoint = await client.rotate_webhook_secret(record.endpoint_id)
    if not endpoint.signing_secret:
        raise RivyaError("Rivya did not return the new signing secret")
    rotated = EndpointRecord(record.endpoint_id, url, base_url, endpoint.signing_secret)
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


class WebhookReceiver:
    """What a delivery's bytes mean (verified, new, a task of ours) and what it does to that task."""

    def __init__(self, service: TaskService, store: SecretStore, *, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.store = store
        self._clock = clock
        self._record: EndpointRecord | None = None

    @property
    def runtime(self) -> Runtime:
        return self.service.runtime

    def use(self, record: EndpointRecord) -> None:
        self._record = record

    async def _verify(self, headers: Mapping[str, str], body: bytes) -> str:
        # The journal is the truth: `rivya-mcp webhooks rotate-secret` (another process) replaces
        # the record, and from then on only the new secret is accepted.
        record = await self.store.current() or self._record
        if record is None:
            raise WebhookVerificationError("no webhook endpoint is registered yet")
        return verify(record.secret, headers, body, now=self._clock())

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Verify a delivery and record its event id; the answer goes out only after that record."""
        if len(body) > MAX_DELIVERY_BYTES:
            return Delivery(413, {"error": "payload too large"})
        try:
            event_id = await self._verify(headers, body)
        except WebhookVerificationError as exc:
            log.warning("webhooks: delivery refused: %s", exc)
            return Delivery(401, {"error": "signature verification failed"})
        try:
            event = json.loads(body)
        except ValueError:
            return Delivery(400, {"error": "body is not JSON"})
        if not isinstance(event, dict):
            return Delivery(400, {"error": "body is not an event"})
        ledger = await self.runtime.ledger()
        if not await ledger.first_sight_of_event(event_id):
            # A duplicate from Rivya or a replay: acknowledged (so it is not sent again), applied once only.
            return Delivery(200, {"received": True, "duplicate": True})
        # Acknowledged first: the download and save run after the answer has gone out.
        return Delivery(200, {"received": True}, event=event)

    async def apply(self, event: dict[str, Any]) -> None:
        if event.get("type") not in EVENT_TYPES or event.get("test"):
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

    async def start(self, *, public_url: str) -> None:
        """Register (or find) the endpoint, then fill gaps; never fatal: polling covers everything.

        The recovery pass waits until this is over (``Runtime.hold_recovery``; the HTTP app takes the
        hold before it starts serving): a task a missed event finished costs no status request.
        """
        release = self.runtime.hold_recovery()
        settings = self.runtime.settings
        try:
            async with self.runtime.session():
                client = self.runtime.client()
                record = await ensure_endpoint(
                    client, self.store, url=webhook_url(public_url), base_url=settings.base_url
                )
                self.use(record)
                applied = await self.fill_gaps(client)
                log.info("webhooks: receiving at %s (%d missed event(s) applied)", record.url, applied)
        except (RivyaError, OSError) as exc:
            log.warning("webhooks: not registered (%s); tasks finish by polling", exc)
        finally:
            release()
