"""What the client must tolerate, against both sandbox profiles over loopback HTTP.

tests/sandbox/test_profiles.py checks the sandbox's own answers per profile; these check that the
client copes with each profile's reading of every point the docs leave open (docs/sandbox.md):
a repeated Idempotency-Key answered 409 while the first create is in flight, a file object
without ``kind``, a catalog with chat, not-callable and unreadable entries, webhooks signed
another way, and ``Retry-After`` waits longer than the caller's deadline. Each test runs against
both profiles, so one that only passes where the sandbox guessed in the client's favour fails.

Time is fake on both sides: the sandbox runs on a ``ManualClock`` and the client's sleep advances it.
"""

from __future__ import annotations

import io
import logging
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from PIL import Image

from rivya_mcp.client import (
    AsyncRivyaClient,
    CreateNotSettledError,
    DeadlineExceededError,
    IdempotencyConflictError,
    ModelInfo,
    detect_convention,
    verify_delivery,
)
from rivya_mcp.manifest import get_manifest
from rivya_mcp.sandbox import PROFILES, ManualClock, SandboxConfig, start_sandbox

from .conftest import API_KEY

pytestmark = pytest.mark.anyio

MODEL = "flux-kontext-max"
MANIFEST = get_manifest(MODEL)
CONFIG = SandboxConfig(queued_seconds=1.0, processing_seconds=3.0, webhooks_allow_loopback=True)
IN_FLIGHT = CONFIG.idempotency_in_flight_seconds
DROP_ANSWER = {"path": "/api/v1/generations", "method": "POST", "drop": True, "phase": "after", "times": 1}


@dataclass
class Wire:
    """A sandbox of one profile on loopback, its manual clock, and clients to it."""

    profile: str
    base_url: str
    clock: ManualClock
    control: httpx2.AsyncClient
    api_http: httpx2.AsyncClient
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def client(self, **options: Any) -> AsyncRivyaClient:
        options.setdefault("rng", random.Random(5))
        return AsyncRivyaClient(
            API_KEY, self.base_url, http_client=self.api_http, sleep=self.sleep, clock=self.clock, **options
        )

    async def post(self, path: str, body: Any) -> None:
        response = await self.control.post(f"/_sandbox/{path}", json=body)
        assert response.status_code == 200, response.text

    async def faults(self, *rules: dict[str, Any]) -> None:
        await self.post("faults", {"rules": list(rules)})

    async def state(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.control.get("/_sandbox/state")).json()
        return body

    async def charges(self) -> list[dict[str, Any]]:
        return [e for e in (await self.state())["ledger"] if e["delta"] < 0]

    async def api_requests(self, method: str, path: str) -> int:
        records = (await self.control.get("/_sandbox/requests")).json()["requests"]
        return sum(1 for r in records if r["method"] == method and r["path"] == path)


@pytest.fixture(scope="module", params=sorted(PROFILES))
def loopback(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, ManualClock]]:
    clock = ManualClock()
    with start_sandbox(CONFIG.updated({"profile": request.param}), clock=clock) as running:
        yield request.param, running.base_url, clock


@pytest.fixture
async def wire(loopback: tuple[str, str, ManualClock]) -> AsyncIterator[Wire]:
    profile, base_url, clock = loopback
    async with (
        httpx2.AsyncClient(base_url=base_url, timeout=30) as control,
        httpx2.AsyncClient(timeout=30) as api_http,
    ):
        wire = Wire(profile, base_url, clock, control, api_http)
        await wire.post("config", CONFIG.updated({"profile": profile}).as_dict())
        await wire.post("reset", {"balance": 1000})
        await control.delete("/_sandbox/requests")
        yield wire


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 220)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- 1. a create retried under its key and answered 409 --------------------------------------


async def test_a_lost_create_answer_retried_into_409s_still_ends_with_the_task_and_one_charge(wire: Wire) -> None:
    # The first create is processed and charged, its answer dropped; the client's retries carry the
    # same key. The variant answers them 409 idempotency_conflict while the first one is in flight.
    await wire.faults(DROP_ANSWER)
    client = wire.client()
    task = await client.create_generation(model=MODEL, prompt="A paper boat", idempotency_key="k-lost-1")
    state = await wire.state()
    assert [t["id"] for t in state["tasks"]] == [task.id]
    assert len(await wire.charges()) == 1
    creates = await wire.api_requests("POST", "/api/v1/generations")
    # Default: the first retry is a replay. Variant: 409s until the in-flight window has passed.
    assert creates == 2 if wire.profile == "default" else creates >= 3
    assert sum(wire.sleeps) >= (IN_FLIGHT if wire.profile == "variant" else 0)


