"""The sandbox over real HTTP: start_sandbox (uvicorn in a thread) and serve_sandbox (the CLI entry)."""

from __future__ import annotations

import logging
import socket
import threading

import anyio
import httpx2
import pytest

from rivya_mcp.sandbox import ManualClock, SandboxConfig, serve_sandbox, start_sandbox

from .conftest import AUTH, KEY, MODEL, image_bytes, open_image


def test_start_sandbox_serves_the_whole_flow() -> None:
    clock = ManualClock()
    with start_sandbox(SandboxConfig(), clock=clock) as sandbox, httpx2.Client(base_url=sandbox.base_url) as http:
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        uploaded = http.post(
            "/api/v1/files", files={"file": ("r.png", image_bytes())}, data={"kind": "image"}, headers=AUTH
        )
        assert uploaded.status_code == 201
        assert uploaded.json()["url"].startswith(sandbox.base_url + "/_sandbox/media/")
        created = http.post("/api/v1/generations", json={"model": MODEL, "prompt": "a pier"}, headers=AUTH)
        assert created.status_code == 201
        clock.advance(10)
        done = http.get(f"/api/v1/generations/{created.json()['id']}", headers=AUTH).json()
        assert done["status"] == "succeeded"
        image = open_image(http.get(done["result"]["primary_url"]).content)
        assert image.format == "JPEG"
        # The live state is readable from this thread while the server runs in another.
        assert sandbox.state.snapshot()["tasks"][0]["status"] == "succeeded"
        assert sandbox.app.state.sandbox is sandbox.state
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(sandbox.base_url + "/api/v1/models")


def test_drop_and_delay_faults_over_a_real_socket() -> None:
    with start_sandbox() as sandbox, httpx2.Client(base_url=sandbox.base_url) as http:
        rules = [
            {"path": "/api/v1/credits", "drop": True, "times": 1},
            {"path": "/api/v1/credits", "delay_ms": 300, "times": 1},
        ]
        http.post("/_sandbox/faults", json={"rules": rules})
        with pytest.raises(httpx2.RemoteProtocolError):
            http.get("/api/v1/credits", headers=AUTH)
        with pytest.raises(httpx2.ReadTimeout):
            http.get("/api/v1/credits", headers=AUTH, timeout=0.05)
        assert http.get("/api/v1/credits", headers=AUTH).json() == {"current_credits": 1000}


def test_concurrent_requests_and_state_reads() -> None:
    with start_sandbox(SandboxConfig(queued_seconds=0, processing_seconds=0)) as sandbox:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with httpx2.Client(base_url=sandbox.base_url) as http:
                    for i in range(5):
                        body = {"model": MODEL, "prompt": f"p{n}-{i}"}
                        assert http.post("/api/v1/generations", json=body, headers=AUTH).status_code == 201
            except BaseException as exc:  # surfaced to the main thread below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            sandbox.state.snapshot()
        for thread in threads:
            thread.join()
        assert not errors
        snapshot = sandbox.state.snapshot()
        assert len(snapshot["tasks"]) == 20
        assert list(snapshot["balances"].values()) == [1000 - 20 * 8]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.anyio
async def test_serve_sandbox_runs_until_cancelled_and_never_logs_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        async with anyio.create_task_group() as group, httpx2.AsyncClient(base_url=base) as http:
            group.start_soon(serve_sandbox, SandboxConfig(), "127.0.0.1", port)
            for _ in range(200):
                try:
                    response = await http.get("/api/v1/credits", headers=AUTH)
                    break
                except httpx2.ConnectError:
                    await anyio.sleep(0.02)  # waiting for a real server to bind; no clock to inject
            assert response.json() == {"current_credits": 1000}
            bad = await http.get("/api/v1/credits", headers={"Authorization": "Bearer " + KEY + "!"})
            assert bad.status_code == 401
            group.cancel_scope.cancel()
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(base + "/api/v1/models")
        logged = capsys.readouterr()
        assert '"GET /api/v1/credits HTTP/1.1" 200' in logged.err
        assert KEY not in logged.err and KEY not in logged.out
        assert logged.out == ""
    finally:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rivya_mcp.sandbox"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
