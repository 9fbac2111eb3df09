"""/healthz and /readyz: what a load balancer asks, answered before the token check."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from rivya_mcp.settings import Secret, Settings
from rivya_mcp.tasks import Runtime
from rivya_mcp.transport import BearerTokenMiddleware, HealthMiddleware

pytestmark = pytest.mark.anyio


async def inner(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"inner"})


async def get(runtime: Runtime, path: str) -> tuple[int, bytes]:
    # As built by build_http_app: health outermost, then the bearer token, then the MCP app.
    app = HealthMiddleware(BearerTokenMiddleware(inner, token="s3cret"), runtime=runtime)  # type: ignore[arg-type]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    return int(sent[0]["status"]), bytes(sent[1]["body"])


async def test_embedded_server_is_ready_and_other_paths_still_need_the_token(tmp_path: Any) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path))
    assert await get(runtime, "/healthz") == (200, json.dumps({"status": "ok"}).encode())
    assert (await get(runtime, "/readyz"))[0] == 200
    assert (await get(runtime, "/mcp"))[0] == 401  # the token check still guards everything else


async def test_a_replica_is_ready_only_once_its_database_and_listener_are(postgres_url: str, tmp_path: Any) -> None:
    runtime = Runtime(Settings(data_dir=tmp_path, database_url=Secret(postgres_url), api_key=Secret("rvya_sk_x")))
    status, body = await get(runtime, "/readyz")
    assert (status, json.loads(body)) == (503, {"status": "unavailable"})
    assert (await get(runtime, "/healthz"))[0] == 200  # alive, just not ready
    async with runtime.session():
        assert runtime.coordinator is not None
        with anyio.fail_after(10):
            await runtime.coordinator.listening.wait()
        assert (await get(runtime, "/readyz"))[0] == 200


async def test_a_replica_whose_database_is_unreachable_refuses_to_start(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from rivya_mcp.journal import JournalError, postgres

    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT_SECONDS", 1.0)
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://rivya:pa55word@127.0.0.1:{port}/rivya"
    runtime = Runtime(Settings(data_dir=tmp_path, database_url=Secret(url), api_key=Secret("rvya_sk_x")))
    with pytest.raises(JournalError, match="can't reach the journal database") as failed:
        async with runtime.session():
            pytest.fail("served without its database")
    assert "pa55word" not in str(failed.value) and f"127.0.0.1:{port}/rivya" in str(failed.value)
    assert (await get(runtime, "/readyz"))[0] == 503
