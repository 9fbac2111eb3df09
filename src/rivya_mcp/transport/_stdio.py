"""The stdio transport on non-blocking pipes, read and written on the event loop itself.

The SDK's ``mcp.server.stdio.stdio_server`` reads and writes through ``anyio.wrap_file``: every
line read and every line written is a hop to a worker thread and back, ~1.9 ms per round trip on
a two-core box. When stdin and stdout are pipes or sockets (how every MCP host spawns a stdio
server), this transport instead sets them non-blocking and waits for readiness on the running
loop (``anyio.wait_readable``/``wait_writable``). Anything else (Windows, a TTY, a regular file,
stdout sharing its pipe with stderr, an SDK without the pieces reused here) falls back to the SDK
transport unchanged.

Its streams have no task of their own in the message path: the session's receive reads the next
line from the pipe itself, and a send writes its frame to the pipe itself when the pipe takes it
whole (a queue and one flusher task take over otherwise). Two task switches per call fewer than
with memory streams and reader/writer tasks, each a trip through the event loop.

It keeps the SDK transport's contract: streams of ``SessionMessage | Exception`` in and
``SessionMessage`` out; newline-delimited JSON; input decoded as UTF-8 with ``errors="replace"``
and universal newlines (as the SDK's ``TextIOWrapper`` does); a line that is not a JSON-RPC
message goes to the session as the validation exception (which answers the client with an
error); each message is written whole before the next; EOF on stdin ends the session. Like the
SDK, it claims fd 0/1 while serving (stray reads see EOF, stray prints go to stderr) and restores
them, and the descriptors' blocking flags, on exit. The claim is our own few lines (``_claim_fd``
below), not the SDK's private helpers, whose meaning a 2.x release may change without notice.

On both paths, a line that is not a JSON-RPC message is answered as JSON-RPC 2.0 §5.1 asks
(the SDK only logs it, so the client would wait for an answer that never comes): -32700 "Parse
error" for text that is not JSON, -32600 "Invalid Request" for JSON that is not a message, both
with ``id: null``; the session goes on reading. Blank lines are skipped without an answer.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import stat
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Self

import anyio
import anyio.lowlevel
import mcp_types as types
import pydantic
from mcp.shared.message import SessionMessage

if sys.platform != "win32":
    import fcntl

__all__ = ["stdio_server", "unreadable_line_reply"]

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
# At EOF, how long requests already read may take to be answered before the session is closed
# (which cancels whatever is still running). The SDK's transport leaves them no time on purpose,
# but its thread hop to notice EOF let quick ones (a ping, tools/list) finish; this keeps that
# for piped input like ``printf '…' | rivya-mcp serve`` without holding a departed host long.
EOF_GRACE_SECONDS = 0.5


def stdio_server() -> AbstractAsyncContextManager[tuple[Any, Any]]:
    """``(read_stream, write_stream)`` over this process's stdin/stdout; the fast path when possible."""
    return _answering_unreadable_lines(_pipe_stdio_server() if _pipes_usable() else _sdk_stdio_server())


def _sdk_stdio_server() -> AbstractAsyncContextManager[tuple[Any, Any]]:
    from mcp.server.stdio import stdio_server as sdk_stdio_server

    return sdk_stdio_server()


def unreadable_line_reply(exc: Exception) -> types.JSONRPCError | None:
    """The error a transport answers for a line it could not turn into a message, if any.

    ``exc`` is what the transports hand the session for such a line (pydantic's ValidationError
    from ``jsonrpc_message_adapter.validate_json``). The id is always null: JSON-RPC 2.0 §5.1
    allows it when the id cannot be detected, and echoing an id read from a malformed message
    could make the client take this error for the answer to a request of its own.
    """
    if not isinstance(exc, pydantic.ValidationError):
        return None
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        given = errors[0].get("input")
        if isinstance(given, str) and not given.strip():
            return None  # a blank line: nothing was sent, nothing to answer
        # pydantic's message says where the JSON broke, never what it contained.
        detail = str(errors[0].get("msg", "invalid JSON"))
        return types.JSONRPCError(
            jsonrpc="2.0", id=None, error=types.ErrorData(code=types.PARSE_ERROR, message=f"Parse error: {detail}")
        )
    return types.JSONRPCError(
        jsonrpc="2.0",
        id=None,
        error=types.ErrorData(code=types.INVALID_REQUEST, message="Invalid Request: not a JSON-RPC 2.0 message"),
    )


