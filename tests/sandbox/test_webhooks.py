"""The sandbox's webhooks (rivya-api.md §3.8): management, URL rules, signed deliveries, retries,
auto-disable and delivery faults, against a real receiver over loopback HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest

from rivya_mcp.sandbox import SandboxConfig, start_sandbox, url_problem

KEY = "rvya_sk_webhook_tests"
OTHER_KEY = "rvya_sk_someone_else"
WAIT = 10.0  # seconds a test waits for a delivery before it fails


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A webhook receiver on loopback that records each POST and answers ``status``."""

    url: str
    status: int = 204
    delay: float = 0.0
    location: str | None = None
    got: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Received]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.got) >= count, timeout), (
                f"{len(self.got)} of {count} deliveries arrived"
            )
            return list(self.got)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = holder[0]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if rec.delay:
                time.sleep(rec.delay)  # a slow receiver, on the receiver's own thread
            with rec.arrived:
                rec.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                rec.arrived.notify_all()
            self.send_response(rec.status)
            if rec.location:
                self.send_header("Location", rec.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/rivya/webhook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


def _config(**changes: Any) -> SandboxConfig:
    base = {
        "queued_seconds": 0.0,
        "processing_seconds": 0.1,
        "webhooks_allow_loopback": True,
        "webhook_retry_seconds": 0.05,
        "webhook_timeout_seconds": 1.0,
    }
    return SandboxConfig(**(base | changes))


def _api(base_url: str, key: str = KEY) -> httpx2.Client:
    return httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _endpoint(api: httpx2.Client, url: str, types: list[str] | None = None) -> dict[str, Any]:
    answer = api.post(
        "/api/v1/webhooks",
        json={"name": "tests", "url": url, "event_types": types or ["generation.succeeded", "generation.failed"]},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _generate(api: httpx2.Client, prompt: str = "A harbour at dawn") -> str:
    answer = api.post("/api/v1/generations", json={"model": "flux-kontext-max", "prompt": prompt})
    assert answer.status_code in (200, 201), answer.text
    task_id: str = answer.json()["id"]
    return task_id


def verify_standard(secret: str, received: Received) -> bool:
    """An independent Standard Webhooks check (the default profile's decision in docs/sandbox.md)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(part == f"v1,{expected}" for part in received.headers["webhook-signature"].split())


def verify_stripe(secret: str, received: Received) -> bool:
    """An independent check of the variant's scheme: ``Rivya-Signature: t=…,v1=<hex>`` over ``{t}.{body}``."""
    fields = dict(part.split("=", 1) for part in received.headers["rivya-signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 60
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


_verify = verify_standard


@pytest.mark.parametrize(
    ("url", "loopback_switch", "refused"),
    [
        ("https://example.com/hooks/rivya", False, None),
        ("https://hooks.example.com:8443/rivya?x=1", False, None),
        ("http://example.com/hooks", False, "HTTPS"),
        ("https://user:pw@example.com/hooks", False, "credentials"),
        ("https://example.com/hooks#frag", False, "fragment"),
        ("https://localhost/hooks", False, "localhost"),
        ("https://printer.local/hooks", False, "localhost"),
        ("https://intranet/hooks", False, "localhost"),
        ("https://127.0.0.1/hooks", False, "loopback"),
        ("https://[::1]/hooks", False, "loopback"),
        ("https://10.1.2.3/hooks", False, "private"),
        ("https://192.168.1.10/hooks", False, "private"),
        ("https://169.254.169.254/latest", False, "private"),
        ("https://0.0.0.0/hooks", False, "private"),
        ("https://240.0.0.1/hooks", False, "reserved"),
        ("ftp://example.com/x", False, "HTTPS"),
        ("", False, "HTTPS"),
        # The sandbox-only switch admits loopback, and loopback only.
        ("http://127.0.0.1:9000/hook", True, None),
        ("http://127.0.0.1:9000/hook", False, "HTTPS"),
        ("http://10.0.0.1:9000/hook", True, "HTTPS"),
        ("https://10.0.0.1/hook", True, "private"),
        ("http://user:pw@127.0.0.1:9000/hook", True, "credentials"),
    ],
)
def test_webhook_url_rules(url: str, loopback_switch: bool, refused: str | None) -> None:
    problem = url_problem(url, allow_loopback=loopback_switch)
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


def test_endpoint_management_shows_the_secret_once_and_scopes_to_the_account() -> None:
    with start_sandbox(_config(webhooks_allow_loopback=False)) as sandbox, _api(sandbox.base_url) as api:
        refused = api.post(
            "/api/v1/webhooks",
            json={"name": "x", "url": "http://127.0.0.1:9/hook", "event_types": ["generation.succeeded"]},
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "webhook_url_rejected"
        bad_types = api.post("/api/v1/webhooks", json={"url": "https://example.com/h", "event_types": ["chat.done"]})
        assert bad_types.status_code == 400 and bad_types.json()["error"]["code"] == "validation_failed"

        created = _endpoint(api, "https://example.com/hooks/rivya")
        assert created["object"] == "webhook_endpoint" and created["status"] == "active"
        assert created["signing_secret"].startswith("whsec_")
        assert created["secret_preview"] == f"{created['signing_secret'][:8]}...{created['signing_secret'][-6:]}"
        assert created["failure_count"] == 0 and created["disabled_at"] is None and created["revoked_at"] is None
        endpoint_id = created["id"]

        fetched = api.get(f"/api/v1/webhooks/{endpoint_id}").json()
        assert "signing_secret" not in fetched and fetched["secret_preview"] == created["secret_preview"]
        assert [e["id"] for e in api.get("/api/v1/webhooks").json()["data"]] == [endpoint_id]

        with _api(sandbox.base_url, OTHER_KEY) as other:
            assert other.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
            assert other.get("/api/v1/webhooks").json()["data"] == []

        patched = api.patch(f"/api/v1/webhooks/{endpoint_id}", json={"name": "renamed", "status": "disabled"}).json()
        assert patched["name"] == "renamed" and patched["status"] == "disabled" and patched["disabled_at"]
        assert api.patch(f"/api/v1/webhooks/{endpoint_id}", json={"url": "https://10.0.0.1/x"}).status_code == 400

        rotated = api.post(f"/api/v1/webhooks/{endpoint_id}/rotate-secret").json()
        assert rotated["signing_secret"].startswith("whsec_")
        assert rotated["signing_secret"] != created["signing_secret"]

        revoked = api.delete(f"/api/v1/webhooks/{endpoint_id}").json()
        assert revoked["status"] == "revoked" and revoked["revoked_at"]
        assert api.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 404
        assert api.get("/api/v1/webhooks").json()["data"] == []


def test_a_finished_task_is_delivered_signed_and_listed_as_an_event(receiver: Receiver) -> None:
    with start_sandbox(_config()) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        task_id = _generate(api)
        failed_id = _generate(api, "A storm [sandbox:fail]")
        got = receiver.wait_for(2)
        by_task = {r.event["data"]["id"]: r for r in got}
        assert set(by_task) == {task_id, failed_id}

        delivery = by_task[task_id]
        event = delivery.event
        assert event["type"] == "generation.succeeded" and event["id"].startswith("evt_")
        assert event["api_version"] and event["created_at"]
        assert event["data"]["status"] == "succeeded" and event["data"]["result"]["primary_url"]
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["webhook-id"] == event["id"]
        assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
        assert _verify(endpoint["signing_secret"], delivery)
        assert not _verify("whsec_" + base64.b64encode(b"x" * 32).decode(), delivery)
        assert by_task[failed_id].event["type"] == "generation.failed"
        assert by_task[failed_id].event["data"]["error"]["code"]

        # The result URL in the event works, and the event is listed for the account.
        image = httpx2.get(event["data"]["result"]["primary_url"], timeout=10)
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
        events = api.get("/api/v1/webhook-events").json()["data"]
        assert {e["id"] for e in events} >= {r.event["id"] for r in got}
        log = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["data"]
        assert len(log) == 2 and all(a["success"] and a["status_code"] == 204 for a in log)


def test_an_endpoint_gets_only_the_event_types_it_asked_for(receiver: Receiver) -> None:
    with start_sandbox(_config()) as sandbox, _api(sandbox.base_url) as api:
        _endpoint(api, receiver.url, ["generation.failed"])
        _generate(api)
        failed_id = _generate(api, "A storm [sandbox:fail]")
        got = receiver.wait_for(1)
        assert [r.event["data"]["id"] for r in got] == [failed_id]


def test_failed_deliveries_are_retried_counted_and_disable_the_endpoint(receiver: Receiver) -> None:
    receiver.status = 500
    config = _config(webhook_max_attempts=3, webhook_disable_after=3)
    with start_sandbox(config) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        _generate(api)
        got = receiver.wait_for(3)
        assert len({r.headers["webhook-id"] for r in got}) == 1  # the same event, three attempts
        deadline = time.monotonic() + WAIT
        while (state := api.get(f"/api/v1/webhooks/{endpoint['id']}").json())["status"] != "disabled":
            assert time.monotonic() < deadline, state
            time.sleep(0.02)
        assert state["failure_count"] == 3 and state["disabled_at"] and state["last_failure_at"]
        attempts = api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["data"]
        assert sorted(a["attempt"] for a in attempts) == [1, 2, 3]
        assert not any(a["success"] for a in attempts)


def test_a_success_resets_the_failure_count(receiver: Receiver) -> None:
    receiver.status = 503
    with (
        start_sandbox(_config(webhook_max_attempts=5, webhook_disable_after=10)) as sandbox,
        _api(sandbox.base_url) as api,
    ):
        endpoint = _endpoint(api, receiver.url)
        _generate(api)
        receiver.wait_for(2)
        receiver.status = 200
        receiver.wait_for(3)
        deadline = time.monotonic() + WAIT
        while (state := api.get(f"/api/v1/webhooks/{endpoint['id']}").json())["last_success_at"] is None:
            assert time.monotonic() < deadline, state
            time.sleep(0.02)
        assert state["failure_count"] == 0 and state["status"] == "active"


def test_redirects_are_not_followed_and_slow_receivers_time_out(receiver: Receiver) -> None:
    receiver.status, receiver.location = 302, "https://example.com/elsewhere"
    with (
        start_sandbox(_config(webhook_max_attempts=1, webhook_timeout_seconds=0.3)) as sandbox,
        _api(sandbox.base_url) as api,
    ):
        endpoint = _endpoint(api, receiver.url)
        _generate(api)
        receiver.wait_for(1)
        receiver.status, receiver.location, receiver.delay = 200, None, 1.0
        _generate(api, "A second picture")
        receiver.wait_for(2)
        deadline = time.monotonic() + WAIT
        while len(attempts := api.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["data"]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        errors = sorted(a["error"] for a in attempts)
        assert errors[0].startswith("no answer within 0.3 s") and errors[1].startswith("redirect (302)")
        assert len(receiver.got) == 2  # the redirect's target was never asked


@pytest.mark.parametrize("action", ["drop", "duplicate", "reorder", "delay"])
def test_delivery_faults(receiver: Receiver, action: str) -> None:
    with start_sandbox(_config()) as sandbox, _api(sandbox.base_url) as api:
        _endpoint(api, receiver.url)
        rule: dict[str, Any] = {"action": action, "times": 1}
        if action == "delay":
            rule["delay_ms"] = 1500  # far longer than the second task takes, even on a loaded machine
        assert httpx2.post(f"{sandbox.base_url}/_sandbox/webhook-faults", json={"rules": [rule]}).status_code == 200
        first = _generate(api, "First")
        if action == "reorder":
            time.sleep(0.3)  # lets the first task finish (and be held) before the second is made
        second = _generate(api, "Second")
        if action == "drop":
            got = receiver.wait_for(1)
            time.sleep(0.5)  # long enough for a retry, had there been one
            assert [r.event["data"]["id"] for r in receiver.got] == [second]
            snapshot = httpx2.get(f"{sandbox.base_url}/_sandbox/state").json()
            assert any(d["error"] == "dropped by a sandbox fault" for d in snapshot["webhook_deliveries"])
        elif action == "duplicate":
            got = receiver.wait_for(3)
            ids = [r.event["data"]["id"] for r in got]
            assert ids.count(first) == 2 and ids.count(second) == 1
            assert len({r.headers["webhook-id"] for r in got if r.event["data"]["id"] == first}) == 1
        elif action == "reorder":
            got = receiver.wait_for(2)
            assert [r.event["data"]["id"] for r in got] == [second, first]
        else:
            got = receiver.wait_for(2)
            assert [r.event["data"]["id"] for r in got] == [second, first]


def test_the_test_event_goes_to_that_endpoint_only(receiver: Receiver) -> None:
    with start_sandbox(_config()) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        sent = api.post(f"/api/v1/webhooks/{endpoint['id']}/test")
        assert sent.status_code == 202
        got = receiver.wait_for(1)
        event = got[0].event
        # A receiver can tell it is a test by its type alone, and it names no task at all.
        assert event["test"] is True and event["type"] == "webhook.test"
        assert event["data"] == {"endpoint_id": endpoint["id"], "message": event["data"]["message"]}
        assert _verify(endpoint["signing_secret"], got[0])
        assert api.get("/api/v1/webhook-events").json()["data"] == []  # not a real event
        assert sandbox.state.snapshot()["tasks"] == []


@pytest.mark.parametrize("signing", ["standard", "stripe", "unknown"])
def test_webhook_signing_schemes(receiver: Receiver, signing: str) -> None:
    with start_sandbox(_config(webhook_signing=signing)) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        api.post(f"/api/v1/webhooks/{endpoint['id']}/test").raise_for_status()
        got = receiver.wait_for(1)[0]
        secret = endpoint["signing_secret"]
        if signing == "standard":
            assert verify_standard(secret, got) and "rivya-signature" not in got.headers
        elif signing == "stripe":
            assert verify_stripe(secret, got) and "webhook-signature" not in got.headers
            assert not verify_stripe(secret, Received(got.headers, got.body + b" "))
        else:
            # Neither known scheme's headers; an HMAC-SHA512 nobody here knows how to check.
            assert not {"webhook-signature", "rivya-signature"} & set(got.headers)
            assert got.headers["x-rivya-signature"].startswith("sha512=")
        assert sandbox.state.webhook_signing() == signing
        documented = api.get("/api/v1/openapi.json").json()["x-webhook-signature"]
        assert documented["scheme"] == {"standard": "standard-webhooks", "stripe": "stripe"}.get(
            signing, "sandbox-unknown"
        )


def test_the_signing_scheme_is_refused_unless_known() -> None:
    with pytest.raises(ValueError, match="webhook_signing"):
        SandboxConfig(webhook_signing="rot13")


def test_an_auto_disabled_endpoint_is_re_enabled_by_patch(receiver: Receiver) -> None:
    receiver.status = 500
    config = _config(webhook_max_attempts=2, webhook_disable_after=2)
    with start_sandbox(config) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        api.post(f"/api/v1/webhooks/{endpoint['id']}/test").raise_for_status()
        receiver.wait_for(2)
        deadline = time.monotonic() + WAIT
        while (state := api.get(f"/api/v1/webhooks/{endpoint['id']}").json())["status"] != "disabled":
            assert time.monotonic() < deadline, state
            time.sleep(0.02)
        # Disabled endpoints get nothing, not even a test.
        api.post(f"/api/v1/webhooks/{endpoint['id']}/test").raise_for_status()
        time.sleep(0.3)
        assert len(receiver.got) == 2
        receiver.status = 200
        enabled = api.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"status": "active"})
        assert enabled.status_code == 200
        body = enabled.json()
        assert body["status"] == "active" and body["disabled_at"] is None and body["failure_count"] == 0
        api.post(f"/api/v1/webhooks/{endpoint['id']}/test").raise_for_status()
        assert receiver.wait_for(3)[2].event["type"] == "webhook.test"


def test_a_rotated_secret_signs_the_next_delivery(receiver: Receiver) -> None:
    with start_sandbox(_config()) as sandbox, _api(sandbox.base_url) as api:
        endpoint = _endpoint(api, receiver.url)
        rotated = api.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret").json()
        _generate(api)
        got = receiver.wait_for(1)
        assert _verify(rotated["signing_secret"], got[0])
        assert not _verify(endpoint["signing_secret"], got[0])
