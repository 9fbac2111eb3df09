"""Webhook completion end to end: `rivya-mcp serve --transport http --public-url …` as a real process,
the sandbox delivering to it over loopback, a real MCP client calling the tools."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from rivya_mcp.journal import TaskJournal
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, account_id, sign, start_sandbox
from tests._image_host import serve_image_host

pytestmark = pytest.mark.slow

WAIT = 20.0
GENERATION_POLLS = {"method": "GET", "path": "/api/v1/generations/", "delay_ms": 0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    key: str
    data_dir: Path
    out_dir: Path
    process: subprocess.Popen[bytes]
    log: Path
    api_url: str

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/webhooks/rivya"

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "journal.sqlite3"

    def secret(self) -> str:
        """The signing secret as the server keeps it: in its journal, under its upstream and key."""
        with TaskJournal(self.journal_path, upstream=self.api_url, api_key=self.key) as journal:
            raw = journal.owned_meta("webhook_endpoint")
        assert raw is not None
        secret: str = json.loads(raw)["secret"]
        return secret


def _wait_until(condition: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # another process and another thread: nothing to await
    return value


def _endpoints(sandbox: RunningSandbox, key: str) -> list[dict[str, Any]]:
    return sandbox.state.webhooks.listing(account_id(key))


@contextmanager
def _server(
    sandbox: RunningSandbox,
    workdir: Path,
    key: str,
    *,
    poll_scale: float = 1.0,
    port: int | None = None,
    started: bytes = b"webhooks: receiving at",
) -> Iterator[Server]:
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env |= {
        "RIVYA_API_KEY": key,
        "RIVYA_BASE_URL": sandbox.base_url,
        "RIVYA_DATA_DIR": str(workdir / "data"),
        "RIVYA_OUTPUT_DIR": str(workdir / "out"),
        "RIVYA_POLL_SCALE": str(poll_scale),
        "RIVYA_LOG_LEVEL": "INFO",
    }
    log = workdir / f"server-{port}.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port), "--public-url",
             url],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    server = Server(url, key, workdir / "data", workdir / "out", process, log, sandbox.base_url)
    try:
        # The server logs this once its endpoint is registered (found or created), its test delivery
        # verified and gaps are filled (or, ``started``, why deliveries are not verified).
        _wait_until(lambda: started in log.read_bytes(), "the server to register its endpoint")
        assert any(e["url"] == server.webhook_url for e in _endpoints(sandbox, key))
        yield server
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    config = SandboxConfig(queued_seconds=0.2, processing_seconds=0.6, webhooks_allow_loopback=True)
    with start_sandbox(config) as running:
        yield running


def _count_polls(sandbox: RunningSandbox) -> None:
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [GENERATION_POLLS]}).raise_for_status()


def _polls(sandbox: RunningSandbox) -> int:
    rules = httpx2.get(f"{sandbox.base_url}/_sandbox/faults").json()["rules"]
    return int(next(r["hits"] for r in rules if r.get("path") == GENERATION_POLLS["path"]))


def _delivery_faults(sandbox: RunningSandbox, *rules: dict[str, Any]) -> None:
    httpx2.post(f"{sandbox.base_url}/_sandbox/webhook-faults", json={"rules": list(rules)}).raise_for_status()


def _task_deliveries(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    """Delivery attempts of task events (not the test delivery each server start asks for)."""
    return [d for d in sandbox.state.snapshot()["webhook_deliveries"] if d["event_type"] != "webhook.test"]


def _images(server: Server) -> list[Path]:
    # Saved images only: an atomic save writes a hidden partial file first.
    found = server.out_dir.glob("*") if server.out_dir.exists() else []
    return sorted(p for p in found if not p.name.startswith("."))


async def _generate(server: Server, prompt: str = "A lighthouse at dusk") -> dict[str, Any]:
    async with Client(f"{server.url}/mcp") as client:
        result = await client.call_tool("generate_image", {"prompt": prompt, "wait_seconds": 30})
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content or {}
    return data


def _post_event(server: Server, event: dict[str, Any], *, secret: str, timestamp: int | None = None) -> int:
    body = json.dumps(event).encode()
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "content-type": "application/json",
        "webhook-id": event["id"],
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, event["id"], stamp, body),
    }
    return httpx2.post(server.webhook_url, content=body, headers=headers, timeout=10).status_code


@pytest.mark.anyio
async def test_a_task_finishes_by_webhook_with_no_status_poll(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_plain") as server:
        # The secret is kept in the journal, a file only its owner may read.
        assert stat.S_IMODE(server.journal_path.stat().st_mode) == 0o600
        assert server.secret().startswith("whsec_")
        _count_polls(sandbox)
        data = await _generate(server)
        assert data["status"] == "succeeded" and Path(data["saved_path"]).is_file()
        # The documented pace would first look after 2-3 s (the fallback after three times that);
        # the task took 0.8 s, and the delivery, not a poll, finished it.
        assert _polls(sandbox) == 0
        endpoint = _endpoints(sandbox, server.key)[0]
        attempts = sandbox.state.webhooks.deliveries(account_id(server.key), endpoint["id"])
        assert attempts and all(a["success"] for a in attempts)


@pytest.mark.anyio
async def test_a_restarted_server_keeps_its_endpoint_and_secret(sandbox: RunningSandbox, tmp_path: Path) -> None:
    key = "rvya_sk_hooks_restart"
    port = _free_port()
    with _server(sandbox, tmp_path, key, port=port) as server:
        first = server.secret()
    with _server(sandbox, tmp_path, key, port=port) as server:
        assert server.secret() == first  # found by its URL, and the secret on file still fits
        _count_polls(sandbox)
        data = await _generate(server)
        assert data["status"] == "succeeded" and _polls(sandbox) == 0
    assert len(_endpoints(sandbox, key)) == 1
    with sqlite3.connect(tmp_path / "data" / "journal.sqlite3") as conn:  # the secret is lost: it can only be replaced
        conn.execute("DELETE FROM meta WHERE name LIKE 'webhook_endpoint:%'")
    with _server(sandbox, tmp_path, key, port=port) as server:
        assert server.secret() != first
    assert len(_endpoints(sandbox, key)) == 1


@pytest.mark.anyio
async def test_a_dropped_delivery_is_covered_by_the_fallback_poll(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_drop", poll_scale=0.3) as server:
        _count_polls(sandbox)
        _delivery_faults(sandbox, {"action": "drop", "times": 1})
        data = await _generate(server)
        assert data["status"] == "succeeded" and Path(data["saved_path"]).is_file()
        assert _polls(sandbox) >= 1
        snapshot = sandbox.state.snapshot()
        assert any(d["error"] == "dropped by a sandbox fault" for d in snapshot["webhook_deliveries"])


@pytest.mark.anyio
async def test_a_duplicate_delivery_saves_one_image(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_dup") as server:
        _delivery_faults(sandbox, {"action": "duplicate", "times": 1})
        data = await _generate(server)
        _wait_until(lambda: len(_task_deliveries(sandbox)) >= 2, "both deliveries")
        time.sleep(0.5)  # lets a second (wrong) save happen, if one were going to
        assert _images(server) == [Path(data["saved_path"])]


@pytest.mark.anyio
async def test_an_image_is_saved_by_the_delivery_when_no_call_waits(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_nowait") as server:
        _count_polls(sandbox)
        async with Client(f"{server.url}/mcp") as client:
            started = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
        task_id = (started.structured_content or {})["task_id"]
        saved = _wait_until(lambda: _images(server), "the delivery to save the image")
        assert task_id in saved[0].name
        assert _polls(sandbox) == 0


@pytest.mark.anyio
async def test_forged_stale_replayed_and_late_deliveries_change_nothing(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_forged") as server:
        data = await _generate(server)
        task_id = data["task_id"]
        secret = server.secret()
        events = sandbox.state.webhooks.events(account_id(server.key), limit=10)
        delivered = next(e for e in events if e["data"]["id"] == task_id)
        failed = {**delivered["data"], "status": "failed", "result": None, "error": {"code": "generation_failed"}}
        late = {**delivered, "id": "evt_late_failure", "type": "generation.failed", "data": failed}

        forged_secret = "whsec_" + "A" * 43 + "="
        assert _post_event(server, late, secret=forged_secret) == 401
        assert _post_event(server, late, secret=secret, timestamp=int(time.time()) - 3600) == 401
        assert _post_event(server, delivered, secret=secret) == 200  # a replay: acknowledged, not applied
        assert _post_event(server, late, secret=secret) == 200  # failed after succeeded: ignored
        assert _post_event(server, {**late, "id": "evt_other", "data": {**failed, "id": "task_elsewhere"}},
                           secret=secret) == 200  # fmt: skip

        async with Client(f"{server.url}/mcp") as client:
            listed = await client.call_tool("list_tasks", {})
            again = await client.call_tool("get_task", {"task_id": task_id})
        statuses = {t["task_id"]: t["status"] for t in (listed.structured_content or {})["tasks"]}
        assert statuses == {task_id: "succeeded"}
        assert (again.structured_content or {})["status"] == "succeeded"
        assert _images(server) == [Path(data["saved_path"])]


@pytest.mark.anyio
async def test_after_rotation_old_signatures_are_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _server(sandbox, tmp_path, "rvya_sk_hooks_rotate") as server:
        old = server.secret()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")} | {
            "RIVYA_API_KEY": server.key,
            "RIVYA_BASE_URL": sandbox.base_url,
            "RIVYA_DATA_DIR": str(server.data_dir),
        }
        done = subprocess.run(
            [sys.executable, "-m", "rivya_mcp", "webhooks", "rotate-secret", "--public-url", server.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        new = server.secret()
        assert new != old and server.key not in done.stdout + done.stderr and new not in done.stdout + done.stderr
        probe = {"id": "evt_probe", "type": "generation.succeeded", "api_version": "x", "data": {"id": "task_x",
                 "status": "succeeded"}}  # fmt: skip
        assert _post_event(server, probe, secret=old) == 401
        assert _post_event(server, {**probe, "id": "evt_probe_2"}, secret=new) == 200
        _count_polls(sandbox)
        data = await _generate(server, "After the rotation")
        assert data["status"] == "succeeded" and _polls(sandbox) == 0


@pytest.mark.anyio
async def test_the_variant_profile_names_the_object_generation_and_it_works_too(tmp_path: Path) -> None:
    # The variant profile names the event's object `generation` instead of `data` (and decides every
    # other silent point the other way): the server reads both.
    config = SandboxConfig(queued_seconds=0.2, processing_seconds=0.6, webhooks_allow_loopback=True, profile="variant")
    with start_sandbox(config) as sandbox, _server(sandbox, tmp_path, "rvya_sk_hooks_shape") as server:
        _count_polls(sandbox)
        data = await _generate(server)
        assert data["status"] == "succeeded" and _polls(sandbox) == 0
        events = sandbox.state.webhooks.events(account_id(server.key), limit=5)
        assert events and all("generation" in e and "data" not in e for e in events)


@pytest.mark.anyio
async def test_a_delivery_missed_while_down_is_filled_from_webhook_events(tmp_path: Path) -> None:
    # One attempt per delivery: no retry can arrive once the server is back, only the gap fill.
    config = SandboxConfig(webhooks_allow_loopback=True, webhook_max_attempts=1)
    key = "rvya_sk_hooks_gap"
    port = _free_port()
    with start_sandbox(config) as sandbox:
        with _server(sandbox, tmp_path, key, port=port) as server:
            async with Client(f"{server.url}/mcp") as client:
                started = await client.call_tool(
                    "generate_image", {"prompt": "A gap [sandbox:seconds=2]", "wait_seconds": 0}
                )
            task_id = (started.structured_content or {})["task_id"]
        # Down while the task finishes: its one delivery fails (nobody listens); the event stays listed.
        _wait_until(
            lambda: any(not d["success"] for d in _task_deliveries(sandbox)),
            "the delivery to fail while the server is down",
        )
        assert _images(server) == []
        _count_polls(sandbox)
        with _server(sandbox, tmp_path, key, port=port) as server:
            # No MCP session has started (so no recovery pass): only the start-up gap fill can save it.
            saved = _wait_until(lambda: _images(server), "the gap fill to save the image")
            assert task_id in saved[0].name
            assert _polls(sandbox) == 0
            assert len(_task_deliveries(sandbox)) == 1  # nothing was sent again


@pytest.mark.anyio
async def test_a_signed_delivery_naming_a_loopback_result_url_is_not_fetched(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A result URL from a webhook is input like one from a status answer: the SSRF rules apply.

    The delivery is genuine (signed with the server's own secret) but names a loopback service that
    is not the API: the server refuses to fetch it (the service sees no request) and saves nothing.
    """
    with serve_image_host() as elsewhere, _server(sandbox, tmp_path, "rvya_sk_hooks_ssrf") as server:
        _delivery_faults(sandbox, {"action": "drop"})  # the sandbox's own deliveries never arrive
        async with Client(f"{server.url}/mcp") as client:
            started = await client.call_tool("generate_image", {"prompt": "A far-off lighthouse", "wait_seconds": 0})
        task_id = (started.structured_content or {})["task_id"]
        url = elsewhere.url("/img.png")
        data = {"id": task_id, "status": "succeeded", "model": "flux-kontext-max", "result": {"primary_url": url}}
        event = {"id": "evt_result_elsewhere", "type": "generation.succeeded", "data": data}
        assert _post_event(server, event, secret=server.secret()) == 200

        def refused() -> bool:
            return b"refused the result URL on a loopback address" in server.log.read_bytes()

        _wait_until(lambda: refused() or elsewhere.paths or _images(server), "the delivery to be applied")
        assert elsewhere.paths == []  # never contacted
        assert _images(server) == [] and refused()


