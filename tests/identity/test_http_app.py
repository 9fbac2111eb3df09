"""Identity on the real rivya-mcp HTTP app (``build_http_app``), in-process and as ``rivya-mcp serve``.

In-process: the Python SDK signs in (DCR) and lists rivya-mcp's tools over a real MCP session; the
sign-in lands in the journal's own database (the data folder's SQLite file). As a process: the CLI
refuses settings that can't work, serves the OAuth documents, and refuses to start with a
``RIVYA_SECRET_KEY`` other than the one its stored sign-ins were sealed with.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from rivya_mcp.journal import SqliteStore
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests.identity._apps import serve_late
from tests.identity._login import SECRET_KEY, Browser, sign_in_by_hand
from tests.identity.test_login_python_sdk import MemoryTokens, _provider

pytestmark = pytest.mark.anyio

STARTUP = 20.0


def _settings(sandbox: RunningSandbox, tmp_path: Path, url: str, **changes: Any) -> Settings:
    return Settings(
        base_url=sandbox.base_url,
        output_dir=tmp_path / "out",
        data_dir=tmp_path / "data",
        public_url=url,
        rivya_login=True,
        secret_key=Secret(SECRET_KEY),
    ).with_changes(**changes)


async def test_rivya_login_on_the_rivya_mcp_app(sandbox: RunningSandbox, tmp_path: Path, rivya_key: str) -> None:
    server = serve_late(lambda url: build_http_app(_settings(sandbox, tmp_path, url), transport="http"))
    with server:
        url = server.base_url
        async with httpx2.AsyncClient(timeout=10) as http:
            refused = await http.post(f"{url}/mcp", json={}, headers={"accept": "application/json, text/event-stream"})
            assert refused.status_code == 401
            assert (
                f'resource_metadata="{url}/.well-known/oauth-protected-resource/mcp"'
                in refused.headers["www-authenticate"]
            )
            assert (await http.get(f"{url}/healthz")).status_code == 200  # probes need no token
            # The webhook route keeps its own authentication (the delivery's signature): the request
            # reaches the receiver (which refuses it for its own reasons), not the token guard.
            hook = await http.post(f"{url}/webhooks/rivya", content=b"{}")
            assert "resource_metadata" not in hook.headers.get("www-authenticate", "")
        browser = Browser(url)
        try:
            server_handle = type("S", (), {"resource": f"{url}/mcp", "url": url})()
            provider = _provider(server_handle, browser, rivya_key, MemoryTokens(), document=None)  # type: ignore[arg-type]
            async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
                async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
                    tools = {tool.name for tool in (await client.list_tools()).tools}
        finally:
            await browser.aclose()
    assert {"generate_image", "edit_image", "get_task"} <= tools
    journal = SqliteStore(tmp_path / "data" / "journal.sqlite3")
    try:
        with journal.read() as tx:
            people = tx.all("SELECT person_id, display_name FROM identity_people")
    finally:
        journal.close()
    assert len(people) == 1 and people[0][0].startswith("rivya:") and people[0][1] == "Ada"


async def test_rivya_login_on_the_legacy_sse_transport(sandbox: RunningSandbox, tmp_path: Path, rivya_key: str) -> None:
    server = serve_late(lambda url: build_http_app(_settings(sandbox, tmp_path, url), transport="sse"))
    with server:
        url = server.base_url
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
            async with http.stream("GET", f"{url}/sse") as refused:
                assert refused.status_code == 401
                assert "resource_metadata=" in refused.headers["www-authenticate"]
            tokens = await sign_in_by_hand(http, url, rivya_key)
            headers = {"authorization": f"Bearer {tokens['access_token']}"}
            initialize = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
            statuses: list[int] = []
            async with http.stream("GET", f"{url}/sse", headers=headers) as stream:
                assert stream.status_code == 200
                async for line in stream.aiter_lines():  # posted while the stream is open
                    if line.startswith("data:"):
                        endpoint = f"{url}{line.removeprefix('data:').strip()}"
                        statuses.append((await http.post(endpoint, json=initialize)).status_code)
                        statuses.append((await http.post(endpoint, json=initialize, headers=headers)).status_code)
                        break
    assert statuses == [401, 202]  # every message needs the token too


def test_a_public_bind_with_identity_needs_no_shared_token(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = _settings(sandbox, tmp_path, "https://mcp.example.com")
    app = build_http_app(settings, transport="http", host="0.0.0.0")
    assert app is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(tmp_path: Path, sandbox: RunningSandbox, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update({"RIVYA_OUTPUT_DIR": str(tmp_path / "out"), "RIVYA_DATA_DIR": str(tmp_path / "data"),
                "RIVYA_BASE_URL": sandbox.base_url, **extra})  # fmt: skip
    return env


def _run(tmp_path: Path, sandbox: RunningSandbox, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rivya_mcp", "serve", *args]
    return subprocess.run(
        command, env=_env(tmp_path, sandbox, **env), capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--transport", "http", "--rivya-login"], {"RIVYA_SECRET_KEY": SECRET_KEY}, "needs --public-url"),
        (["--transport", "http", "--oauth-issuer", "https://idp.example"], {}, "--oauth-issuer needs --public-url"),
        (["--transport", "http", "--rivya-login", "--public-url", "https://m.example"], {}, "SECRET_KEY is not set"),
        (["--transport", "stdio", "--rivya-login"], {}, "are for the HTTP transports"),
        (
            ["--transport", "http", "--rivya-login", "--oauth-issuer", "https://idp.example", "--public-url",
             "https://m.example"],
            {"RIVYA_SECRET_KEY": SECRET_KEY},
            "choose one",
        ),
    ],
)  # fmt: skip
def test_the_cli_refuses_identity_settings_that_cannot_work(
    sandbox: RunningSandbox, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    done = _run(tmp_path, sandbox, *args, **env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


@contextmanager
def _serving(tmp_path: Path, sandbox: RunningSandbox, secret: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / f"server-{port}.log"
    command = [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port),
               "--public-url", url, "--rivya-login"]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=_env(tmp_path, sandbox, RIVYA_SECRET_KEY=secret), stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + STARTUP
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)  # a real process starting; nothing to inject a clock into
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)
        process.log = log.read_text()  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_cli_serves_rivya_login_and_refuses_a_changed_secret(sandbox: RunningSandbox, tmp_path: Path) -> None:
    with _serving(tmp_path, sandbox, SECRET_KEY) as (url, process):
        assert process.poll() is None
        metadata = httpx2.get(f"{url}/.well-known/oauth-authorization-server", timeout=10).json()
        assert metadata["issuer"] == url and metadata["client_id_metadata_document_supported"] is True
        assert "none" in metadata["token_endpoint_auth_methods_supported"]
        resource = httpx2.get(f"{url}/.well-known/oauth-protected-resource/mcp", timeout=10).json()
        assert resource == {
            "resource": f"{url}/mcp",
            "authorization_servers": [url],
            "scopes_supported": ["images"],
            "bearer_methods_supported": ["header"],
            "resource_name": "rivya-mcp",
        }
    with _serving(tmp_path, sandbox, "another-secret-" + "z" * 30) as (_, process):
        process.wait(timeout=STARTUP)
    assert process.returncode != 0
    assert "different RIVYA_SECRET_KEY" in process.log  # type: ignore[attr-defined]
    assert SECRET_KEY not in process.log  # type: ignore[attr-defined]
