"""The client against the real sandbox: over loopback HTTP (uvicorn) and in process (ASGI).

Time is fake on both sides: the sandbox runs on a ``ManualClock`` and the client's ``sleep``
advances that clock, so a 4-second task or a 2-second Retry-After costs no wall time.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from rivya_mcp.client import (
    FIRST_POLL_DELAY,
    MIN_POLL_INTERVAL,
    APIStatusError,
    AsyncRivyaClient,
    AuthenticationError,
    Generation,
    IdempotencyConflictError,
    InsufficientCreditsError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PollInfo,
    RateLimitError,
    ResultExpiredError,
    ServiceUnavailableError,
    UploadTooLargeError,
)
from rivya_mcp.sandbox import ManualClock, SandboxConfig, create_app, start_sandbox

from .conftest import API_KEY

MODEL = "flux-kontext-max"
PROMPT = "A clean editorial product image on a soft studio background"
# The seed page's minimal request (rivya-api.md §7.2), watermark included.
SEED_PARAMS: dict[str, Any] = {
    "aspectRatio": "16:9",
    "outputFormat": "jpeg",
    "enableTranslation": "true",
    "promptUpsampling": "false",
    "safetyTolerance": 2,
    "watermark": "선택 사항: 워터마크 텍스트",
}
TEN_MB = 10 * 1024 * 1024


def sandbox_config(**changes: Any) -> SandboxConfig:
    base: dict[str, Any] = {"queued_seconds": 1.0, "processing_seconds": 3.0, "url_ttl_seconds": 3600.0}
    base.update(changes)
    return SandboxConfig(**base)


@dataclass
class Harness:
    """One sandbox plus the means to drive and inspect it."""

    base_url: str
    clock: ManualClock
    control: httpx2.AsyncClient
    api_http: httpx2.AsyncClient
    sent: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    profile: str = "default"

    @property
    def variant(self) -> bool:
        return self.profile == "variant"

    def waited(self, seconds: float) -> bool:
        """A wait the API asked for: whole seconds on the default profile; the variant writes an HTTP
        date from the wall clock, read back up to a second later."""
        return (
            [seconds] == self.sleeps
            if not self.variant
            else len(self.sleeps) == 1 and seconds <= self.sleeps[0] < seconds + 1.5
        )

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def client(self, api_key: str | None = API_KEY, **options: Any) -> AsyncRivyaClient:
        options.setdefault("rng", random.Random(3))
        return AsyncRivyaClient(
            api_key, self.base_url, http_client=self.api_http, sleep=self.sleep, clock=self.clock, **options
        )

    async def faults(self, *rules: dict[str, Any]) -> None:
        response = await self.control.post("/_sandbox/faults", json={"rules": list(rules)})
        assert response.status_code == 200, response.text

    async def configure(self, **changes: Any) -> None:
        response = await self.control.post("/_sandbox/config", json=changes)
        assert response.status_code == 200, response.text

    async def reset(self, *, balance: int) -> None:
        response = await self.control.post("/_sandbox/reset", json={"balance": balance})
        assert response.status_code == 200, response.text

    async def state(self) -> dict[str, Any]:
        response = await self.control.get("/_sandbox/state")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def charges(self, task_id: str | None = None) -> list[dict[str, Any]]:
        ledger = (await self.state())["ledger"]
        return [e for e in ledger if e["delta"] < 0 and (task_id is None or e["task_id"] == task_id)]


@dataclass
class Origin:
    base_url: str
    transport: httpx2.AsyncBaseTransport
    clock: ManualClock
    shared: bool  # a module-wide loopback sandbox that must be reset before each test
    profile: str = "default"


@pytest.fixture(scope="module")
def loopback_sandbox() -> Iterator[tuple[str, ManualClock]]:
    # One uvicorn server for the module: starting and stopping one per test costs ~0.25 s each.
    clock = ManualClock()
    with start_sandbox(sandbox_config(), clock=clock) as running:
        yield running.base_url, clock


# Every test runs against both sandbox profiles (docs/sandbox.md): the variant decides each point
# the docs leave open the other way, so a test that passes on one only depends on a sandbox choice.
ORIGINS = [(way, profile) for way in ("loopback", "asgi") for profile in ("default", "variant")]


@pytest.fixture(params=ORIGINS, ids=[f"{way}-{profile}" for way, profile in ORIGINS])
def origin(request: pytest.FixtureRequest) -> Origin:
    way, profile = request.param
    if way == "loopback":
        base_url, clock = request.getfixturevalue("loopback_sandbox")
        return Origin(base_url, httpx2.AsyncHTTPTransport(), clock, shared=True, profile=profile)
    clock = ManualClock()
    app = create_app(sandbox_config(profile=profile), clock=clock)
    return Origin("http://sandbox.test", httpx2.ASGITransport(app=app), clock, shared=False, profile=profile)


@pytest.fixture
async def sandbox(origin: Origin) -> AsyncIterator[Harness]:
    sent: list[str] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    async with (
        httpx2.AsyncClient(base_url=origin.base_url, transport=origin.transport) as control,
        httpx2.AsyncClient(transport=origin.transport, event_hooks={"request": [record]}) as api_http,
    ):
        harness = Harness(
            base_url=origin.base_url,
            clock=origin.clock,
            control=control,
            api_http=api_http,
            sent=sent,
            profile=origin.profile,
        )
        if origin.shared:
            await harness.configure(**sandbox_config(profile=origin.profile).as_dict())
            await harness.reset(balance=sandbox_config().starting_balance)
        yield harness


@pytest.fixture(autouse=True)
def key_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here runs with DEBUG logging captured; afterwards the key must be nowhere in it."""
    with caplog.at_level(logging.DEBUG):
        yield
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.get_records("teardown")]
    for record in records:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in repr(record.args)
        assert API_KEY not in repr(record.__dict__)