def _requests(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = httpx2.get(f"{sandbox.base_url}/_sandbox/requests", timeout=5).json()["requests"]
    return records


@pytest.mark.anyio
async def test_an_unverifiable_scheme_is_said_loudly_and_polling_keeps_the_documented_pace(tmp_path: Path) -> None:
    # Rivya signs in a way no known convention verifies: the server says so (a WARNING naming the
    # headers, the readiness detail, doctor), and polls at the documented pace, not the slow fallback.
    config = SandboxConfig(queued_seconds=0.5, processing_seconds=4.0, webhooks_allow_loopback=True,
                           webhook_signing="unknown")  # fmt: skip
    key = "rvya_sk_hooks_unknown"
    with start_sandbox(config) as sandbox, _server(sandbox, tmp_path, key, started=b"webhooks: unverified") as server:
        log = server.log.read_text()
        assert "WARNING" in log and "no known signature convention verifies it" in log
        assert "x-rivya-signature" in log and key not in log
        ready = httpx2.get(f"{server.url}/readyz", timeout=5)
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "webhooks": "unverified"})
        httpx2.delete(f"{sandbox.base_url}/_sandbox/requests").raise_for_status()
        async with Client(f"{server.url}/mcp") as client:
            result = await client.call_tool("generate_image", {"prompt": "Unverified", "wait_seconds": 20})
        data = result.structured_content or {}
        assert not result.is_error and data["status"] == "succeeded"
        records = _requests(sandbox)
        [create] = [r for r in records if r["method"] == "POST" and r["path"] == "/api/v1/generations"]
        polls = [r for r in records if r["method"] == "GET" and r["path"] == f"/api/v1/generations/{data['task_id']}"]
        # The documented first look (2-3 s after the create), not the fallback's 7.5 s.
        assert polls and 2.0 <= polls[0]["start"] - create["end"] <= 3.2, [p["start"] - create["end"] for p in polls]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")} | {
            "RIVYA_API_KEY": key,
            "RIVYA_BASE_URL": sandbox.base_url,
            "RIVYA_DATA_DIR": str(server.data_dir),
            "RIVYA_OUTPUT_DIR": str(server.out_dir),
        }
        # doctor's own test delivery goes to another port (the server holds this one).
        doctor = subprocess.run(
            [sys.executable, "-m", "rivya_mcp", "doctor", "--public-url", server.url, "--listen",
             f"127.0.0.1:{_free_port()}", "--webhook-wait", "3"],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert doctor.returncode == 1, doctor.stdout
    assert "the server has not verified Rivya's signature scheme (unverified)" in doctor.stdout
    endpoint_row = next(line for line in doctor.stdout.splitlines() if line.startswith("webhook endpoint "))
    assert "WARN" in endpoint_row, doctor.stdout


@pytest.mark.anyio
async def test_an_endpoint_rivya_disabled_is_re_enabled_at_start_and_said(tmp_path: Path) -> None:
    config = SandboxConfig(queued_seconds=0.2, processing_seconds=0.6, webhooks_allow_loopback=True)
    key = "rvya_sk_hooks_disabled"
    port = _free_port()
    with start_sandbox(config) as sandbox:
        with _server(sandbox, tmp_path, key, port=port) as server:
            [endpoint] = _endpoints(sandbox, key)
        # While the server is down, Rivya gives up on the endpoint (too many failed deliveries).
        api = httpx2.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5)
        api.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"status": "disabled"}).raise_for_status()
        assert _endpoints(sandbox, key)[0]["status"] == "disabled"
        with _server(sandbox, tmp_path, key, port=port) as server:
            log = server.log.read_text()
            assert f"webhooks: endpoint {endpoint['id']} was disabled at Rivya" in log and "re-enabled it" in log
            assert _endpoints(sandbox, key)[0]["status"] == "active"
            _count_polls(sandbox)
            data = await _generate(server)
            assert data["status"] == "succeeded" and _polls(sandbox) == 0  # deliveries finish tasks again
        api.close()
