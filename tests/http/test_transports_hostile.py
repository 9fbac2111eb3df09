"""Streamable HTTP and SSE under hostile or heavy use: local paths, big bodies, many sessions."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.sandbox import RunningSandbox, start_sandbox
from rivya_mcp.settings import Settings
from rivya_mcp.transport import MAX_REQUEST_BODY_BYTES, build_http_app
from tests.http.conftest import FAST, http_settings, padded_png, small_png
from tests.server._threaded import ThreadedServer

pytestmark = pytest.mark.anyio

TRANSPORTS = ("http", "sse")
REFERENCE_LIMIT = 10_000_000  # the docs' "10 MB", read the stricter way
SESSIONS = 20


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@asynccontextmanager
async def connect(server: ThreadedServer, transport: str) -> AsyncIterator[Client]:
    target: Any = f"{server.base_url}/mcp" if transport == "http" else sse_client(f"{server.base_url}/sse")
    async with Client(target) as client:
        yield client


@pytest.fixture
def serving(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Any]:
    """``serving(transport, **settings changes)`` → a running server (stopped after the test)."""
    servers: list[ThreadedServer] = []

    def start(transport: str, **changes: Any) -> ThreadedServer:
        app = build_http_app(http_settings(sandbox, tmp_path, **changes), transport=transport)  # type: ignore[arg-type]
        server = ThreadedServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_paths_on_the_servers_disk_are_refused_unless_read_dirs_name_them(
    serving: Any, sandbox: RunningSandbox, tmp_path: Path, transport: str
) -> None:
    allowed, outside = tmp_path / "refs", tmp_path / "private"
    allowed.mkdir()
    outside.mkdir()
    for folder in (allowed, outside):
        (folder / "cat.png").write_bytes(small_png())
    files_before = len(sandbox.state.snapshot()["files"])

    async with connect(serving(transport), transport) as client:
        for path in (allowed / "cat.png", outside / "cat.png", Path("/etc/passwd")):
            refused = await client.call_tool("upload_reference", {"source": str(path)})
            assert refused.is_error and "RIVYA_READ_DIRS" in _text(refused), _text(refused)
            # Issue 23 item 16: the next step offered the very thing just refused ("as a local path").
            assert "local path" not in _text(refused).lower(), _text(refused)
    assert len(sandbox.state.snapshot()["files"]) == files_before

    async with connect(serving(transport, read_dirs=(allowed,)), transport) as client:
        inside = await client.call_tool("upload_reference", {"source": str(allowed / "cat.png")})
        assert not inside.is_error, _text(inside)
        for path in (outside / "cat.png", allowed / ".." / "private" / "cat.png", Path("/etc/passwd")):
            refused = await client.call_tool("upload_reference", {"source": str(path)})
            assert refused.is_error and "outside the folders" in _text(refused), _text(refused)
    assert len(sandbox.state.snapshot()["files"]) == files_before + 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_reference_just_under_10_mb_fits_through_as_a_data_uri(
    serving: Any, sandbox: RunningSandbox, transport: str
) -> None:
    image = padded_png(REFERENCE_LIMIT - 4096)
    source = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    assert len(source) > 13_300_000  # what the body limit must admit
    async with connect(serving(transport), transport) as client:
        with anyio.fail_after(30):
            result = await client.call_tool(
                "edit_image", {"prompt": "make it night", "reference": source, "wait_seconds": 0}
            )
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    task = next(t for t in sandbox.state.snapshot()["tasks"] if t["id"] == result.structured_content["task_id"])
    uploaded = next(f for f in sandbox.state.snapshot()["files"] if f["id"] == task["references"][0]["id"])
    assert uploaded["size"] == len(image)


async def test_a_body_over_the_limit_is_refused_with_413_over_streamable_http(serving: Any) -> None:
    server = serving("http")
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{server.base_url}/mcp", content=b"x" * (MAX_REQUEST_BODY_BYTES + 1), headers=headers
        )
    assert response.status_code == 413


async def test_a_body_over_the_limit_is_refused_with_413_over_sse(serving: Any) -> None:
    server = serving("sse")
    async with httpx2.AsyncClient(timeout=30) as http:
        async with http.stream("GET", f"{server.base_url}/sse") as stream:
            endpoint = None
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    endpoint = line.removeprefix("data:").strip()
                    break
            assert endpoint and "session_id=" in endpoint
            response = await http.post(
                f"{server.base_url}{endpoint}",
                content=b"x" * (MAX_REQUEST_BODY_BYTES + 1),
                headers={"content-type": "application/json"},
            )
    assert response.status_code == 413


async def test_twenty_concurrent_sessions_each_get_their_image_and_pay_once(tmp_path: Path) -> None:
    with start_sandbox(FAST) as sandbox:  # its own sandbox: the ledger holds only these tasks
        settings: Settings = http_settings(sandbox, tmp_path)
        with ThreadedServer(build_http_app(settings, transport="http")) as server:
            results: list[CallToolResult] = []

            async def one_session(index: int) -> None:
                async with Client(f"{server.base_url}/mcp") as client:
                    results.append(
                        await client.call_tool(
                            "generate_image",
                            {"prompt": f"Lighthouse number {index}", "aspectRatio": "1:1", "wait_seconds": 30},
                        )
                    )

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    for index in range(SESSIONS):
                        group.start_soon(one_session, index)
        snapshot = sandbox.state.snapshot()

    assert len(results) == SESSIONS
    assert all(not r.is_error for r in results), [_text(r) for r in results if r.is_error]
    data = [r.structured_content for r in results]
    assert all(d is not None and d["status"] == "succeeded" and Path(d["saved_path"]).is_file() for d in data)
    task_ids = {d["task_id"] for d in data if d is not None}
    assert len(task_ids) == SESSIONS
    charges = [e for e in snapshot["ledger"] if e["delta"] < 0]
    assert len(charges) == SESSIONS and {e["task_id"] for e in charges} == task_ids
    assert {t["id"] for t in snapshot["tasks"]} == task_ids


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_foreign_origin_and_host_are_refused_on_both_transports(serving: Any, transport: str) -> None:
    server = serving(transport)
    path = "/mcp" if transport == "http" else "/sse"
    async with httpx2.AsyncClient(timeout=10) as http:

        async def status(**headers: str) -> int:
            if transport == "http":
                headers = {
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    **headers,
                }
                body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
                return (await http.post(f"{server.base_url}{path}", json=body, headers=headers)).status_code
            async with http.stream("GET", f"{server.base_url}{path}", headers=headers) as response:
                return response.status_code

        assert await status(origin="http://evil.example") == 403
        assert await status(host="evil.example") == 421
        assert await status(origin=f"http://localhost:{server.port}") not in (403, 421)


async def test_outside_the_read_dirs_every_refusal_reads_the_same(
    serving: Any, sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 9: a remote caller learns nothing of what lies outside RIVYA_READ_DIRS.

    Existing file, missing file, a folder, a missing folder, a symlink out (to a file or to
    nothing), ``..``, ``~`` (the server's home) and an unknown user's ``~``: one message, byte for byte,
    naming neither the path nor a link target nor the home. Inside the folders the usual messages stay.
    """
    home = tmp_path / "home"
    allowed, outside = tmp_path / "refs", tmp_path / "private"
    for folder in (home, allowed, outside):
        folder.mkdir()
    (outside / "cat.png").write_bytes(small_png())
    (home / "cat.png").write_bytes(small_png())
    (allowed / "cat.png").write_bytes(small_png())
    (allowed / "out.png").symlink_to(outside / "cat.png")
    (allowed / "dangling.png").symlink_to(outside / "nothing.png")
    (allowed / "sub").mkdir()
    monkeypatch.setenv("HOME", str(home))
    sources = [
        outside / "cat.png",
        outside / "nothing.png",
        outside,
        outside / "no-folder" / "cat.png",
        allowed / "out.png",
        allowed / "dangling.png",
        allowed / ".." / "private" / "cat.png",
        "~/cat.png",
        "~nosuchuser-h4/cat.png",
        "/etc/passwd",
        "/proc/self/mem",
    ]
    async with connect(serving("http", read_dirs=(allowed,)), "http") as client:
        texts = [_text(await client.call_tool("upload_reference", {"source": str(s)})) for s in sources]
        inside_missing = _text(await client.call_tool("upload_reference", {"source": str(allowed / "none.png")}))
        inside_dir = _text(await client.call_tool("upload_reference", {"source": str(allowed / "sub")}))
        inside = await client.call_tool("upload_reference", {"source": str(allowed / "cat.png")})
    assert len(set(texts)) == 1, "\n---\n".join(texts)
    (text,) = set(texts)
    assert "outside the folders this server may read" in text and str(allowed) in text
    for secret in (str(outside), str(home), "private", "nothing", "passwd", "no such", "links to"):
        assert secret not in text, (secret, text)
    assert "no file at" in inside_missing and "none.png" in inside_missing
    assert "is a directory" in inside_dir
    assert not inside.is_error, _text(inside)
