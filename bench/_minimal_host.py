"""A minimal MCP host over stdio: what every host has to do per tool call, and nothing more.

Newline-delimited JSON-RPC on the server's pipes (as ``cold_start.py`` speaks it): the
``initialize`` handshake, ``tools/list`` once, then per call a ``tools/call`` request, its answer
found by id (notifications in between are read and skipped), parsed with ``json.loads``, refused
if it is an error or an ``isError`` result, and its ``structuredContent`` validated against the
tool's ``outputSchema`` (the spec asks clients to) by a validator compiled once.

``call_overhead.py`` uses it to time the server's share of a stdio call apart from the Python
SDK's ``mcp.Client``, whose stdio transport and session add their own reader and writer tasks,
memory streams and pydantic models on the host's side (desktop hosts are not Python).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from _common import initialize_params
from anyio.abc import Process
from jsonschema import Draft202012Validator

_READ_SIZE = 1 << 20


class MinimalHost:
    """One stdio server process, spoken to as a minimal host; use ``MinimalHost.spawn``."""

    def __init__(self, process: Process) -> None:
        self._process = process
        self._buffer = bytearray()
        self._next_id = 0
        self._validators: dict[str, Draft202012Validator] = {}

    @classmethod
    @asynccontextmanager
    async def spawn(cls, command: list[str], env: Mapping[str, str] | None = None) -> AsyncIterator[MinimalHost]:
        # stderr=None: the server's log lines go to ours, as with mcp.Client (a pipe nobody read could fill up).
        async with await anyio.open_process(command, env=env, stderr=None) as process:
            host = cls(process)
            try:
                await host._handshake()
                yield host
            finally:
                assert process.stdin is not None
                await process.stdin.aclose()  # EOF on stdin ends a stdio server
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The ``tools/call`` result, checked as a host checks it."""
        result = await self.request("tools/call", {"name": name, "arguments": dict(arguments)})
        if result.get("isError"):
            raise RuntimeError(f"{name} failed: {result.get('content')}")
        validator = self._validators.get(name)
        if validator is not None:
            validator.validate(result.get("structuredContent"))
        return result

    async def request(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": dict(params)})
        while True:
            message = await self._receive()
            if message.get("id") != request_id:
                continue  # a notification (progress, a log line): a host would show it
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            result: dict[str, Any] = message["result"]
            return result

    async def _handshake(self) -> None:
        await self.request("initialize", initialize_params("rivya-mcp-bench-minimal-host"))
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        listed = await self.request("tools/list", {})
        for tool in listed["tools"]:
            schema = tool.get("outputSchema")
            if schema is not None:
                self._validators[tool["name"]] = Draft202012Validator(schema)

    async def _send(self, message: Mapping[str, Any]) -> None:
        assert self._process.stdin is not None
        await self._process.stdin.send(json.dumps(message).encode() + b"\n")

    async def _receive(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        while (end := self._buffer.find(b"\n")) < 0:
            self._buffer += await self._process.stdout.receive(_READ_SIZE)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        message: dict[str, Any] = json.loads(line)
        return message