class _ReadStream:
    """What a read stream adds to ``receive``/``aclose``: iteration and ``async with``."""

    async def receive(self) -> SessionMessage | Exception:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class _AnsweringReadStream(_ReadStream):
    """A session read stream that answers unreadable lines itself, then hands them on as before."""

    def __init__(self, inner: Any, write_stream: Any) -> None:
        self._inner = inner
        self._write = write_stream

    @property
    def last_context(self) -> Any:
        # The SDK's dispatcher reads this from its own context streams; pass it through.
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        item: SessionMessage | Exception = await self._inner.receive()
        if isinstance(item, Exception):
            reply = unreadable_line_reply(item)
            if reply is not None:
                log.debug("answered an unreadable stdio line with JSON-RPC error %d", reply.error.code)
                await self._write.send(SessionMessage(reply))
        return item

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def _answering_unreadable_lines(
    transport: AbstractAsyncContextManager[tuple[Any, Any]],
) -> AsyncIterator[tuple[Any, Any]]:
    async with transport as (read_stream, write_stream):
        yield _AnsweringReadStream(read_stream, write_stream), write_stream


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


async def _write_all(fd: int, data: memoryview) -> None:
    while data:
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            await anyio.wait_writable(fd)
            continue
        data = data[written:]


def _frame(message: types.JSONRPCMessage) -> bytes:
    return (message.model_dump_json(by_alias=True, exclude_unset=True) + "\n").encode("utf-8")


class _Unanswered:
    """Ids of requests read whose response hasn't been written: at EOF they get a short grace."""

    def __init__(self) -> None:
        self._ids: set[Any] = set()
        self._all_answered = anyio.Event()

    def read(self, message: types.JSONRPCMessage) -> None:
        if getattr(message, "method", None) is not None and getattr(message, "id", None) is not None:
            self._ids.add(message.id)  # type: ignore[union-attr]

    def written(self, message: types.JSONRPCMessage) -> None:
        if self._ids and getattr(message, "method", None) is None:
            self._ids.discard(getattr(message, "id", None))
            if not self._ids:
                self._all_answered.set()

    async def settle(self, timeout: float) -> None:
        if self._ids:
            self._all_answered = anyio.Event()
            with anyio.move_on_after(timeout):
                await self._all_answered.wait()