def png_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the seed's requests ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_minimal_request_end_to_end(sandbox: Harness, caplog: pytest.LogCaptureFixture) -> None:
    client = sandbox.client()
    models = await client.list_models()
    assert MODEL in {model.id for model in models}
    before = (await client.get_credits()).current_credits

    task = await client.create_generation(model=MODEL, prompt=PROMPT, params=SEED_PARAMS, client_request_id="seed-1")
    assert (task.status, task.model, task.reserved_credits, task.final_credits) == ("queued", MODEL, 8, 0)

    updates: list[tuple[str, PollInfo]] = []

    async def on_update(generation: Generation, info: PollInfo) -> None:
        updates.append((generation.status, info))

    done = await client.wait_for_generation(task.id, timeout=45, on_update=on_update)

    assert done.status == "succeeded" and done.final_credits == 8
    assert done.result is not None and done.result.primary_url is not None
    statuses = [status for status, info in updates if info.changed]
    assert statuses == ["processing", "succeeded"]  # queued for 1 s, first look at 2.5 s
    assert any(record.name == "rivya_mcp.client" for record in caplog.records)
    assert sandbox.sleeps[0] == FIRST_POLL_DELAY == 2.5  # rivya-api §3.4: 2-3 s after the create
    assert all(delay >= MIN_POLL_INTERVAL for delay in sandbox.sleeps[1:])
    image = await client.download(done.result.primary_url, max_bytes=TEN_MB)
    assert image[:3] == b"\xff\xd8\xff"
    assert Image.open(io.BytesIO(image)).size[0] > Image.open(io.BytesIO(image)).size[1]  # 16:9
    assert (await client.get_credits()).current_credits == before - 8
    assert [entry["delta"] for entry in await sandbox.charges(task.id)] == [-8]


