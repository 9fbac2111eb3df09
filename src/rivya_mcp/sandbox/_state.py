"""All sandbox state behind one lock: accounts and wallets, tasks, files, media links, the ledger,
idempotency records, rate-limit windows and fault rules.

Task status is never stored as "current": it is derived from the task's schedule and the sandbox
clock whenever someone looks (moto's lazily advancing ``ManagedState``), so no background thread
is needed. Settling a finished task (ledger entry, refund, result URL) happens on that first look.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from rivya_mcp.manifest import REFERENCE_ITEMS_KEY
from rivya_mcp.sandbox._config import SandboxConfig
from rivya_mcp.sandbox._errors import SandboxError, not_found
from rivya_mcp.sandbox._profile import Profile, get_profile
from rivya_mcp.sandbox._render import ImageFormat, RenderSpec, output_size, parse_ratio, reference_ratio, render
from rivya_mcp.sandbox._validate import CreateRequest, ReferenceTarget
from rivya_mcp.sandbox.steering._clock import Clock, SandboxClock, iso
from rivya_mcp.sandbox.steering._faults import MEDIA_PREFIX, FaultRule
from rivya_mcp.sandbox.steering._magic import parse_magic, strip_magic
from rivya_mcp.sandbox.webhooks._delivery import DeliveryFault
from rivya_mcp.sandbox.webhooks._endpoints import TEST_EVENT_TYPE, WebhookRegistry

logger = logging.getLogger("rivya_mcp.sandbox")

Status = Literal["queued", "processing", "succeeded", "failed"]
GENERATION_FAILED = {"code": "generation_failed", "message": "The generation failed."}
# Sandbox decision: the docs do not name a moderation code; `content_moderated` is the sandbox's.
CONTENT_MODERATED = {"code": "content_moderated", "message": "The request was blocked by content moderation."}
RATIO_KEYS = ("aspectRatio", "aspect_ratio", "imageSize", "size")
FORMAT_KEYS = ("outputFormat", "output_format")


@dataclass
class Task:
    id: str
    account: str
    model: str
    mode: str
    prompt: str | None
    params: dict[str, Any]
    effective_params: dict[str, Any]
    reserved_credits: int
    created_at: float
    processing_at: float
    finished_at: float
    outcome: Literal["succeeded", "failed"]
    error: dict[str, str] | None
    references: list[ReferenceTarget]
    idempotency_key: str | None
    client_request_id: str | None
    final_credits: int = 0
    settled: bool = False
    result_token: str | None = None
    image: bytes | None = field(default=None, repr=False)
    # ``[sandbox:result=NAME]``: the result is the image put under NAME (its own bytes and type).
    fixed_result: str | None = None

    def status_at(self, now: float) -> Status:
        if now >= self.finished_at:
            return self.outcome
        if now >= self.processing_at:
            return "processing"
        return "queued"

    def updated_at(self, status: Status) -> float:
        return {"queued": self.created_at, "processing": self.processing_at}.get(status, self.finished_at)


@dataclass
class StoredFile:
    id: str
    account: str
    kind: str
    name: str
    mime_type: str
    data: bytes = field(repr=False)
    created_at: float
    token: str
    model: str | None
    client_request_id: str | None


@dataclass(frozen=True)
class MediaLink:
    source: Literal["file", "task"]
    id: str
    account: str
    issued_at: float


@dataclass(frozen=True)
class Media:
    data: bytes
    mime_type: str


def _new_id(prefix: str) -> str:
    # Ids and media tokens come from `secrets`, not the seeded RNG: they must be unguessable.
    return f"{prefix}_{secrets.token_hex(12)}"


def fingerprint(body: Any) -> str:
    """A stable digest of a JSON body, for idempotency comparisons."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class SandboxState:
    """The live state of one sandbox. Every public method is thread-safe."""

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self._lock = threading.RLock()
        self._config = config if config is not None else SandboxConfig()
        self.clock = SandboxClock(clock)
        # Moves with every change worth keeping (tasks, files, links, wallets, the ledger), so the
        # embedded sandbox writes its state to disk only when there is something new (``_persist``).
        self.revision = 0
        self._clear()

    def _clear(self) -> None:
        self._balances: dict[str, int] = {}
        self._tasks: dict[str, Task] = {}
        self._files: dict[str, StoredFile] = {}
        self._links: dict[str, MediaLink] = {}
        self._ledger: list[dict[str, Any]] = []
        # (account, key) → (body fingerprint, task id, when the first create under the key arrived)
        self._idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}
        self._rate: dict[str, deque[float]] = {}
        self._faults: list[FaultRule] = []
        self._delivery_faults: list[DeliveryFault] = []
        # Images put with PUT /_sandbox/results/{name}: name → (bytes, MIME type).
        self._fixed_results: dict[str, Media] = {}
        self._rng = random.Random(self._config.seed)
        # Task timings draw from their own seeded RNG, so fault rules firing do not shift them.
        self._timing_rng = random.Random(f"{self._config.seed}:timings")
        self.webhooks = WebhookRegistry()
        # The base URL the API was last reached at: a webhook event built while no request is being
        # answered still carries result URLs the receiver can fetch.
        self._seen_base_url = "http://sandbox.invalid"

    # -- config, clock, reset ---------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        with self._lock:
            return self._config

    def update_config(self, changes: dict[str, Any]) -> SandboxConfig:
        with self._lock:
            self._config = self._config.updated(changes)
            if "seed" in changes:
                self._rng = random.Random(self._config.seed)
                self._timing_rng = random.Random(f"{self._config.seed}:timings")
            return self._config

    @property
    def profile(self) -> Profile:
        """How this sandbox decides where the docs are silent (``default`` or ``variant``)."""
        with self._lock:
            return get_profile(self._config.profile)

    def retry_after_header(self, seconds: float) -> str:
        # An HTTP date is absolute, and the client compares it with its own clock: it is written
        # from the wall clock even when the sandbox clock was moved forward.
        return self.profile.retry_after_header(seconds, time.time())

    def now(self) -> float:
        return self.clock.now()

    def advance_clock(self, seconds: float) -> float:
        """Move sandbox time forward (finishes tasks and expires URLs without waiting)."""
        return self.clock.advance(seconds)

    def reset(self, *, balance: int | None = None) -> None:
        """Forget tasks, files, ledger, faults, idempotency and wallets; optionally set the starting balance."""
        with self._lock:
            if balance is not None:
                self._config = self._config.updated({"starting_balance": balance})
            self._clear()
            self.revision += 1
        logger.info("sandbox reset (starting balance %s)", self.config.starting_balance)

    # -- accounts, credits, rate limits -----------------------------------------------------

    def _wallet(self, account: str) -> int:
        if account not in self._balances:
            self._balances[account] = self._config.starting_balance
        return self._balances[account]

    def _book(self, account: str, task_id: str, delta: int, reason: str, at: float) -> None:
        self.revision += 1
        self._balances[account] = self._wallet(account) + delta
        self._ledger.append(
            {
                "task_id": task_id,
                "account": account,
                "delta": delta,
                "reason": reason,
                "balance_after": self._balances[account],
                "at": iso(at),
            }
        )

    def balance(self, account: str) -> int:
        with self._lock:
            self._advance_all()
            return self._wallet(account)

    def set_balance(self, account: str, credits: int) -> None:
        """Set one account's wallet (tests: e.g. run an account dry)."""
        with self._lock:
            self._balances[account] = credits
            self.revision += 1

    def check_rate(self, account: str) -> None:
        """Count one request for ``account``; raise 429 ``rate_limited`` when over the window's limit."""
        # Sandbox decision: a sliding window per key on the sandbox clock; 429 with Retry-After in
        # whole seconds (the docs give neither numbers nor headers).
        with self._lock:
            limit = self._config.rate_limit
            if limit is None:
                return
            window = self._config.rate_window_seconds
            now = self.now()
            hits = self._rate.setdefault(account, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                retry_after = max(1, int(hits[0] + window - now + 0.999))
                raise SandboxError(
                    429,
                    "rate_limited",
                    f"Too many requests in the current window ({limit} per {window:g} s).",
                    headers={"Retry-After": self.retry_after_header(retry_after)},
                )
            hits.append(now)

    # -- generations ------------------------------------------------------------------------

    def replay(self, account: str, key: str, body_fingerprint: str) -> str | None:
        """The task id stored for this idempotency key, or None; 409 if the body differs, or (a
        profile with ``in_flight_conflict``) while the first create under the key is still in flight."""
        # Sandbox decision: keys are scoped per account, kept until reset, and only successful
        # creates are recorded (a refused request does not consume its key).
        with self._lock:
            record = self._idempotency.get((account, key))
            if record is None:
                return None
            stored_fingerprint, task_id, first_seen = record
            if stored_fingerprint != body_fingerprint:
                raise SandboxError(
                    409,
                    "idempotency_conflict",
                    "This Idempotency-Key was already used with a different request body.",
                )
            # Sandbox decision (§6 does not say what triggers 409): the variant models the first
            # create as "being processed" for a while after it arrived, and refuses a repeat meanwhile.
            if self.profile.in_flight_conflict and self.now() < first_seen + self._config.idempotency_in_flight_seconds:
                raise SandboxError(
                    409,
                    "idempotency_conflict",
                    "A request with this Idempotency-Key is still being processed; retry it later.",
                )
            return task_id

    def create_task(
        self, account: str, request: CreateRequest, *, idempotency_key: str | None, body_fingerprint: str
    ) -> tuple[str, bool]:
        """Reserve credits and queue a task; returns (task id, replayed)."""
        with self._lock:
            if idempotency_key is not None:
                existing = self.replay(account, idempotency_key, body_fingerprint)
                if existing is not None:  # a concurrent twin got here first
                    return existing, True
            self._advance_all()
            cost = request.manifest.base_credits
            balance = self._wallet(account)
            if balance < cost:
                # Sandbox decision: `insufficient_credits` answers synchronously at create time, with
                # the profile's status (402 by default; the docs give none).
                raise SandboxError(
                    self.profile.insufficient_credits_status,
                    "insufficient_credits",
                    f"Not enough credits: {request.manifest.id} needs {cost}, the balance is {balance}.",
                )
            now = self.now()
            magic = parse_magic(request.prompt or "")
            queued, processing = self._config.queued_seconds, self._config.processing_seconds
            if magic.seconds is not None:
                total = queued + processing
                share = queued / total if total > 0 else 0.25
                queued, processing = magic.seconds * share, magic.seconds * (1 - share)
            else:
                # Sandbox decision: the docs give no timings; the profile scales (and may jitter) them.
                queued, processing = self.profile.durations(queued, processing, self._timing_rng)
            error: dict[str, str] | None = None
            if magic.moderated:
                error = dict(CONTENT_MODERATED)
            elif magic.fail:
                error = dict(GENERATION_FAILED)
            task = Task(
                id=_new_id("task"),
                account=account,
                model=request.manifest.id,
                mode=request.mode,
                prompt=request.prompt,
                params=copy.deepcopy(request.params),
                # Parameters left out take the model's documented defaults (e.g. 16:9 JPEG).
                effective_params={
                    **{p.key: p.default for p in request.manifest.params_for(request.mode) if p.default is not None},
                    **copy.deepcopy(request.params),
                },
                reserved_credits=cost,
                created_at=now,
                processing_at=now + queued,
                finished_at=now + queued + processing,
                outcome="failed" if error else "succeeded",
                error=error,
                references=list(request.references),
                idempotency_key=idempotency_key,
                client_request_id=request.client_request_id,
                fixed_result=magic.result,
            )
            self._tasks[task.id] = task
            self._book(account, task.id, -cost, "reserve", now)
            if idempotency_key is not None:
                self._idempotency[(account, idempotency_key)] = (body_fingerprint, task.id, now)
            logger.info("task %s created for %s (%s, %d credits reserved)", task.id, account, task.model, cost)
            return task.id, False

    def _advance(self, task: Task, now: float) -> Status:
        status = task.status_at(now)
        if status in ("succeeded", "failed") and not task.settled:
            task.settled = True
            if status == "succeeded":
                task.final_credits = task.reserved_credits
                # The charge stays; a zero-delta entry records that it was settled.
                self._book(task.account, task.id, 0, "settle", task.finished_at)
                task.result_token = self._issue_link("task", task.id, task.account, task.finished_at)
            else:
                task.final_credits = 0
                self._book(task.account, task.id, task.reserved_credits, "release", task.finished_at)
            logger.info("task %s %s", task.id, status)
            self._emit_task_event(task, status)
        return status

    def _emit_task_event(self, task: Task, status: Status) -> None:
        data = self.task_json(task.account, task.id, self._seen_base_url)
        self.webhooks.emit(
            task.account,
            f"generation.{status}",
            self.profile.webhook_payload_key,
            data,
            now=task.finished_at,
            due=time.monotonic(),
        )

    def saw_base_url(self, base_url: str) -> None:
        self._seen_base_url = base_url

    def settle_due(self) -> None:
        """Settle every task whose time has come (queues its webhook events)."""
        with self._lock:
            self._advance_all()

    def send_test_event(self, account: str, endpoint_id: str) -> dict[str, Any]:
        """``POST /webhooks/{id}/test``: a ``webhook.test`` event naming no task, to this endpoint only."""
        with self._lock:
            self.webhooks.get(account, endpoint_id)  # 404 unless the account owns it
            now = self.now()
            # Sandbox decision: the docs name the test endpoint only ("a safe test event"); its event
            # has a type of its own and carries no generation, so no receiver can mistake it for a task.
            data = {"endpoint_id": endpoint_id, "message": "A test delivery from the Rivya sandbox."}
            event = self.webhooks.emit(
                account,
                TEST_EVENT_TYPE,
                self.profile.webhook_payload_key,
                data,
                now=now,
                due=time.monotonic(),
                test_endpoint=endpoint_id,
            )
            return event.body

    def webhook_signing(self) -> str:
        """How deliveries are signed now: the config's choice, else the profile's."""
        with self._lock:
            return self._config.webhook_signing or self.profile.webhook_signing

    def set_delivery_faults(self, rules: list[DeliveryFault]) -> None:
        with self._lock:
            self._delivery_faults = list(rules)

    def delivery_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.as_json() for r in self._delivery_faults]

    def take_delivery_fault(self, event_type: str) -> DeliveryFault | None:
        """The first delivery fault rule for ``event_type``, spending one of its ``times``."""
        with self._lock:
            for rule in self._delivery_faults:
                if rule.event_type not in (None, event_type):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._delivery_faults.remove(rule)
                return rule
            return None

    def _advance_all(self) -> None:
        now = self.now()
        for task in self._tasks.values():
            if not task.settled:
                self._advance(task, now)

    def task_json(self, account: str, task_id: str, base_url: str, *, as_created: bool = False) -> dict[str, Any]:
        """The public generation object (rivya-api.md §3.3); 404 unless ``account`` owns the task.

        ``as_created`` gives the answer to the create call itself: the task as it was at creation.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.account != account:
                raise not_found("The task")
            status: Status = "queued" if as_created else self._advance(task, self.now())
            terminal = status in ("succeeded", "failed")
            profile = self.profile
            result = None
            if status == "succeeded" and task.result_token is not None:
                url = self._url(base_url, task.result_token)
                # Sandbox decision: the docs list `urls` only "when available"; the variant never does.
                urls = [url] if profile.list_result_urls else None
                result = profile.with_extras({"primary_url": url, "urls": urls}, "generation_result")
            error = None
            if status == "failed" and task.error:
                error = profile.with_extras(task.error, "task_error")
            body = {
                "id": task.id,
                "status": status,
                "model": task.model,
                "reserved_credits": profile.number(task.reserved_credits),
                "final_credits": profile.number(task.final_credits if terminal else 0),
                "created_at": iso(task.created_at),
                "updated_at": iso(task.created_at if as_created else task.updated_at(status)),
                "result": result,
                "error": error,
            }
            return profile.with_extras(body, "generation")

    # -- files and media --------------------------------------------------------------------

    # Sandbox decision: a URL is issued once (at upload, or when the task finishes) and stays the
    # same on every read; it expires `url_ttl_seconds` after issue.
    def _issue_link(self, source: Literal["file", "task"], target: str, account: str, at: float) -> str:
        token = secrets.token_urlsafe(24)
        self._links[token] = MediaLink(source=source, id=target, account=account, issued_at=at)
        return token

    def _url(self, base_url: str, token: str) -> str:
        base = (self._config.public_base_url or base_url).rstrip("/")
        return f"{base}{MEDIA_PREFIX}{token}"

    def _expired(self, link: MediaLink) -> bool:
        # The TTL is read at check time, so `POST /_sandbox/config` also shortens existing URLs.
        return self.now() >= link.issued_at + self._config.url_ttl_seconds

    def add_file(
        self,
        account: str,
        *,
        kind: str,
        name: str,
        mime_type: str,
        data: bytes,
        model: str | None,
        client_request_id: str | None,
        base_url: str,
    ) -> dict[str, Any]:
        with self._lock:
            now = self.now()
            file_id = self.profile.new_file_id()
            token = self._issue_link("file", file_id, account, now)
            self.revision += 1
            self._files[file_id] = StoredFile(
                id=file_id,
                account=account,
                kind=kind,
                name=name,
                mime_type=mime_type,
                data=data,
                created_at=now,
                token=token,
                model=model,
                client_request_id=client_request_id,
            )
            logger.info("file %s stored for %s (%s, %d bytes)", file_id, account, mime_type, len(data))
            return self._file_json(self._files[file_id], base_url)

    def _file_json(self, stored: StoredFile, base_url: str) -> dict[str, Any]:
        # Sandbox decision: the `PublicApiFile` fields are not documented; the profile names them.
        profile = self.profile
        body = {
            profile.file_id_field: stored.id,
            "object": "file",
            "url": self._url(base_url, stored.token),
            "kind": stored.kind,
            "name": stored.name,
            profile.mime_field: stored.mime_type,
            profile.size_field: profile.number(len(stored.data)),
            "created_at": iso(stored.created_at),
        }
        if not profile.file_kind:
            del body["kind"]
        return profile.with_extras(body, "file")

    def file_json(self, account: str, file_id: str, base_url: str) -> dict[str, Any]:
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None or stored.account != account:
                raise not_found("The file")
            return self._file_json(stored, base_url)

    def resolve_reference(self, account: str, url: str) -> ReferenceTarget | str:
        """What a reference URL points at, or why it cannot be used (sandbox-issued URLs only)."""
        # Sandbox decision: only URLs the sandbox issued to this account are accepted: uploaded
        # files and, for chained edits, earlier results. Other URLs are refused, not fetched.
        path = urlsplit(url).path
        if not path.startswith(MEDIA_PREFIX):
            return "must be a URL returned by POST /api/v1/files (the sandbox does not fetch other URLs)"
        with self._lock:
            link = self._links.get(path[len(MEDIA_PREFIX) :])
            if link is None or link.account != account:
                return "is not a file URL issued to this account"
            if self._expired(link):
                return "has expired; upload the file again"
            return ReferenceTarget(source=link.source, id=link.id)

    def media(self, token: str) -> Media:
        """The bytes behind a media token (rendering a result on first download)."""
        with self._lock:
            link = self._links.get(token)
            if link is None:
                raise not_found("The media")
            if self._expired(link):
                # Sandbox decision: an expired URL answers 410 with the code `url_expired`.
                raise SandboxError(410, "url_expired", "This URL has expired. Fetch the task or file again.")
            if link.source == "file":
                stored = self._files[link.id]
                return Media(stored.data, stored.mime_type)
        with self._lock:
            fixed = self._fixed_results.get(self._tasks[link.id].fixed_result or "")
        if fixed is not None:
            return fixed
        data, fmt = self.task_image(link.id)
        return Media(data, "image/png" if fmt == "PNG" else "image/jpeg")

    def put_result(self, name: str, data: bytes, mime_type: str) -> None:
        """Make ``[sandbox:result=name]`` tasks return exactly ``data`` (``PUT /_sandbox/results/{name}``)."""
        with self._lock:
            self._fixed_results[name] = Media(data, mime_type)

    def task_image(self, task_id: str) -> tuple[bytes, ImageFormat]:
        """Render (once) and return a task's result image. The lock is not held while rendering."""
        with self._lock:
            task = self._tasks[task_id]
            fmt = _format(task.effective_params)
            if task.image is not None:
                return task.image, fmt
            references = list(task.references)
        reference = self._reference_bytes(references[0]) if references else None
        spec = self._render_spec(task, fmt, reference)
        data = render(spec)
        with self._lock:
            task.image = data
        return data, fmt

    def _reference_bytes(self, target: ReferenceTarget) -> bytes | None:
        if target.source == "task":
            return self.task_image(target.id)[0]
        with self._lock:
            stored = self._files.get(target.id)
            return stored.data if stored is not None else None

    def _render_spec(self, task: Task, fmt: ImageFormat, reference: bytes | None) -> RenderSpec:
        params = {k: v for k, v in task.effective_params.items() if k != REFERENCE_ITEMS_KEY}
        ratio = next((r for r in (parse_ratio(params.get(k)) for k in RATIO_KEYS) if r), None)
        if ratio is None and reference is not None:
            ratio = reference_ratio(reference)
        width, height = output_size(*(ratio or (1, 1)))
        prompt = task.prompt or ""
        material = json.dumps([self.config.seed, params.get("seed"), task.model, prompt, params], sort_keys=True)
        watermark = params.get("watermark")
        label = f"Rivya sandbox · {task.model}" + (" · edit" if task.mode == "edit" else "")
        return RenderSpec(
            width=width,
            height=height,
            format=fmt,
            prompt=strip_magic(prompt),
            seed_material=material,
            label=label,
            watermark=watermark if isinstance(watermark, str) and watermark else None,
            reference=reference,
        )

    # -- faults -----------------------------------------------------------------------------

    def set_faults(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._faults = list(rules)

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_dict() for rule in self._faults]

    def take_fault(self, method: str, path: str) -> FaultRule | None:
        """The first rule that matches and fires (counting the hit), or None."""
        with self._lock:
            for rule in self._faults:
                if not rule.matches(method, path):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                rule.hits += 1
                return copy.copy(rule)
            return None

    # -- what outlives a restart (the embedded sandbox: ``_persist``) -------------------------

    def durable(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """What a restarted sandbox needs to answer for its tasks and files as before: JSON-ready
        state, and each file's bytes by file id. Not kept: faults, rate windows, webhook endpoints
        and deliveries, the clock's offset, rendered images (rendered again, the same, on demand)."""
        with self._lock:
            tasks = []
            for task in self._tasks.values():
                fields = {name: getattr(task, name) for name in _TASK_FIELDS}
                fields["references"] = [{"source": r.source, "id": r.id} for r in task.references]
                tasks.append(copy.deepcopy(fields))
            files = [{name: getattr(f, name) for name in _FILE_FIELDS} for f in self._files.values()]
            data = {
                "balances": dict(self._balances),
                "ledger": copy.deepcopy(self._ledger),
                "tasks": tasks,
                "files": files,
                "links": {
                    token: [link.source, link.id, link.account, link.issued_at] for token, link in self._links.items()
                },
                "idempotency": [[a, k, *record] for (a, k), record in self._idempotency.items()],
            }
            return data, {f.id: f.data for f in self._files.values()}

    def restore(self, data: dict[str, Any], file_bytes: dict[str, bytes]) -> None:
        """Take back what ``durable`` gave (raises KeyError/TypeError/ValueError on a bad record).

        Sandbox decision: a wallet below the starting balance is topped up to it, so that trying the
        server for weeks never runs the embedded sandbox dry (it spends no real credits anyway).
        """
        tasks = {}
        for fields in data["tasks"]:
            references = [ReferenceTarget(source=r["source"], id=str(r["id"])) for r in fields["references"]]
            task = Task(**{**{name: fields[name] for name in _TASK_FIELDS}, "references": references})
            tasks[task.id] = task
        files = {}
        for fields in data["files"]:
            stored = StoredFile(**{name: fields[name] for name in _FILE_FIELDS}, data=file_bytes[fields["id"]])
            files[stored.id] = stored
        links = {
            str(token): MediaLink(source=source, id=str(target), account=str(account), issued_at=float(at))
            for token, (source, target, account, at) in data["links"].items()
        }
        idempotency = {(str(a), str(k)): (str(fp), str(t), float(at)) for a, k, fp, t, at in data["idempotency"]}
        with self._lock:
            starting = self._config.starting_balance
            self._balances = {str(a): max(int(b), starting) for a, b in data["balances"].items()}
            self._ledger = list(data["ledger"])
            self._tasks, self._files, self._links, self._idempotency = tasks, files, links, idempotency

    # -- inspection -------------------------------------------------------------------------

    def snapshot(self, base_url: str = "http://sandbox.invalid") -> dict[str, Any]:
        """A deep copy of everything, JSON-ready (``GET /_sandbox/state``). Never contains keys."""
        with self._lock:
            self._advance_all()
            now = self.now()
            tasks = []
            for task in self._tasks.values():
                status = task.status_at(now)
                tasks.append(
                    {
                        "id": task.id,
                        "status": status,
                        "model": task.model,
                        "mode": task.mode,
                        "account": task.account,
                        "prompt": task.prompt,
                        "params": copy.deepcopy(task.params),
                        "reserved_credits": task.reserved_credits,
                        "final_credits": task.final_credits if status in ("succeeded", "failed") else 0,
                        "created_at": iso(task.created_at),
                        "finishes_at": iso(task.finished_at),
                        "idempotency_key": task.idempotency_key,
                        "client_request_id": task.client_request_id,
                        "references": [{"source": r.source, "id": r.id} for r in task.references],
                        "result_url": self._url(base_url, task.result_token) if task.result_token else None,
                        "error": dict(task.error) if status == "failed" and task.error else None,
                    }
                )
            files = [
                {
                    **self._file_json(f, base_url),
                    "id": f.id,  # whatever the profile calls it on the API
                    "account": f.account,
                    "model": f.model,
                    "client_request_id": f.client_request_id,
                }
                for f in self._files.values()
            ]
            return {
                "now": iso(now),
                "config": self._config.as_dict(),
                "tasks": tasks,
                "ledger": copy.deepcopy(self._ledger),
                "balances": dict(self._balances),
                "files": files,
                "faults": [rule.as_dict() for rule in self._faults],
                "webhook_endpoints": self.webhooks.endpoints_snapshot(),
                "webhook_deliveries": self.webhooks.attempts(),
                "webhook_delivery_faults": [r.as_json() for r in self._delivery_faults],
            }


# The fields of a task and a file that ``durable`` keeps (a task's rendered image is not one).
_TASK_FIELDS = tuple(name for name in Task.__dataclass_fields__ if name not in ("image", "references"))
_FILE_FIELDS = tuple(name for name in StoredFile.__dataclass_fields__ if name != "data")


def _format(params: dict[str, Any]) -> ImageFormat:
    value = next((params[k] for k in FORMAT_KEYS if k in params), "jpeg")
    return "PNG" if str(value).lower() == "png" else "JPEG"
