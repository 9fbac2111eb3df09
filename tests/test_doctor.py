"""``rivya-mcp doctor`` against real sandboxes over loopback: exit 0 on both profiles (webhook test
delivery included), 1 naming the cause for a bad key, an unreachable base URL, an unverified
signature scheme, a test delivery that never arrives, an unwritable folder. Never a credit spent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from rivya_mcp.doctor import check_base_url, render, run_doctor
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings

KEY = "rvya_sk_doctor_checks"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(params=["default", "variant"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(profile=request.param, webhooks_allow_loopback=True)) as running:
        yield running


def _doctor(tmp_path: Path, base_url: str, *args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env |= {
        "RIVYA_BASE_URL": base_url,
        "RIVYA_OUTPUT_DIR": str(tmp_path / "out"),
        "RIVYA_DATA_DIR": str(tmp_path / "data"),
    }
    if key is not None:
        env["RIVYA_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "doctor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _row(stdout: str, name: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith(name + " "))


def test_doctor_passes_against_each_profile_and_names_the_convention(sandbox: RunningSandbox, tmp_path: Path) -> None:
    public = f"http://127.0.0.1:{_free_port()}"
    done = _doctor(tmp_path, sandbox.base_url, "--public-url", public)
    assert done.returncode == 0, done.stdout + done.stderr
    profile = sandbox.state.profile.name
    for name in ("base URL", "API key", "model catalog", "openapi.json", "webhook endpoint", "webhook delivery",
                 "output folder", "data folder"):  # fmt: skip
        assert " ok " in _row(done.stdout, name) + " ", done.stdout
    convention = "standard:webhook-signature:base64:s" if profile == "default" else "stripe:rivya-signature:raw:s"
    assert f"convention {convention}" in done.stdout
    assert "limits agree with the manifest" in done.stdout
    if profile == "variant":  # its choices are named, and tolerated
        assert "id as file_id" in done.stdout and "insufficient_credits is 400" in done.stdout
    assert done.stdout.rstrip().endswith("Everything holds.")
    assert KEY not in done.stdout + done.stderr
    snapshot = sandbox.state.snapshot()
    assert snapshot["ledger"] == [] and snapshot["tasks"] == []  # not a credit spent
    assert all(e["status"] == "revoked" for e in snapshot["webhook_endpoints"])  # its endpoint is gone again


def test_doctor_names_an_unverified_signature_scheme(tmp_path: Path) -> None:
    config = SandboxConfig(webhooks_allow_loopback=True, webhook_signing="unknown")
    with start_sandbox(config) as sandbox:
        done = _doctor(tmp_path, sandbox.base_url, "--public-url", f"http://127.0.0.1:{_free_port()}")
    assert done.returncode == 1, done.stdout
    assert "FAIL" in _row(done.stdout, "webhook delivery")
    assert "no known signature convention verifies it (unverified scheme)" in done.stdout
    assert "signature headers: x-rivya-signature" in done.stdout
    assert "WARN" in _row(done.stdout, "openapi.json") and "sandbox-unknown" in done.stdout
    assert "- webhook delivery: Deliveries would be refused" in done.stdout


def test_doctor_with_a_bad_key_fails_naming_the_key(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig()) as sandbox:
        done = _doctor(tmp_path, sandbox.base_url, key="not-a-rivya-key")
        missing = _doctor(tmp_path, sandbox.base_url, key=None)
    assert done.returncode == 1
    assert "FAIL" in _row(done.stdout, "API key") and "api_key_invalid" in done.stdout
    assert "- API key: Check RIVYA_API_KEY" in done.stdout
    assert "not-a-rivya-key" not in done.stdout + done.stderr
    assert missing.returncode == 1 and "RIVYA_API_KEY is not set" in missing.stdout


def test_doctor_with_an_unreachable_base_url_fails_naming_it(tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    done = _doctor(tmp_path, base)
    assert done.returncode == 1
    assert "FAIL" in _row(done.stdout, "base URL") and f"{base} is unreachable" in done.stdout
    assert "skip" in _row(done.stdout, "API key") and "skip" in _row(done.stdout, "model catalog")
    assert "- base URL: Check RIVYA_BASE_URL" in done.stdout


def _settings(sandbox: RunningSandbox, tmp_path: Path, **changes: object) -> Settings:
    base = Settings(
        api_key=Secret(KEY), base_url=sandbox.base_url, output_dir=tmp_path / "out", data_dir=tmp_path / "d"
    )
    return base.with_changes(**changes)


@pytest.mark.anyio
async def test_a_test_delivery_that_never_arrives_is_named(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig(webhooks_allow_loopback=True, webhook_max_attempts=1)) as sandbox:
        public = f"http://127.0.0.1:{_free_port()}"  # the receiver listens elsewhere: nothing routes there
        report = await run_doctor(
            _settings(sandbox, tmp_path), public_url=public, listen=f"127.0.0.1:{_free_port()}", webhook_wait=1.0
        )
    delivery = next(c for c in report.checks if c.name == "webhook delivery")
    assert report.exit_code == 1 and delivery.status == "fail"
    assert "no test delivery reached" in delivery.lines[0] and delivery.fix and "--listen" in delivery.fix


@pytest.mark.anyio
async def test_a_busy_listen_port_and_a_disabled_server_endpoint_are_named(tmp_path: Path) -> None:
    with socket.socket() as busy, start_sandbox(SandboxConfig(webhooks_allow_loopback=True)) as sandbox:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        public = f"http://127.0.0.1:{port}"
        api = httpx2.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {KEY}"})
        created = api.post("/api/v1/webhooks", json={"url": f"{public}/webhooks/rivya", "event_types":
                                                      ["generation.succeeded"], "name": "server"}).json()  # fmt: skip
        api.patch(f"/api/v1/webhooks/{created['id']}", json={"status": "disabled"}).raise_for_status()
        report = await run_doctor(_settings(sandbox, tmp_path), public_url=public, webhook_wait=1.0)
        api.close()
    by_name = {c.name: c for c in report.checks}
    assert by_name["webhook endpoint"].status == "warn" and "is disabled" in by_name["webhook endpoint"].lines[0]
    assert by_name["webhook delivery"].status == "fail" and "cannot listen" in by_name["webhook delivery"].lines[0]
    assert "webhook endpoint: Restart the server" in render(report)


@pytest.mark.anyio
async def test_an_unwritable_folder_fails_with_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with start_sandbox(SandboxConfig()) as sandbox:
        report = await run_doctor(_settings(sandbox, tmp_path, output_dir=blocker / "images"))
    folder = next(c for c in report.checks if c.name == "output folder")
    assert report.exit_code == 1 and folder.status == "fail"
    assert "not writable: part of the path is a file" in folder.lines[0] and folder.fix


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "named"),
    [("http://api.example.com", "plain HTTP to another machine"), ("ftp://rivya.ai", "not an http(s) URL")],
)
async def test_a_base_url_the_key_must_not_travel_to_is_refused_unasked(url: str, named: str) -> None:
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: pytest.fail("sent"))) as http:
        check = await check_base_url(url, http)
    assert check.status == "fail" and named in check.lines[0]


@pytest.mark.anyio
async def test_a_model_listed_but_not_callable_and_a_contract_not_served_are_named(tmp_path: Path) -> None:
    listing = {"object": "list", "data": [{"id": "flux-kontext-max", "api_status": "coming_soon"}]}
    rules = [
        {"path": "/api/v1/models", "status": 200, "body": listing},
        {"path": "/api/v1/openapi.json", "status": 404},
    ]
    with start_sandbox(SandboxConfig()) as sandbox:
        httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": rules}).raise_for_status()
        report = await run_doctor(_settings(sandbox, tmp_path))
    by_name = {c.name: c for c in report.checks}
    assert by_name["model catalog"].status == "fail" and "coming_soon" in by_name["model catalog"].lines[0]
    assert by_name["openapi.json"].status == "warn" and "not served" in by_name["openapi.json"].lines[0]
    assert report.exit_code == 1


@pytest.mark.anyio
async def test_a_contract_that_breaks_an_assumption_fails_naming_it(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig()) as sandbox:
        document = httpx2.get(f"{sandbox.base_url}/api/v1/openapi.json").json()
        document["components"]["schemas"]["Generation"]["properties"]["status"]["enum"].append("canceled")
        rule = {"path": "/api/v1/openapi.json", "status": 200, "body": document}
        httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [rule]}).raise_for_status()
        report = await run_doctor(_settings(sandbox, tmp_path))
    check = next(c for c in report.checks if c.name == "openapi.json")
    assert check.status == "fail" and any("canceled" in line for line in check.lines)
    assert report.exit_code == 1