@pytest.mark.anyio
async def test_reference_request_end_to_end(sandbox: Harness, tmp_path: Path) -> None:
    client = sandbox.client()
    path = tmp_path / "reference-image.png"
    path.write_bytes(png_bytes())

    uploaded = await client.upload_file(path, kind="image", model=MODEL, client_request_id="ref-1", max_bytes=TEN_MB)
    assert (uploaded.kind, uploaded.name, uploaded.mime_type, uploaded.size) == (
        "image",
        "reference-image.png",
        "image/png",
        path.stat().st_size,
    )
    assert (await client.get_file(uploaded.id)).url == uploaded.url

    params = {**SEED_PARAMS, "outputFormat": "png", "referenceMediaItems": [uploaded.as_reference_item()]}
    task = await client.create_generation(model=MODEL, prompt="Make it blue", params=params)
    done = await client.wait_for_generation(task.id, timeout=45)

    assert done.status == "succeeded"
    assert done.result is not None and done.result.primary_url is not None
    image = await client.download(done.result.primary_url, max_bytes=TEN_MB)
    assert image.startswith(b"\x89PNG")


@pytest.mark.anyio
async def test_a_failed_task_comes_back_terminal_with_its_error(sandbox: Harness) -> None:
    client = sandbox.client()
    task = await client.create_generation(model=MODEL, prompt="[sandbox:fail] a kite")
    done = await client.wait_for_generation(task.id, timeout=45)
    assert done.status == "failed" and done.final_credits == 0
    assert done.error is not None and done.error.code == "generation_failed"


@pytest.mark.anyio
async def test_a_wait_that_runs_out_returns_the_running_task(sandbox: Harness) -> None:
    client = sandbox.client()
    task = await client.create_generation(model=MODEL, prompt="[sandbox:seconds=120] a slow kite")
    last = await client.wait_for_generation(task.id, timeout=10)
    assert not last.is_terminal
    assert sum(sandbox.sleeps) == pytest.approx(10.0)
    assert (await client.wait_for_generation(task.id, timeout=None)).status == "succeeded"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bad_key_and_unknown_task(sandbox: Harness) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await sandbox.client(api_key="not-a-rivya-key").get_credits()
    assert caught.value.code == "api_key_invalid"
    assert caught.value.request_id is not None and caught.value.request_id.startswith("req_")

    with pytest.raises(NotFoundError) as missing:
        await sandbox.client().get_generation("task_does_not_exist")
    assert missing.value.code == "not_found" and missing.value.request_id
    assert missing.value.status_code == 404


@pytest.mark.anyio
async def test_validation_failed(sandbox: Harness) -> None:
    before = len(sandbox.sent)
    with pytest.raises(InvalidRequestError) as caught:
        await sandbox.client().create_generation(model=MODEL, prompt=PROMPT, params={"aspectRatio": "5:1"})
    error = caught.value
    assert error.code == "validation_failed" and error.status_code == 400 and error.request_id
    assert "aspectRatio" in error.message
    assert len(sandbox.sent) - before == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (401, "api_key_missing", AuthenticationError),
        (401, "api_key_revoked", AuthenticationError),
        (401, "api_key_expired", AuthenticationError),
        (403, "api_scope_denied", PermissionDeniedError),
        (503, "public_api_disabled", ServiceUnavailableError),
        (418, "a_code_from_the_future", APIStatusError),
    ],
)
async def test_injected_error_codes_map_to_their_class(
    sandbox: Harness, status: int, code: str, error_type: type[APIStatusError]
) -> None:
    await sandbox.faults({"path": "/api/v1/credits", "status": status, "code": code})
    with pytest.raises(APIStatusError) as caught:
        await sandbox.client(max_retries=1).get_credits()
    assert type(caught.value) is error_type
    assert (caught.value.code, caught.value.status_code) == (code, status)
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


@pytest.mark.anyio
async def test_insufficient_credits(sandbox: Harness) -> None:
    await sandbox.reset(balance=5)
    client = sandbox.client()
    with pytest.raises(InsufficientCreditsError) as caught:
        await client.create_generation(model=MODEL, prompt=PROMPT)
    assert caught.value.code == "insufficient_credits" and caught.value.request_id
    assert not caught.value.retryable
    assert sandbox.sent.count("POST /api/v1/generations") == 1
    assert (await sandbox.state())["tasks"] == []
    assert (await client.get_credits()).current_credits == 5