async def test_not_settled_by_the_deadline_carries_the_key_and_then_settles_with_it(wire: Wire) -> None:
    await wire.post("config", {"idempotency_in_flight_seconds": 30})
    await wire.faults(DROP_ANSWER)
    client = wire.client()
    key = "k-unsettled-1"
    if wire.profile == "default":
        task = await client.create_generation(model=MODEL, prompt="A kite", idempotency_key=key, timeout=5)
    else:
        with pytest.raises(CreateNotSettledError) as caught:
            await client.create_generation(model=MODEL, prompt="A kite", idempotency_key=key, timeout=5)
        error = caught.value
        assert error.idempotency_key == key and error.retryable
        assert "new key" not in str(error).lower() and "new idempotency" not in str(error).lower()
        assert key in str(error)
        assert sum(wire.sleeps) < 5  # the deadline held, whatever the API kept answering
        # Later, as recovery would: the same key, said to have been sent before. One task, one charge.
        wire.clock.advance(30)
        task = await client.create_generation(
            model=MODEL, prompt="A kite", idempotency_key=key, key_sent_before=True, timeout=5
        )
    assert [t["id"] for t in (await wire.state())["tasks"]] == [task.id]
    assert len(await wire.charges()) == 1


async def test_a_key_sent_before_is_not_a_conflict_on_the_first_attempt(wire: Wire) -> None:
    client = wire.client()
    first = await client.create_generation(model=MODEL, prompt="A lamp", idempotency_key="k-resend")
    # A restart re-sends the unconfirmed create at once: the variant still has it in flight.
    again = await client.create_generation(
        model=MODEL, prompt="A lamp", idempotency_key="k-resend", key_sent_before=True, timeout=10
    )
    assert again.id == first.id and len(await wire.charges()) == 1


async def test_a_first_attempt_409_is_still_a_conflict(wire: Wire) -> None:
    client = wire.client()
    await client.create_generation(model=MODEL, prompt="One body", idempotency_key="k-reused")
    wire.clock.advance(IN_FLIGHT + 1)
    with pytest.raises(IdempotencyConflictError):
        await client.create_generation(model=MODEL, prompt="Another body", idempotency_key="k-reused", timeout=10)
    assert len(await wire.charges()) == 1


# --- 2. waits bounded by the caller's deadline ------------------------------------------------


async def test_retry_after_30_on_every_status_poll_never_outlasts_the_deadline(wire: Wire) -> None:
    client = wire.client()
    task = await client.create_generation(model=MODEL, prompt="A slow harbour")
    await wire.faults({"path": "/api/v1/generations/", "method": "GET", "status": 429, "retry_after": 30})
    started = wire.clock()
    with pytest.raises(DeadlineExceededError) as caught:
        await client.get_generation(task.id, timeout=8)
    assert wire.clock() - started < 8
    assert "ran out of time" in str(caught.value) and caught.value.retry_after is not None
    assert caught.value.retry_after >= 29  # seconds, or an HTTP date read back as seconds

    started = wire.clock()
    with pytest.raises(DeadlineExceededError):
        await client.wait_for_generation(task.id, timeout=8)
    assert wire.clock() - started <= 8


async def test_a_create_rate_limited_past_the_deadline_says_it_was_not_accepted_with_its_key(wire: Wire) -> None:
    await wire.faults({"path": "/api/v1/generations", "method": "POST", "status": 429, "retry_after": 30})
    client = wire.client()
    started = wire.clock()
    with pytest.raises(CreateNotSettledError) as caught:
        await client.create_generation(model=MODEL, prompt="A mill", idempotency_key="k-limited", timeout=8)
    assert wire.clock() - started < 8
    assert caught.value.idempotency_key == "k-limited" and "k-limited" in str(caught.value)
    assert "ran out of time before the API accepted it" in str(caught.value)
    assert (await wire.state())["tasks"] == []


# --- 3. the kind and MIME type of a reference ---------------------------------------------------


async def test_reference_items_carry_kind_and_mime_type_whatever_the_file_object_echoes(wire: Wire) -> None:
    client = wire.client()
    uploaded = await client.upload_file(png_bytes(), kind="image", filename="ref.png", mime_type="image/png")
    fetched = await client.get_file(uploaded.id)
    assert ("kind" in (fetched.model_dump(exclude_none=True))) is (wire.profile == "default")
    for file in (uploaded, fetched):
        item = file.as_reference_item()
        assert item["kind"] == "image" and item["mimeType"] == "image/png" and item["url"] == uploaded.url
    # The sandbox, like the docs (§3.2), wants the kind in every item: an edit goes through on both.
    edit = await client.create_generation(
        model=MODEL,
        prompt="Make it teal",
        params={"referenceMediaItems": [fetched.as_reference_item()]},
    )
    assert edit.status == "queued"


# --- 4. the catalog, entry by entry ------------------------------------------------------------


