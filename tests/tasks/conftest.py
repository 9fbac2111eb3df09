"""Tasks-extension harness: a fast sandbox, the real server behind real uvicorn, a raw 2026-07-28 requester."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests.server._threaded import ThreadedServer

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.4)
TASKS_KEY = "rvya_sk_test_tasks_5e4d3c2b"
VERSION = "2026-07-28"
EXTENSION = "io.modelcontextprotocol/tasks"
APPS = "io.modelcontextprotocol/ui"
APP_MIME = "text/html;profile=mcp-app"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


def tasks_settings(sandbox: RunningSandbox, workdir: Path, **changes: Any) -> Settings:
    return Settings(
        api_key=Secret(TASKS_KEY),
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=0.05,
    ).with_changes(**changes)


def serve(settings: Settings) -> ThreadedServer:
    return ThreadedServer(build_http_app(settings, transport="http"))


class Requester:
    """A bare 2026-07-28 requester: full per-request ``_meta`` and the routing headers the spec asks for."""

    def __init__(self, url: str, *, tasks: bool = True, apps: bool = False, token: str | None = None) -> None:
        self.url = url
        self.tasks = tasks
        self.apps = apps  # also declare MCP Apps (a host that renders the viewer)
        self._id = 0
        # An access token (HTTP identity): every request carries it, as a signed-in host's would.
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx2.Client(timeout=60.0, headers=auth)

    def close(self) -> None:
        self._http.close()

    def raw(
        self, method: str, params: dict[str, Any], *, name: str | None = None, tasks: bool | None = None
    ) -> tuple[int, dict[str, Any]]:
        declared = self.tasks if tasks is None else tasks
        self._id += 1
        extensions: dict[str, Any] = {EXTENSION: {}} if declared else {}
        if self.apps:
            extensions[APPS] = {"mimeTypes": [APP_MIME]}
        meta = {
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": {"extensions": extensions} if extensions else {},
            "io.modelcontextprotocol/clientInfo": {"name": "tests", "version": "0"},
        }
        headers = {
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": method,
            "Accept": "application/json, text/event-stream",
        }
        if name is not None:
            headers["Mcp-Name"] = name
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": {**params, "_meta": meta}}
        response = self._http.post(self.url, json=body, headers=headers)
        text = response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
            text = data[-1]
        return response.status_code, json.loads(text)

    def listen(self, notifications: dict[str, Any], *, tasks: bool | None = None) -> list[dict[str, Any]]:
        """Open a ``subscriptions/listen`` stream and read every frame until its final response."""
        declared = self.tasks if tasks is None else tasks
        self._id += 1
        meta = {
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}} if declared else {},
        }
        body = {
            "jsonrpc": "2.0",
            "id": self._id,
            "method": "subscriptions/listen",
            "params": {"notifications": notifications, "_meta": meta},
        }
        headers = {
            "MCP-Protocol-Version": VERSION,
            "Mcp-Method": "subscriptions/listen",
            "Accept": "application/json, text/event-stream",
        }
        frames: list[dict[str, Any]] = []
        with self._http.stream("POST", self.url, json=body, headers=headers) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                frame = json.loads(line[5:])
                frames.append(frame)
                if "id" in frame:  # the response: the stream is over
                    break
        return frames

    def call(self, method: str, params: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        _, message = self.raw(method, params, **kwargs)
        assert "result" in message, message
        result: dict[str, Any] = message["result"]
        return result

    def tool(self, name: str, arguments: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.call("tools/call", {"name": name, "arguments": arguments}, name=name, **kwargs)

    def task(self, method: str, task_id: str, **kwargs: Any) -> dict[str, Any]:
        return self.call(method, {"taskId": task_id}, name=task_id, **kwargs)