@pytest.mark.anyio
async def test_idempotency_conflict_is_never_retried(sandbox: Harness) -> None:
    client = sandbox.client()
    first = await client.create_generation(model=MODEL, prompt=PROMPT, idempotency_key="order-123-preview")
    # The same key and body again, said to be a repeat: the task comes back. (The variant answers 409
    # while the first create is in flight: "not settled yet", retried under the key until it is.)
    again = await client.create_generation(
        model=MODEL, prompt=PROMPT, idempotency_key="order-123-preview", key_sent_before=True
    )
    assert again.id == first.id
    sent = sandbox.sent.count("POST /api/v1/generations")
    assert sent == 2 or (sandbox.variant and sent > 2)

    with pytest.raises(IdempotencyConflictError) as caught:
        await client.create_generation(model=MODEL, prompt="something else", idempotency_key="order-123-preview")
    assert caught.value.status_code == 409 and caught.value.request_id
    assert sandbox.sent.count("POST /api/v1/generations") == sent + 1  # a real conflict is never retried
    assert len(await sandbox.charges()) == 1


# --- retries -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rate_limited_with_retry_after_is_retried_to_success(sandbox: Harness) -> None:
    await sandbox.configure(rate_limit=2, rate_window_seconds=5)
    client = sandbox.client()
    await client.get_credits()
    await client.get_credits()
    credits = await client.get_credits()  # over the limit: 429 + Retry-After, then success

    assert credits.current_credits == 1000
    assert sandbox.sent.count("GET /api/v1/credits") == 4
    assert sandbox.waited(5.0), sandbox.sleeps  # the server's Retry-After, not the backoff


@pytest.mark.anyio
async def test_injected_429_is_retried_after_the_advised_delay(sandbox: Harness) -> None:
    await sandbox.faults({"method": "POST", "path": "/api/v1/generations", "times": 1, "status": 429, "retry_after": 2})
    task = await sandbox.client().create_generation(model=MODEL, prompt=PROMPT)
    assert sandbox.waited(2.0), sandbox.sleeps
    assert [entry["task_id"] for entry in await sandbox.charges()] == [task.id]


@pytest.mark.anyio
async def test_rate_limit_beyond_the_cap_gives_up(sandbox: Harness) -> None:
    await sandbox.faults({"path": "/api/v1/credits", "times": 1, "status": 429, "retry_after": 600})
    with pytest.raises(RateLimitError) as caught:
        await sandbox.client().get_credits()
    assert caught.value.retry_after is not None and 600 <= caught.value.retry_after < 601.5 and sandbox.sleeps == []
    assert caught.value.code == "rate_limited" and caught.value.request_id


@pytest.mark.anyio
async def test_5xx_twice_then_success_charges_once(sandbox: Harness) -> None:
    await sandbox.faults({"method": "POST", "path": "/api/v1/generations", "times": 2, "status": 500})
    task = await sandbox.client().create_generation(model=MODEL, prompt=PROMPT, params=SEED_PARAMS)
    assert sandbox.sent.count("POST /api/v1/generations") == 3
    assert len(sandbox.sleeps) == 2
    state = await sandbox.state()
    assert [t["id"] for t in state["tasks"]] == [task.id]
    assert [entry["delta"] for entry in await sandbox.charges()] == [-8]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [
        {"drop": True},
        {"malformed": True},
        {"status": 503, "code": "internal_error"},
    ],
    ids=["dropped", "malformed", "503"],
)
async def test_a_create_whose_answer_is_lost_after_processing_is_charged_once(
    sandbox: Harness, fault: dict[str, Any]
) -> None:
    await sandbox.faults({"method": "POST", "path": "/api/v1/generations", "times": 1, "phase": "after", **fault})
    task = await sandbox.client().create_generation(model=MODEL, prompt=PROMPT, params=SEED_PARAMS)

    # One retry replays it; on the variant the retries are answered 409 while the first create is in
    # flight (its first seconds), which the client reads as "not settled yet" and retries too.
    sent = sandbox.sent.count("POST /api/v1/generations")
    assert sent == 2 or (sandbox.variant and sent > 2), sandbox.sent
    state = await sandbox.state()
    assert [t["id"] for t in state["tasks"]] == [task.id]  # the retry replayed the processed create
    assert [entry["delta"] for entry in await sandbox.charges()] == [-8]
    assert state["tasks"][0]["idempotency_key"].startswith("rivya-mcp-")


