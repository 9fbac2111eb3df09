"""The safe defaults, pinned from an empty environment through the real CLI.

With no RIVYA_* variable (and no other configuration than a HOME to keep files in): reference
URLs on private/loopback addresses are refused, local paths are refused over HTTP, HTTP binds
127.0.0.1 only, and a non-loopback bind without a token is refused. Each refusal is paired with
the legitimate request that works once the operator opts in, so it is the default that refuses,
not a broken request.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.cli import _build_parser
from rivya_mcp.settings import Settings
from tests.http.conftest import small_png
from tests.http.test_cli_http import STARTUP, _free_port, serving

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


def _empty_env(tmp_path: Path, **opt_in: str) -> dict[str, str]:
    """Nothing but PATH and a HOME of its own (where the per-user defaults then point)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **opt_in}


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def test_settings_from_an_empty_environment_are_the_safe_ones() -> None:
    settings = Settings.from_env({})
    assert settings.allow_private_urls is False
    assert settings.read_dirs == ()
    assert settings.auth_token is None
    assert settings.allowed_hosts == ()
    assert settings.api_key is None
    args = _build_parser().parse_args(["serve"])
    assert (args.transport, args.host, args.allow_remote_without_token, args.allowed_host) == (
        "stdio",
        "127.0.0.1",
        False,
        [],
    )


@pytest.fixture
def image_host() -> Iterator[tuple[str, list[str]]]:
    """A loopback web server with one PNG: the private address a reference URL must not reach."""
    png, hits = small_png(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: object) -> None:  # stderr stays quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cat.png", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_private_reference_urls_are_refused_by_default(tmp_path: Path, image_host: tuple[str, list[str]]) -> None:
    url, hits = image_host

    async def upload(env: dict[str, str]) -> CallToolResult:
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "rivya_mcp", "serve", "--sandbox"], env=env, cwd=str(tmp_path)
        )
        async with Client(params) as client:
            return await client.call_tool("upload_reference", {"source": url})

    refused = await upload(_empty_env(tmp_path))
    assert refused.is_error and "RIVYA_ALLOW_PRIVATE_URLS" in _text(refused), _text(refused)
    assert hits == []  # not even a connection attempt reached it
    allowed = await upload(_empty_env(tmp_path, RIVYA_ALLOW_PRIVATE_URLS="1"))
    assert not allowed.is_error, _text(allowed)
    assert hits == ["/cat.png"]


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port``, from the kernel's own table."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            pytest.fail(f"{table} is missing: this check of the bind address needs Linux's /proc")
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.split(":")
                if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


async def test_http_binds_loopback_and_refuses_local_paths_by_default(tmp_path: Path) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / "cat.png").write_bytes(small_png())

    async def upload(port: int) -> CallToolResult:
        async with httpx2.AsyncClient(timeout=30) as http:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
                return await client.call_tool("upload_reference", {"source": str(folder / "cat.png")})

    with serving(tmp_path, "--sandbox", env=_empty_env(tmp_path)) as (port, lines):
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else (no ::, no 0.0.0.0)
        refused = await upload(port)  # and no token is asked for on loopback
        assert refused.is_error and "RIVYA_READ_DIRS" in _text(refused), _text(refused)
    assert any(f"at http://127.0.0.1:{port}/mcp" in line for line in lines), lines
    with serving(tmp_path, "--sandbox", env=_empty_env(tmp_path, RIVYA_READ_DIRS=str(folder))) as (port, _):
        allowed = await upload(port)
        assert not allowed.is_error, _text(allowed)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_non_loopback_bind_without_a_token_is_refused_by_default(tmp_path: Path, host: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--host", host,
         "--port", str(_free_port())],
        env=_empty_env(tmp_path), capture_output=True, text=True, timeout=STARTUP,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"Refusing to listen on {host} without a bearer token" in done.stderr
