"""One test per row of docs/sandbox.md's profile table, against each profile over loopback HTTP.

Each row is a point the Rivya docs leave open (rivya-api.md); ``EXPECTED[row]`` holds what each
profile decides there, and the test checks the wire answer of a real sandbox served by uvicorn.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2
import pytest

from rivya_mcp.manifest import get_manifest
from rivya_mcp.sandbox import PROFILES, ManualClock, SandboxConfig, get_profile, start_sandbox
from tests.sandbox.conftest import AUTH, MODEL, image_bytes
from tests.sandbox.test_webhooks import Receiver, receiver, verify_standard, verify_stripe

__all__ = ["receiver"]  # the fixture, shared with the webhook tests

COST = get_manifest(MODEL).base_credits
IN_FLIGHT = SandboxConfig().idempotency_in_flight_seconds
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

EXPECTED: dict[str, dict[str, Any]] = {
    "create_status": {"default": 201, "variant": 200},
    "upload_status": {"default": 201, "variant": 200},
    "replay_header": {"default": "true", "variant": None},
    "file_id": {
        "default": r"file_[0-9a-f]{24}",
        "variant": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",  # a bare UUID
    },
    "file_fields": {"default": ("id", "mimeType", "size"), "variant": ("file_id", "mime_type", "bytes")},
    "result_urls": {"default": "listed", "variant": None},
    "retry_after": {"default": "seconds", "variant": "http-date"},
    "insufficient_credits": {"default": 402, "variant": 400},
    "upload_limit": {"default": 10 * 1024 * 1024, "variant": 10_000_000},
    "extra_fields": {"default": False, "variant": True},
    "numbers": {"default": int, "variant": float},
    "timings": {"default": (1.0, 0.0), "variant": (2.5, 0.4)},
    "in_flight_repeat": {"default": 200, "variant": 409},
    "file_kind": {"default": True, "variant": False},
    "catalog_upload_limit": {"default": {"max_size_mb": 10}, "variant": {"max_bytes": 10_000_000}},
    "catalog_oddities": {
        "default": set(),
        "variant": {
            ("sandbox-chat", "available"),
            ("sandbox-image-next", "coming_soon"),
            ("sandbox-studio-video", "studio_only"),
        },
    },
    "webhook_signing": {"default": "standard", "variant": "stripe"},
}


@dataclass
class Wire:
    """A sandbox of one profile on loopback, its manual clock, and an HTTP client to it."""

    profile: str
    http: httpx2.Client
    clock: ManualClock
    base_url: str

    def create(self, prompt: str = "a lighthouse", headers: dict[str, str] | None = None) -> httpx2.Response:
        return self.http.post(
            "/api/v1/generations", json={"model": MODEL, "prompt": prompt}, headers={**AUTH, **(headers or {})}
        )

    def upload(self, data: bytes) -> httpx2.Response:
        return self.http.post(
            "/api/v1/files", files={"file": ("ref.png", data, "image/png")}, data={"kind": "image"}, headers=AUTH
        )

    def control(self, path: str, body: Any) -> None:
        self.http.post(f"/_sandbox/{path}", json=body).raise_for_status()

    def expected(self, row: str) -> Any:
        return EXPECTED[row][self.profile]


@pytest.fixture(params=sorted(PROFILES))
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    clock = ManualClock()
    config = SandboxConfig(queued_seconds=1.0, processing_seconds=3.0, profile=request.param)
    with start_sandbox(config, clock=clock) as sandbox, httpx2.Client(base_url=sandbox.base_url, timeout=30) as http:
        yield Wire(request.param, http, clock, sandbox.base_url)


def test_the_table_covers_every_profile() -> None:
    assert all(set(by_profile) == set(PROFILES) for by_profile in EXPECTED.values())


def test_create_status(wire: Wire) -> None:
    response = wire.create()
    assert response.status_code == wire.expected("create_status")
    assert response.json()["status"] == "queued"  # the stated status values are never varied


def test_upload_status(wire: Wire) -> None:
    assert wire.upload(image_bytes()).status_code == wire.expected("upload_status")


def test_idempotent_replay_header(wire: Wire) -> None:
    headers = {"Idempotency-Key": "replay-me"}
    first = wire.create(headers=headers)
    wire.clock.advance(IN_FLIGHT + 0.1)  # the first create is settled in both profiles
    again = wire.create(headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == wire.expected("replay_header")


def test_a_repeat_while_the_first_create_is_in_flight(wire: Wire) -> None:
    headers = {"Idempotency-Key": "in-flight"}
    first = wire.create(headers=headers)
    wire.clock.advance(IN_FLIGHT - 0.5)
    repeat = wire.create(headers=headers)
    assert repeat.status_code == wire.expected("in_flight_repeat"), repeat.text
    if repeat.status_code == 409:
        assert repeat.json()["error"]["code"] == "idempotency_conflict"
    else:
        assert repeat.json()["id"] == first.json()["id"]
    # A different body under the same key is a conflict in both, in flight or not.
    assert wire.create("another prompt", headers=headers).status_code == 409
    wire.clock.advance(1.0)
    assert wire.create("another prompt", headers=headers).json()["error"]["code"] == "idempotency_conflict"
    # Once settled, the same body replays the task in both: one task, one charge.
    settled = wire.create(headers=headers)
    assert settled.status_code == 200 and settled.json()["id"] == first.json()["id"]
    charges = [e for e in wire.http.get("/_sandbox/state").json()["ledger"] if e["delta"] < 0]
    assert len(charges) == 1


def test_file_id_shape(wire: Wire) -> None:
    body = wire.upload(image_bytes()).json()
    file_id = body[wire.expected("file_fields")[0]]
    assert re.fullmatch(wire.expected("file_id"), file_id)
    fetched = wire.http.get(f"/api/v1/files/{file_id}", headers=AUTH)
    assert fetched.status_code == 200 and fetched.json() == body


def test_file_field_names(wire: Wire) -> None:
    data = image_bytes()
    body = wire.upload(data).json()
    id_field, mime_field, size_field = wire.expected("file_fields")
    assert body[mime_field] == "image/png" and body[size_field] == len(data)
    others = {"id", "file_id", "mimeType", "mime_type", "size", "bytes"} - {id_field, mime_field, size_field}
    assert not others & set(body)
    assert {"url", "name", "created_at"} <= set(body)
    assert ("kind" in body) is wire.expected("file_kind")
    if "kind" in body:
        assert body["kind"] == "image"


def test_result_urls_on_success(wire: Wire) -> None:
    task_id = wire.create().json()["id"]
    wire.clock.advance(60)
    result = wire.http.get(f"/api/v1/generations/{task_id}", headers=AUTH).json()["result"]
    assert result["primary_url"].startswith(wire.base_url)  # stated: always there on success
    expected = [result["primary_url"]] if wire.expected("result_urls") == "listed" else None
    assert result["urls"] == expected


@pytest.mark.parametrize("source", ["rate limit", "fault rule"])
def test_retry_after_format(wire: Wire, source: str) -> None:
    if source == "rate limit":
        wire.control("config", {"rate_limit": 1})
        wire.http.get("/api/v1/credits", headers=AUTH)
    else:
        wire.control("faults", {"rules": [{"path": "/api/v1/credits", "status": 429, "retry_after": 30}]})
    before = time.time()
    response = wire.http.get("/api/v1/credits", headers=AUTH)
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    header = response.headers["retry-after"]
    if wire.expected("retry_after") == "seconds":
        assert header.isdigit() and int(header) >= 1
    else:
        moment = email.utils.parsedate_to_datetime(header)
        assert moment.tzinfo is not None
        # Never earlier than the wait asked for, never absurdly later.
        wait = 60 if source == "rate limit" else 30
        assert before + 1 <= moment.timestamp() <= time.time() + wait + 2


def test_insufficient_credits_status(wire: Wire) -> None:
    wire.control("reset", {"balance": COST - 1})
    response = wire.create()
    assert response.status_code == wire.expected("insufficient_credits")
    assert response.json()["error"]["code"] == "insufficient_credits"  # the stated code never varies


def test_upload_limit(wire: Wire) -> None:
    limit = wire.expected("upload_limit")
    at_limit = PNG_MAGIC + b"\0" * (limit - len(PNG_MAGIC))
    accepted = wire.upload(at_limit)
    assert accepted.status_code == wire.expected("upload_status"), accepted.text
    over = wire.upload(at_limit + b"\0")
    assert over.status_code == 400 and over.json()["error"]["code"] == "validation_failed"
    assert "10 MB" in over.json()["error"]["message"]


def test_unknown_fields_everywhere(wire: Wire) -> None:
    documented = {"id", "status", "model", "reserved_credits", "final_credits", "created_at", "updated_at"}
    task = wire.create().json()
    wire.clock.advance(60)
    done = wire.http.get(f"/api/v1/generations/{task['id']}", headers=AUTH).json()
    objects = {
        "generation": set(done) - documented - {"result", "error"},
        "result": set(done["result"]) - {"primary_url", "urls"},
        "credits": set(wire.http.get("/api/v1/credits", headers=AUTH).json()) - {"current_credits"},
        "model list": set(wire.http.get("/api/v1/models").json()) - {"object", "data"},
        "error": set(wire.http.get("/api/v1/generations/nope", headers=AUTH).json()["error"])
        - {"code", "message", "requestId"},
    }
    if wire.expected("extra_fields"):
        assert all(objects.values()), objects
    else:
        assert not any(objects.values()), objects


def test_numbers(wire: Wire) -> None:
    kind = wire.expected("numbers")
    task = wire.create().json()
    credits = wire.http.get("/api/v1/credits", headers=AUTH).json()["current_credits"]
    model = next(m for m in wire.http.get("/api/v1/models").json()["data"] if m["id"] == MODEL)
    for value in (task["reserved_credits"], task["final_credits"], credits, model["base_credits"]):
        assert type(value) is kind
    assert task["reserved_credits"] == COST


def test_task_timings(wire: Wire) -> None:
    factor, jitter = wire.expected("timings")
    assert (get_profile(wire.profile).duration_factor, get_profile(wire.profile).duration_jitter) == (factor, jitter)
    for n in range(4):
        wire.create(prompt=f"timing {n}")
    tasks = wire.http.get("/_sandbox/state").json()["tasks"]
    totals = [_seconds(t["finishes_at"]) - _seconds(t["created_at"]) for t in tasks]
    nominal = 4.0 * factor  # queued 1 s + processing 3 s, scaled
    assert all(nominal * (1 - jitter) - 0.01 <= total <= nominal * (1 + jitter) + 0.01 for total in totals)
    assert (len({round(t, 3) for t in totals}) > 1) is (jitter > 0)


def test_variant_timings_repeat_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        config = SandboxConfig(queued_seconds=1.0, processing_seconds=3.0, profile="variant", seed=7)
        with start_sandbox(config, clock=ManualClock()) as sandbox, httpx2.Client(base_url=sandbox.base_url) as http:
            for n in range(3):
                http.post("/api/v1/generations", json={"model": MODEL, "prompt": f"p{n}"}, headers=AUTH)
            runs.append([t["finishes_at"] for t in http.get("/_sandbox/state").json()["tasks"]])
    assert runs[0] == runs[1]


def test_catalog_states_the_upload_limit_in_the_profiles_own_unit(wire: Wire) -> None:
    entry = next(m for m in wire.http.get("/api/v1/models").json()["data"] if m["id"] == MODEL)
    stated = {k: v for k, v in entry["reference_media"].items() if k in ("max_size_mb", "max_bytes")}
    assert stated == wire.expected("catalog_upload_limit")
    # What it states is what it enforces, in its own megabytes (test_upload_limit: the bytes).
    limit = wire.expected("upload_limit")
    assert stated.get("max_bytes", limit) == limit
    assert stated.get("max_size_mb", 10) * get_profile(wire.profile).megabyte == limit


def test_catalog_lists_models_not_callable_and_odd_entries(wire: Wire) -> None:
    data = wire.http.get("/api/v1/models").json()["data"]
    manifests = {m["id"] for m in data if not m["id"].startswith("sandbox-")}
    assert MODEL in manifests
    odd = {(m["id"], m["api_status"]) for m in data if m["id"].startswith("sandbox-")}
    assert odd == wire.expected("catalog_oddities")
    if odd:
        chat = next(m for m in data if m["id"] == "sandbox-chat")
        assert chat["category"] == "chat" and chat["supported_modes"] is None
        assert any(isinstance(m["base_credits"], str) for m in data)  # a string where a number belongs
        assert any(isinstance(m["max_prompt_length"], str) for m in data)


def test_openapi_states_the_profiles_own_choices(wire: Wire) -> None:
    response = wire.http.get("/api/v1/openapi.json")  # public: no key
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1") and doc["info"]["x-sandbox-profile"] == wire.profile
    create = doc["paths"]["/api/v1/generations"]["post"]["responses"]
    assert str(wire.expected("create_status")) in create
    assert "insufficient_credits" in create[str(wire.expected("insufficient_credits"))]["x-error-codes"]
    upload = doc["paths"]["/api/v1/files"]["post"]["responses"]
    assert str(wire.expected("upload_status")) in upload
    file_props = set(doc["components"]["schemas"]["PublicApiFile"]["properties"])
    assert set(wire.expected("file_fields")) <= file_props
    assert ("kind" in file_props) is wire.expected("file_kind")
    retry_after = doc["components"]["headers"]["Retry-After"]["schema"]
    assert (retry_after.get("format") == "http-date") is (wire.expected("retry_after") == "http-date")
    scheme = doc["x-webhook-signature"]["scheme"]
    assert scheme == {"standard": "standard-webhooks", "stripe": "stripe"}[wire.expected("webhook_signing")]
    statuses = doc["components"]["schemas"]["Generation"]["properties"]["status"]["enum"]
    assert statuses == ["queued", "processing", "succeeded", "failed"]
    assert (
        "idempotency_conflict"
        in doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
    )


def test_webhook_signing(wire: Wire, receiver: Receiver) -> None:
    wire.control("config", {"webhooks_allow_loopback": True})
    created = wire.http.post(
        "/api/v1/webhooks",
        json={"name": "t", "url": receiver.url, "event_types": ["generation.succeeded"]},
        headers=AUTH,
    ).json()
    assert wire.http.post(f"/api/v1/webhooks/{created['id']}/test", headers=AUTH).status_code == 202
    got = receiver.wait_for(1)[0]
    if wire.expected("webhook_signing") == "standard":
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= set(got.headers)
        assert verify_standard(created["signing_secret"], got)
    else:
        assert verify_stripe(created["signing_secret"], got)
        assert "webhook-signature" not in got.headers


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        SandboxConfig(profile="lenient")


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
