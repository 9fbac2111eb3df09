"""The stdio transport on non-blocking pipes, read and written on the event loop itself.

The SDK's ``mcp.server.stdio.stdio_server`` reads and writes through ``anyio.wrap_file``: every
line read and every line written is a hop to a worker thread and back, ~1.9 ms per round trip on
a two-core box. When stdin and stdout are pipes or sockets (how every MCP host spawns a stdio
server), this transport instead sets them non-blocking and waits for readiness on the running
loop (``anyio.wait_readable``/``wait_writable``). Anything else (Windows, a TTY, a regular file,
stdout sharing its pipe with stderr, an SDK without the pieces reused here) falls back to the SDK
transport unchanged.

It yields the same streams as the SDK's (context streams of ``SessionMessage | Exception`` and
``SessionMessage``) and keeps its framing exactly: newline-delimited JSON; input decoded as UTF-8
with ``errors="replace"`` and universal newlines (as the SDK's ``TextIOWrapper`` does); a line that
is not a JSON-RPC message goes to the session as the validation exception (which answers the
client with an error); each message is written whole before the next; EOF on stdin ends the
session. Like the SDK, it claims fd 0/1 while serving (stray reads see EOF, stray prints go to
stderr) and restores them, and the descriptors' blocking flags, on exit.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import mcp_types as types
from mcp.shared.message import SessionMessage

__all__ = ["stdio_server"]

_READ_SIZE = 256 * 1024
# At EOF, how long requests already read may take to be answered before the session is closed
# (which cancels whatever is still running). The SDK's transport leaves them no time on purpose,
# but its thread hop to notice EOF let quick ones (a ping, tools/list) finish; this keeps that
# for piped input like ``printf '…' | rivya-mcp serve`` without holding a departed host long.
EOF_GRACE_SECONDS = 0.5


def stdio_server() -> AbstractAsyncContextManager[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` over this process's stdin/stdout; the fast path when possible."""
    if _pipes_usable():
        try:
            from mcp.server.stdio import _claim_fd, _open_stdin_diversion, _open_stdout_diversion
            from mcp.shared._context_streams import create_context_streams
        except ImportError:  # pragma: no cover - an SDK that moved its internals: use its transport
            pass
        else:
            return _pipe_stdio_server(_claim_fd, _open_stdin_diversion, _open_stdout_diversion, create_context_streams)
    from mcp.server.stdio import stdio_server as sdk_stdio_server

    return sdk_stdio_server()


def _pipes_usable() -> bool:
    """stdin and stdout are pipes/sockets we may make non-blocking without affecting anyone else."""
    if sys.platform == "win32":
        return False
    try:
        if sys.stdin is None or sys.stdout is None:
            return False
        if sys.stdin.buffer.fileno() != 0 or sys.stdout.buffer.fileno() != 1:
            return False
        modes = [os.fstat(fd) for fd in (0, 1)]
        if not all(stat.S_ISFIFO(s.st_mode) or stat.S_ISSOCK(s.st_mode) for s in modes):
            return False
        # O_NONBLOCK belongs to the open file description: if stderr shares stdout's pipe, making
        # stdout non-blocking would make stderr (our logs) non-blocking too.
        err = os.fstat(2)
        if (err.st_dev, err.st_ino) == (modes[1].st_dev, modes[1].st_ino):
            return False
    except (AttributeError, OSError, ValueError):
        return False
    return True


class _LineSplitter:
    """Bytes in, complete text lines out, exactly as iterating a UTF-8 ``TextIOWrapper`` yields them."""

    def __init__(self) -> None:
        self._decoder = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")("replace"), True)
        self._pending: list[str] = []

    def feed(self, data: bytes, *, final: bool = False) -> list[str]:
        text = self._decoder.decode(data, final=final)
        lines: list[str] = []
        start = 0
        while (end := text.find("\n", start)) != -1:
            piece = text[start : end + 1]
            if self._pending:
                self._pending.append(piece)
                piece = "".join(self._pending)
                self._pending.clear()
            lines.append(piece)
            start = end + 1
        if start < len(text):
            self._pending.append(text[start:])
        if final and self._pending:
            lines.append("".join(self._pending))
            self._pending.clear()
        return lines


def _set_nonblocking(fd: int) -> Callable[[], None]:
    was_blocking = os.get_blocking(fd)
    os.set_blocking(fd, False)

    def restore() -> None:
        if was_blocking:
            try:
                os.set_blocking(fd, True)
            except OSError:  # pragma: no cover - the descriptor went away
                pass

    return restore


async def _read_chunks(fd: int) -> AsyncIterator[bytes]:
    while True:
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            await anyio.wait_readable(fd)
            continue
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue
        if not data:
            return
        yield data


async def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        view = view[written:]


@asynccontextmanager
async def _pipe_stdio_server(
    claim_fd: Any, open_stdin_diversion: Any, open_stdout_diversion: Any, create_context_streams: Any
) -> AsyncIterator[tuple[Any, Any]]:
    restores: list[Callable[[], None]] = []
    try:
        stdin_buffer, restore_stdin = claim_fd(0, sys.stdin, "rb", open_stdin_diversion)
        if restore_stdin is not None:
            restores.append(restore_stdin)
        stdout_buffer, restore_stdout = claim_fd(1, sys.stdout, "wb", open_stdout_diversion)
        if restore_stdout is not None:
            restores.append(restore_stdout)
        in_fd, out_fd = stdin_buffer.fileno(), stdout_buffer.fileno()
        # Anything still buffered in sys.stdout would otherwise land after our frames (or never).
        if out_fd == 1:
            sys.stdout.flush()
        restores.append(_set_nonblocking(in_fd))
        restores.append(_set_nonblocking(out_fd))

        read_stream_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
        write_stream, write_stream_reader = create_context_streams[SessionMessage](0)

        unanswered: set[Any] = set()  # ids of requests read whose response hasn't been written
        all_answered = anyio.Event()

        async def stdin_reader() -> None:
            nonlocal all_answered
            splitter = _LineSplitter()
            try:
                async with read_stream_writer:
                    async for chunk in _read_chunks(in_fd):
                        for line in splitter.feed(chunk):
                            await _deliver(line)
                    for line in splitter.feed(b"", final=True):
                        await _deliver(line)
                    if unanswered:
                        all_answered = anyio.Event()
                        with anyio.move_on_after(EOF_GRACE_SECONDS):
                            await all_answered.wait()
            except anyio.ClosedResourceError:  # pragma: no cover - the session went away first
                await anyio.lowlevel.checkpoint()

        async def _deliver(line: str) -> None:
            try:
                message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except Exception as exc:
                await read_stream_writer.send(exc)
                return
            if getattr(message, "method", None) is not None and getattr(message, "id", None) is not None:
                unanswered.add(message.id)  # type: ignore[union-attr]
            await read_stream_writer.send(SessionMessage(message))

        async def stdout_writer() -> None:
            try:
                async with write_stream_reader:
                    async for session_message in write_stream_reader:
                        json = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                        await _write_all(out_fd, (json + "\n").encode("utf-8"))
                        message = session_message.message
                        if unanswered and getattr(message, "method", None) is None:
                            unanswered.discard(getattr(message, "id", None))
                            if not unanswered:
                                all_answered.set()
            except anyio.ClosedResourceError:  # pragma: no cover
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(stdin_reader)
            tg.start_soon(stdout_writer)
            yield read_stream, write_stream
    finally:
        for restore in reversed(restores):
            restore()