async def test_the_catalog_is_read_entry_by_entry_and_api_status_is_honoured(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    client = wire.client()
    catalog = await client.read_catalog()
    ours = catalog.find(MODEL)
    assert isinstance(ours, ModelInfo) and ours.is_callable and ours.not_callable_reason is None
    # The limits our manifest documents, as each profile states them in its own words.
    assert ours.max_upload_bytes == MANIFEST.upload.max_bytes
    assert ours.base_credits == MANIFEST.base_credits
    # What the server computes from it today: no disagreement to log at start (it was MB vs MiB).
    from rivya_mcp.tasks import effective_limits

    assert effective_limits(MANIFEST, ours)[1] == []
    if wire.profile == "default":
        assert catalog.unreadable == [] and all(
            m.id == MODEL or not m.id.startswith("sandbox-") for m in catalog.models
        )
        return
    chat = catalog.find("sandbox-chat")
    soon = catalog.find("sandbox-image-next")
    assert chat is not None and not chat.is_callable and "chat model" in (chat.not_callable_reason or "")
    assert chat.supported_modes == []
    assert soon is not None and not soon.is_callable and "coming_soon" in (soon.not_callable_reason or "")
    assert soon.max_prompt_length == 5000  # written as a string, read as the number
    assert [u.id for u in catalog.unreadable] == ["sandbox-studio-video"]
    assert "base_credits" in catalog.unreadable[0].problem
    again = await client.list_models()
    assert {m.id for m in again} == {m.id for m in catalog.models}
    # Logged once per client, as a warning naming the entry: the second read said nothing more.
    told = [r for r in caplog.records if "sandbox-studio-video" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.WARNING


# --- 6. client_request_id --------------------------------------------------------------------


async def test_client_request_id_is_sent_and_capped_before_anything_is_sent(wire: Wire) -> None:
    client = wire.client()
    with pytest.raises(ValueError, match="128"):
        await client.create_generation(model=MODEL, prompt="A fox", client_request_id="x" * 129)
    assert await wire.api_requests("POST", "/api/v1/generations") == 0
    intent = "intent-" + "7" * 121
    task = await client.create_generation(model=MODEL, prompt="A fox", client_request_id=intent)
    stored = next(t for t in (await wire.state())["tasks"] if t["id"] == task.id)
    assert stored["client_request_id"] == intent


# --- 5. webhooks: the test delivery, the convention that verifies it, re-enabling --------------


@dataclass
class Receiver:
    url: str
    status: int = 200
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[dict[str, str], bytes]]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, timeout), f"{len(self.got)} of {count}"
            return list(self.got)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder[0]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with rec.arrived:
                rec.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                rec.arrived.notify_all()
            self.send_response(rec.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


async def test_the_test_delivery_tells_which_convention_to_pin(wire: Wire, receiver: Receiver) -> None:
    client = wire.client()
    endpoint = await client.create_webhook(url=receiver.url, event_types=["generation.succeeded"], name="t")
    secret = endpoint.signing_secret
    assert secret is not None
    answer = await client.send_test_webhook(endpoint.id)
    assert isinstance(answer, dict)
    headers, body = receiver.wait_for(1)[0]
    convention = detect_convention(headers, body, secret, now=time.time())
    assert convention is not None
    assert convention.scheme == {"default": "standard", "variant": "stripe"}[wire.profile]
    # Pinned, it verifies a real delivery, and refuses one with another secret or a changed body.
    await client.create_generation(model=MODEL, prompt="A delivered lighthouse")
    wire.clock.advance(60)
    await client.list_webhook_events()  # settles the task, which queues its event
    real_headers, real_body = receiver.wait_for(2)[1]
    assert verify_delivery(convention, real_headers, real_body, secret, now=time.time()).ok
    assert not verify_delivery(convention, real_headers, real_body + b" ", secret, now=time.time()).ok
    assert not verify_delivery(convention, real_headers, real_body, secret + "x", now=time.time()).ok


async def test_an_unknown_signing_scheme_is_detected_as_none(wire: Wire, receiver: Receiver) -> None:
    await wire.post("config", {"webhook_signing": "unknown"})
    client = wire.client()
    endpoint = await client.create_webhook(url=receiver.url, event_types=["generation.succeeded"], name="t")
    await client.send_test_webhook(endpoint.id)
    headers, body = receiver.wait_for(1)[0]
    assert endpoint.signing_secret is not None
    assert detect_convention(headers, body, endpoint.signing_secret, now=time.time()) is None


async def test_a_disabled_endpoint_is_re_enabled(wire: Wire, receiver: Receiver) -> None:
    await wire.post("config", {"webhook_max_attempts": 1, "webhook_disable_after": 1})
    receiver.status = 500
    client = wire.client()
    endpoint = await client.create_webhook(url=receiver.url, event_types=["generation.succeeded"], name="t")
    await client.send_test_webhook(endpoint.id)
    receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while (current := await client.get_webhook(endpoint.id)).status != "disabled":
        assert time.monotonic() < deadline, current
        time.sleep(0.02)  # the sandbox's delivery thread records the failure; nothing to await
    enabled = await client.enable_webhook(endpoint.id)
    assert enabled.status == "active" and enabled.disabled_at is None
    receiver.status = 200
    await client.send_test_webhook(endpoint.id)
    assert len(receiver.wait_for(2)) == 2
