"""Choosing the sandbox profile from the command line and the environment (docs/sandbox.md)."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from PIL import Image

pytestmark = pytest.mark.anyio

KEY = {"Authorization": "Bearer rvya_sk_cli_profile_test"}
STARTUP_SECONDS = 30.0


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update(HOME=str(home), RIVYA_DATA_DIR=str(home / "data"), RIVYA_OUTPUT_DIR=str(home / "out"), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("args", "env_profile", "create_status"),
    [
        ([], None, 201),
        (["--profile", "variant"], None, 200),
        ([], "variant", 200),
        (["--profile", "default"], "variant", 201),  # the flag wins over the environment
    ],
)
def test_sandbox_command_serves_the_chosen_profile(
    tmp_path: Path, args: list[str], env_profile: str | None, create_status: int
) -> None:
    port = _free_port()
    extra = {"RIVYA_SANDBOX_PROFILE": env_profile} if env_profile else {}
    process = subprocess.Popen(
        [sys.executable, "-m", "rivya_mcp", "sandbox", "--port", str(port), *args],
        env=_env(tmp_path, **extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                httpx2.get(f"{base}/_sandbox/health", timeout=1).raise_for_status()
                break
            except httpx2.HTTPError:
                assert process.poll() is None, "the sandbox exited"
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)  # waiting on another process; there is no clock to inject
        created = httpx2.post(
            f"{base}/api/v1/generations", json={"model": "flux-kontext-max", "prompt": "a kite"}, headers=KEY
        )
        assert created.status_code == create_status, created.text
    finally:
        process.terminate()
        process.wait(10)
        assert process.stderr is not None
        process.stderr.close()


@pytest.mark.parametrize(
    ("args", "env_signing", "scheme"),
    [
        ([], None, "standard-webhooks"),
        (["--profile", "variant"], None, "stripe"),
        (["--webhook-signing", "unknown"], None, "sandbox-unknown"),
        ([], "stripe", "stripe"),
        (["--webhook-signing", "standard", "--profile", "variant"], "unknown", "standard-webhooks"),
    ],
)
def test_sandbox_command_signs_webhooks_as_told(
    tmp_path: Path, args: list[str], env_signing: str | None, scheme: str
) -> None:
    port = _free_port()
    extra = {"RIVYA_SANDBOX_WEBHOOK_SIGNING": env_signing} if env_signing else {}
    process = subprocess.Popen(
        [sys.executable, "-m", "rivya_mcp", "sandbox", "--port", str(port), *args],
        env=_env(tmp_path, **extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                httpx2.get(f"{base}/_sandbox/health", timeout=1).raise_for_status()
                break
            except httpx2.HTTPError:
                assert process.poll() is None, "the sandbox exited"
                assert time.monotonic() < deadline, "the sandbox did not start"
                time.sleep(0.1)  # waiting on another process; there is no clock to inject
        assert httpx2.get(f"{base}/api/v1/openapi.json").json()["x-webhook-signature"]["scheme"] == scheme
    finally:
        process.terminate()
        process.wait(10)


def test_an_unknown_webhook_signing_in_the_environment_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "sandbox", "--port", str(_free_port())],
        env=_env(tmp_path, RIVYA_SANDBOX_WEBHOOK_SIGNING="rot13"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "unknown webhook signing 'rot13'" in done.stderr


def test_an_unknown_profile_in_the_environment_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "sandbox", "--port", str(_free_port())],
        env=_env(tmp_path, RIVYA_SANDBOX_PROFILE="lenient"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and "unknown sandbox profile 'lenient'" in done.stderr


async def test_serve_sandbox_embeds_the_profile_named_in_the_environment(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buffer, format="PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "rivya_mcp", "serve", "--sandbox"],
        env=_env(tmp_path, RIVYA_SANDBOX_PROFILE="variant", RIVYA_LOG_LEVEL="WARNING"),
    )
    async with Client(server) as client:
        result = await client.call_tool("upload_reference", {"source": data_uri})
    assert not result.is_error and result.structured_content is not None
    file_id = result.structured_content["file"]["id"]
    assert str(uuid.UUID(file_id)) == file_id  # the variant's bare UUID, read through our client