# --- files -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_oversized_upload_is_refused_by_the_client_before_sending(sandbox: Harness, tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(png_bytes())
        handle.truncate(int(10.5 * 1024 * 1024))
    with pytest.raises(UploadTooLargeError):
        await sandbox.client().upload_file(path, kind="image", model=MODEL, max_bytes=TEN_MB)
    assert sandbox.sent == []


@pytest.mark.anyio
async def test_an_oversized_upload_is_refused_by_the_sandbox_when_forced(sandbox: Harness, tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as handle:
        handle.write(png_bytes())
        handle.truncate(int(10.5 * 1024 * 1024))
    with pytest.raises(InvalidRequestError) as caught:
        await sandbox.client().upload_file(path, kind="image", model=MODEL)
    assert caught.value.code == "validation_failed" and caught.value.request_id
    assert "larger than" in caught.value.message
    assert sandbox.sent.count("POST /api/v1/files") == 1


@pytest.mark.anyio
async def test_a_text_file_named_png_is_refused(sandbox: Harness, tmp_path: Path) -> None:
    path = tmp_path / "not-really.png"
    path.write_text("just some text, not an image\n")
    with pytest.raises(InvalidRequestError) as caught:
        await sandbox.client().upload_file(path, kind="image", model=MODEL, mime_type="image/png")
    assert caught.value.code == "validation_failed" and caught.value.request_id


@pytest.mark.anyio
async def test_an_upload_retried_after_a_dropped_connection_arrives_whole(sandbox: Harness, tmp_path: Path) -> None:
    data = png_bytes((512, 512))
    path = tmp_path / "ref.png"
    path.write_bytes(data)
    await sandbox.faults({"method": "POST", "path": "/api/v1/files", "times": 1, "drop": True})
    uploaded = await sandbox.client().upload_file(path, kind="image", model=MODEL)
    assert uploaded.size == len(data)
    assert await sandbox.client().download(uploaded.url, max_bytes=TEN_MB) == data


@pytest.mark.anyio
async def test_an_expired_result_url(sandbox: Harness) -> None:
    client = sandbox.client()
    task = await client.create_generation(model=MODEL, prompt=PROMPT)
    done = await client.wait_for_generation(task.id, timeout=45)
    assert done.result is not None and done.result.primary_url is not None
    assert await client.download(done.result.primary_url, max_bytes=TEN_MB)

    response = await sandbox.control.post("/_sandbox/clock", json={"advance": 3601})
    assert response.status_code == 200
    with pytest.raises(ResultExpiredError) as caught:
        await client.download(done.result.primary_url, max_bytes=TEN_MB)
    assert caught.value.status_code == 410 and not caught.value.retryable


@pytest.mark.anyio
async def test_downloads_never_carry_the_key(sandbox: Harness) -> None:
    client = sandbox.client()
    seen: list[httpx2.Headers] = []

    async def record(request: httpx2.Request) -> None:
        seen.append(request.headers)

    sandbox.api_http.event_hooks["request"].append(record)
    uploaded = await client.upload_file(png_bytes(), kind="image")
    await client.download(uploaded.url, max_bytes=1024 * 1024)
    assert "Authorization" in seen[0] and "Authorization" not in seen[1]
