"""HTTP transports: DNS-rebinding checks, the bearer token, public binds, the request body limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import (
    MAX_REQUEST_BODY_BYTES,
    RemoteBindRefused,
    build_http_app,
    check_bind,
    is_loopback,
    serve,
    transport_security,
)
from tests.server._threaded import ThreadedServer
from tests.server.conftest import settings_for

TOKEN = "t0ken-for-tests-only"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def http_server(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("http"))
    with ThreadedServer(build_http_app(settings, transport="http")) as server:
        yield server


@pytest.fixture(scope="module")
def sse_server(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("sse"))
    with ThreadedServer(build_http_app(settings, transport="sse")) as server:
        yield server


@pytest.fixture(scope="module")
def token_server(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("token"), auth_token=Secret(TOKEN))
    with ThreadedServer(build_http_app(settings, transport="http")) as server:
        yield server


def _post(server: ThreadedServer, **headers: str) -> httpx2.Response:
    return httpx2.post(f"{server.base_url}/mcp", json=INITIALIZE, headers={**HEADERS, **headers}, timeout=10)


def test_local_origin_is_accepted(http_server: ThreadedServer) -> None:
    assert _post(http_server).status_code == 200
    assert _post(http_server, origin=f"http://localhost:{http_server.port}").status_code == 200


def test_foreign_origin_is_refused(http_server: ThreadedServer) -> None:
    assert _post(http_server, origin="http://evil.example").status_code == 403


def test_foreign_host_is_refused(http_server: ThreadedServer) -> None:
    assert _post(http_server, host="evil.example").status_code == 421


def test_sse_refuses_foreign_origin(sse_server: ThreadedServer) -> None:
    response = httpx2.get(f"{sse_server.base_url}/sse", headers={"origin": "http://evil.example"}, timeout=10)
    assert response.status_code == 403


def test_token_is_required_when_set(token_server: ThreadedServer) -> None:
    missing = _post(token_server)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert _post(token_server, authorization="Bearer wrong").status_code == 401
    assert _post(token_server, authorization=TOKEN).status_code == 401  # the scheme is part of it
    assert _post(token_server, authorization=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.anyio
async def test_a_real_client_with_the_token_works(token_server: ThreadedServer) -> None:
    async with httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        async with Client(streamable_http_client(f"{token_server.base_url}/mcp", http_client=http)) as client:
            tools = (await client.list_tools()).tools
    assert "generate_image" in {t.name for t in tools}


def test_request_body_limit_fits_a_10mb_data_uri(http_server: ThreadedServer) -> None:
    # A 10 MB image as base64 is ~13.4 MB: it must get past the body limit (and fail later as bad JSON-RPC).
    body = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "x", "params": {"pad": "A" * 14_000_000}})
    fits = httpx2.post(f"{http_server.base_url}/mcp", content=body, headers=HEADERS, timeout=30)
    assert fits.status_code != 413
    too_big = httpx2.post(
        f"{http_server.base_url}/mcp", content=b"x" * (MAX_REQUEST_BODY_BYTES + 1), headers=HEADERS, timeout=30
    )
    assert too_big.status_code == 413


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("::1", True), ("[::1]", True),
                                                ("localhost", True), ("0.0.0.0", False), ("192.0.2.7", False),
                                                ("example.com", False)])  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_public_bind_needs_a_token_or_an_explicit_opt_out(tmp_path: Path) -> None:
    settings = Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data")
    with pytest.raises(RemoteBindRefused, match="RIVYA_MCP_AUTH_TOKEN"):
        build_http_app(settings, transport="http", host="0.0.0.0")
    assert isinstance(RemoteBindRefused("x"), ValueError)  # the CLI reports ValueErrors as refused configuration
    build_http_app(settings.with_changes(auth_token=Secret(TOKEN)), transport="http", host="0.0.0.0")
    build_http_app(settings, transport="sse", host="0.0.0.0", allow_remote_without_token=True)
    check_bind("localhost", has_token=False, allow_remote_without_token=False)


@pytest.mark.anyio
async def test_serve_refuses_before_binding(tmp_path: Path) -> None:
    settings = Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data")
    with pytest.raises(RemoteBindRefused):
        await serve(settings, transport="http", host="192.0.2.7", port=1)


def test_rebinding_protection_stays_armed_on_other_hosts(sandbox: RunningSandbox, tmp_path: Path) -> None:
    security = transport_security("192.0.2.7")
    assert security.enable_dns_rebinding_protection
    assert "192.0.2.7:*" in security.allowed_hosts and "localhost:*" in security.allowed_hosts
    assert "[::1]:*" in transport_security("::1").allowed_hosts
    settings = settings_for(sandbox, tmp_path, auth_token=Secret(TOKEN))
    app = build_http_app(settings, transport="http", host="192.0.2.7")
    with ThreadedServer(app) as server:  # served on loopback, configured as if bound to 192.0.2.7
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert _post(server, host="evil.example", **auth).status_code == 421
        assert _post(server, host=f"192.0.2.7:{server.port}", **auth).status_code == 200
        assert _post(server, origin="http://evil.example", **auth).status_code == 403
