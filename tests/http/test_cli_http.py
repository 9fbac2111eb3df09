"""`rivya-mcp serve --transport http` as a real process: bearer token, public binds, no key in logs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests._leaks import KEY_PATTERN

pytestmark = pytest.mark.slow

TOKEN = "cli-t0ken-for-tests-only"
STARTUP = 20.0
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update({"RIVYA_OUTPUT_DIR": str(tmp_path / "out"), "RIVYA_DATA_DIR": str(tmp_path / "data"), **extra})
    return env


@contextmanager
def serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[int, list[str]]]:
    """Start the CLI server, wait until 127.0.0.1:port answers, yield (port, its stderr lines)."""
    port = _free_port()
    log = tmp_path / f"server-{port}.log"
    command = [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port), *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env or _env(tmp_path), stdout=sink, stderr=subprocess.STDOUT)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {log.read_text(errors='replace')}") from None
                time.sleep(0.05)  # another process; no clock to inject
        yield port, lines
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        lines.extend(log.read_text(errors="replace").splitlines())
        log.unlink()  # scanned below by the caller; not left for the session scan to guess at


def _assert_no_key(lines: list[str]) -> None:
    assert not [line for line in lines if re.search(KEY_PATTERN, line)], "the server logged an API key"


def _initialize(port: int, **headers: str) -> httpx2.Response:
    return httpx2.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers={**HEADERS, **headers}, timeout=10)


@pytest.mark.anyio
@pytest.mark.parametrize("via", ["flag", "environment"])
async def test_auth_token_is_required_by_the_cli_server(tmp_path: Path, via: str) -> None:
    args = ["--sandbox", "--auth-token", TOKEN] if via == "flag" else ["--sandbox"]
    env = _env(tmp_path, RIVYA_MCP_AUTH_TOKEN=TOKEN) if via == "environment" else None
    with serving(tmp_path, *args, env=env) as (port, lines):
        assert _initialize(port).status_code == 401
        assert _initialize(port, authorization="Bearer not-it").status_code == 401
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                assert "generate_image" in {t.name for t in (await client.list_tools()).tools}
                credits = await client.call_tool("get_credits", {})
                assert not credits.is_error and credits.structured_content is not None
    assert any("sandbox running at" in line for line in lines), lines  # the log was captured
    _assert_no_key(lines)
    assert not any(TOKEN in line for line in lines), "the server logged its bearer token"


def test_public_bind_without_a_token_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    port = _free_port()
    done = subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", str(port)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=STARTUP,
    )
    assert done.returncode == 2
    assert "Refusing to listen on 0.0.0.0 without a bearer token" in done.stderr
    assert "RIVYA_MCP_AUTH_TOKEN" in done.stderr and "--allow-remote-without-token" in done.stderr
    assert done.stdout == ""


def test_public_bind_is_allowed_when_explicitly_requested(tmp_path: Path) -> None:
    # Listens on 0.0.0.0 only for as long as this one request takes, then is terminated.
    with serving(tmp_path, "--host", "0.0.0.0", "--allow-remote-without-token") as (port, lines):
        assert _initialize(port).status_code == 200
    _assert_no_key(lines)


@pytest.mark.anyio
async def test_a_remote_host_name_is_refused_until_allowed_then_a_real_client_works_through_it(
    tmp_path: Path,
) -> None:
    """What a client reaching the machine by name (or a proxy keeping the Host header) sends."""
    remote = {"host": "mcp.example.test"}
    auth = {"authorization": f"Bearer {TOKEN}"}
    with serving(tmp_path, "--sandbox", "--auth-token", TOKEN) as (port, _):
        assert _initialize(port, **remote, **auth).status_code == 421  # DNS-rebinding protection is on
        assert _initialize(port, **auth).status_code == 200
    allowed = ["--allowed-host", "mcp.example.test", "--allowed-host", "alt.example.test:8443"]
    with serving(tmp_path, "--sandbox", "--auth-token", TOKEN, *allowed) as (port, lines):
        assert _initialize(port, **remote, **auth).status_code == 200
        assert _initialize(port, **remote, **auth, origin="https://mcp.example.test").status_code == 200
        assert _initialize(port, host="alt.example.test:8443", **auth).status_code == 200
        assert _initialize(port, host="alt.example.test:9000", **auth).status_code == 421
        assert _initialize(port, host="other.example.test", **auth).status_code == 421
        assert _initialize(port, **remote, **auth, origin="https://evil.example").status_code == 403
        assert _initialize(port, **remote).status_code == 401  # the token is still required
        async with httpx2.AsyncClient(headers={**remote, **auth}, timeout=30) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                assert "generate_image" in {t.name for t in (await client.list_tools()).tools}
                credits = await client.call_tool("get_credits", {})
                assert not credits.is_error
    _assert_no_key(lines)


def test_allowed_hosts_from_the_environment_and_a_bad_entry_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    env = _env(tmp_path, RIVYA_ALLOWED_HOSTS="other.example.test, mcp.example.test:8443")
    with serving(tmp_path, env=env) as (port, _):
        assert _initialize(port, host="mcp.example.test:8443").status_code == 200
        own = {"host": "mcp.example.test:8443", "origin": "https://mcp.example.test:8443"}
        assert _initialize(port, **own).status_code == 200
        assert _initialize(port, host="other.example.test").status_code == 200
        assert _initialize(port, host="mcp.example.test:9999").status_code == 421
        assert _initialize(port, host="third.example.test").status_code == 421
        # Without a token only this server's own origin and configured ones: not another local port.
        assert _initialize(port, origin=f"http://127.0.0.1:{port}").status_code == 200
        assert _initialize(port, origin=f"http://localhost:{3000 if port != 3000 else 3001}").status_code == 403
    done = subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(_free_port()),
         "--allowed-host", "https://mcp.example.test/"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=STARTUP,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Not a host name for --allowed-host" in done.stderr and done.stdout == ""
