"""A stdio MCP server in a subprocess whose pid the test holds, so it can be killed (SIGKILL).

The SDK's own stdio transport hides its process. This one spawns ``python -m rivya_mcp serve``
itself and bridges its stdin/stdout (one JSON-RPC message per line) to the streams ``Client``
takes as a transport.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import mcp_types
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream
from mcp.shared.message import SessionMessage

from rivya_mcp.journal import JournalEntry, TaskJournal
from rivya_mcp.settings import Settings

EXIT_TIMEOUT = 5.0


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    assert settings.api_key is not None
    env.update(
        {
            "RIVYA_API_KEY": settings.api_key.reveal(),
            "RIVYA_BASE_URL": settings.base_url,
            "RIVYA_OUTPUT_DIR": str(settings.output_dir),
            "RIVYA_DATA_DIR": str(settings.data_dir),
            "RIVYA_POLL_SCALE": str(settings.poll_scale),
            "RIVYA_LOG_LEVEL": "INFO",
        }
    )
    return env


@asynccontextmanager
async def spawn_server(settings: Settings, errlog: IO[Any]) -> AsyncIterator[Process]:
    """Start the stdio server; on exit close its stdin (a normal stop) or kill it if it lingers."""
    process = await anyio.open_process(
        [sys.executable, "-m", "rivya_mcp", "serve"], env=server_env(settings), stderr=errlog
    )
    try:
        yield process
    finally:
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(EXIT_TIMEOUT):
                    await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


@asynccontextmanager
async def process_transport(process: Process) -> AsyncIterator[tuple[Any, Any]]:
    """The MCP streams (read, write: what an mcp.Client takes) over a running process's stdin/stdout."""
    incoming_writer, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_reader = anyio.create_memory_object_stream[SessionMessage](0)
    assert process.stdout is not None and process.stdin is not None
    stdout, stdin = process.stdout, process.stdin

    async def read() -> None:
        async with incoming_writer:
            buffer = ""
            try:
                async for chunk in TextReceiveStream(stdout):
                    *lines, buffer = (buffer + chunk).split("\n")
                    for line in lines:
                        if line.strip():
                            message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                            await incoming_writer.send(SessionMessage(message))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the process died (the point of these tests) or the session ended

    async def write() -> None:
        async with outgoing_reader:
            try:
                async for session_message in outgoing_reader:
                    line = session_message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await stdin.send(line.encode())
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                await incoming_writer.aclose()

    async with anyio.create_task_group() as group:
        group.start_soon(read)
        group.start_soon(write)
        try:
            yield incoming, outgoing
        finally:
            group.cancel_scope.cancel()


def journal_entries(settings: Settings) -> list[JournalEntry]:
    """What the server's journal holds, read from another connection (WAL: never blocks the server)."""
    path = Path(settings.data_dir) / "journal.sqlite3"
    if not path.exists():
        return []
    with TaskJournal(path) as journal:
        return journal.list(limit=100)


async def eventually(condition: Callable[[], bool], *, timeout: float = 15.0, what: str = "condition") -> None:
    """Wait for something another process (or a background task) does; fail after ``timeout``."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(0.05)
        return
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