class _PipeReadStream(_ReadStream):
    """The session's read stream, pulled from the stdin pipe by the task that receives.

    No reader task and no memory stream in between: a message is read, split and parsed when the
    session asks for the next one, which saves a task switch per message (the SDK already relays
    each one through a task of its own). Meant for one receiving task, as the session has.
    """

    def __init__(self, fd: int, unanswered: _Unanswered) -> None:
        self._fd = fd
        self._unanswered = unanswered
        self._splitter = _LineSplitter()
        self._lines: deque[str] = deque()
        self._eof = False
        self._closed = False

    async def receive(self) -> SessionMessage | Exception:
        waited = False
        while not self._lines:
            if self._closed:
                raise anyio.ClosedResourceError
            if self._eof:
                await self._unanswered.settle(EOF_GRACE_SECONDS)
                raise anyio.EndOfStream
            # Wait first: the pipe is almost always empty when the next message is asked for, and a
            # read that finds it so would be a wasted system call.
            await anyio.wait_readable(self._fd)
            waited = True
            self._fill()
        if not waited:
            # A line left from an earlier read (the client wrote several at once): still one
            # checkpoint per message, as a memory stream's receive has.
            await anyio.lowlevel.checkpoint()
        return self._parse(self._lines.popleft())

    def _fill(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:  # readable, then drained by someone else: wait again
            return
        if data:
            self._lines.extend(self._splitter.feed(data))
        else:
            self._eof = True
            self._lines.extend(self._splitter.feed(b"", final=True))

    def _parse(self, line: str) -> SessionMessage | Exception:
        try:
            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except Exception as exc:
            # The session answers the client with an error, as the SDK transport's does.
            return exc
        self._unanswered.read(message)
        return SessionMessage(message)

    async def aclose(self) -> None:
        # No checkpoint, as a memory stream's: the session closes its streams in cleanup code, where
        # a cancellation raised here would skip the rest of that cleanup.
        self._closed = True


class _PipeWriteStream:
    """The session's write stream: the sender writes its message to the stdout pipe itself.

    A message the pipe takes whole (the usual case: the pipe holds 64 KiB and the host reads as
    it comes) costs one ``write`` and no task switch. Otherwise its remainder is queued, behind any
    message already queued, for :meth:`flush_queue`, which writes each one whole and in order; the
    sender waits for that. A message once queued is written whole even if its sender is cancelled,
    so a frame is never cut short.
    """

    def __init__(self, fd: int, unanswered: _Unanswered) -> None:
        self._fd = fd
        self._unanswered = unanswered
        self._queue: deque[tuple[memoryview, types.JSONRPCMessage, anyio.Event]] = deque()
        self._queued = anyio.Event()
        self._closed = False
        self._error: OSError | None = None

    async def send(self, item: SessionMessage) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._raise_if_broken()
        message = item.message
        data = _frame(message)
        written = 0
        if not self._queue:  # nothing ahead of this message: try the pipe directly
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                pass
            except OSError as exc:
                self._break(exc)
                self._raise_if_broken()
            if written == len(data):
                self._unanswered.written(message)
                return
        done = anyio.Event()
        self._queue.append((memoryview(data)[written:], message, done))
        self._queued.set()
        await done.wait()
        self._raise_if_broken()

    async def flush_queue(self) -> None:
        """Write queued messages until the stream is closed; a write error ends the transport."""
        while True:
            while not self._queue:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    return
                self._queued = anyio.Event()
                await self._queued.wait()
            view, message, done = self._queue[0]
            try:
                await _write_all(self._fd, view)
            except OSError as exc:
                self._break(exc)
                raise
            self._queue.popleft()
            self._unanswered.written(message)
            done.set()

    def _break(self, exc: OSError) -> None:
        """The pipe failed (the host is gone): release every waiting sender and end the flusher."""
        self._error = exc
        while self._queue:
            self._queue.popleft()[2].set()
        self._queued.set()

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise anyio.BrokenResourceError from self._error

    def close(self) -> None:
        """No more messages: the flusher ends once what is queued is written."""
        self._closed = True
        self._queued.set()

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> _PipeWriteStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


# fds this process's transport has claimed; a second concurrent claim would tear frames.
_claimed: set[int] = set()


def _claim_fd(fd: int, open_diversion: Callable[[], int]) -> tuple[int, Callable[[], None]]:
    """Serve the wire from a private duplicate of ``fd`` and point ``fd`` itself elsewhere.

    Handlers, libraries and children that read fd 0 then see EOF, and stray prints to fd 1 go to
    stderr, instead of stealing or corrupting protocol frames. Best-effort, as the SDK's claim:
    when a descriptor cannot be duplicated or diverted, the wire is served from ``fd`` in place.
    Returns the descriptor to serve and the function that puts ``fd`` back.
    """
    if fd in _claimed:
        raise RuntimeError(f"another stdio_server() in this process has already claimed fd {fd}")
    _claimed.add(fd)

    def release() -> None:
        _claimed.discard(fd)

    try:
        # Above the standard range (so it never lands on 0-2) and close-on-exec (children never see it).
        private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        return fd, release
    try:
        diversion = open_diversion()
    except OSError:
        os.close(private)
        return fd, release
    try:
        os.dup2(diversion, fd)
    except OSError:
        os.close(private)
        return fd, release
    finally:
        os.close(diversion)

    def restore() -> None:
        try:
            os.dup2(private, fd)
        except OSError:  # pragma: no cover - fd stays diverted; the claim is kept so none reuse it
            return
        os.close(private)
        release()

    return private, restore


def _open_stdin_diversion() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _open_stdout_diversion() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


@asynccontextmanager
async def _pipe_stdio_server() -> AsyncIterator[tuple[_PipeReadStream, _PipeWriteStream]]:
    restores: list[Callable[[], None]] = []
    try:
        in_fd, restore_stdin = _claim_fd(0, _open_stdin_diversion)
        restores.append(restore_stdin)
        out_fd, restore_stdout = _claim_fd(1, _open_stdout_diversion)
        restores.append(restore_stdout)
        # Anything still buffered in sys.stdout would otherwise land after our frames (or never);
        # fd 1 now points at stderr, where a stray print belongs.
        sys.stdout.flush()
        restores.append(_set_nonblocking(in_fd))
        restores.append(_set_nonblocking(out_fd))

        unanswered = _Unanswered()
        read_stream = _PipeReadStream(in_fd, unanswered)
        write_stream = _PipeWriteStream(out_fd, unanswered)
        async with anyio.create_task_group() as tg:
            tg.start_soon(write_stream.flush_queue)
            try:
                yield read_stream, write_stream
            finally:
                write_stream.close()
    finally:
        for restore in reversed(restores):
            restore()
