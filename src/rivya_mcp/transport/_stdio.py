"""stdio: the SDK's own transport, with an answer for a line that is not a JSON-RPC message.

``serve_stdio(server)`` runs ``MCPServer.run_stdio_async()``, whose transport
(``mcp.server.stdio.stdio_server()``) reads and writes through ``anyio.wrap_file`` in worker
threads. One behaviour is ours: a line that is not a JSON-RPC message is answered as JSON-RPC 2.0
§5.1 asks (-32700 "Parse error" for text that is not JSON, -32600 "Invalid Request" for JSON that
is not a message, both with ``id: null``) and the session goes on; blank lines are skipped without
an answer. The SDK only logs such a line, so a client would wait for an answer that never comes.

How, with public SDK API only (neither the low-level server that MCPServer keeps private nor any
``mcp.*._private`` module): with no arguments, ``stdio_server()`` serves ``sys.stdin`` and
``sys.stdout``, and serves a sys stream's ``.buffer`` in place when the stream is not backed by fd
0/1. While serving, ``sys.stdin`` and ``sys.stdout`` are stand-ins whose ``.buffer`` is ours:

- the input (``_ScreenedInput``) reads the wire's lines, decoded as the SDK decodes them (UTF-8
  with ``errors="replace"``, universal newlines), and asks ``screen_line`` about each: a message
  is handed on to the SDK, which parses it again; anything else is answered and dropped;
- the output (``_WholeLines``) is the one writer of the wire: the SDK's frames and our answers go
  through it under one lock, and it only ever writes whole lines, so an answer never lands inside
  a frame (frames can be megabytes; a pipe write is atomic only up to PIPE_BUF).

Limits, on purpose:

- Every line is decoded and parsed twice, here and by the SDK: no public hook sees the SDK's read
  side (the dispatcher's ``on_stream_exception`` is set only through the low-level server). Ours
  is the cheap way (``screen_line``: 2-16 ms on a 13.3 MB line, a 10 MB data-URI reference, where
  the SDK's own parse takes 24-34 ms); such a ``tools/call`` takes 16-18 ms longer to answer than
  on the SDK alone, a ``ping`` 0.05-0.2 ms (docs/benchmarks.md, "stdio transport").
- At EOF on stdin the SDK ends the session and cancels requests still running (our own earlier
  transport gave them half a second): hosts keep stdin open while they wait for answers. A last
  line without a newline is only complete at EOF, so it may go unanswered.
- An answer waits for the frame being written: while a host reads none of a large answer, the
  reading thread waits too (the SDK's reader does not, so the host's writes may block sooner).
- The claim of fd 0/1 (fd 0 at the null device and fd 1 at stderr while serving, so that stray
  reads see EOF and stray writes by C code or children miss the wire) is our own few lines: the
  SDK claims only streams it serves itself. POSIX only: on Windows the descriptors are served in
  place and only Python-level prints are kept off the wire (``sys.stdout`` is the stand-in). A
  stray ``sys.stdout.buffer.write`` by code in this process reaches the wire, as it does with the
  SDK when it serves a buffer in place.
- A worker thread may still be blocked reading the wire when the session ends: the private
  duplicate of fd 0 is never closed, so its number is never recycled under it (as in the SDK).
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, TextIO

import mcp_types as types
import pydantic
import pydantic_core

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from typing_extensions import Buffer

__all__ = ["ScreenedLine", "screen_line", "serve_stdio"]

log = logging.getLogger(__name__)

# A line of JSON's own whitespace only (RFC 8259 §2). Not str.isspace(): Unicode spaces (U+00A0,
# U+2028) are not JSON and deserve a parse error.
_BLANK = re.compile(r"[ \t\r\n]*")
_READ_BUFFER = 256 * 1024


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve ``server`` over this process's stdin/stdout with the SDK's transport until EOF."""
    with _serving_stdio():
        await server.run_stdio_async()


class ScreenedLine(NamedTuple):
    """What to do with one line read from the wire."""

    forward: bool  # hand it to the SDK
    reply: types.JSONRPCError | None = None  # or answer it with this error (never both)


def screen_line(line: str) -> ScreenedLine:
    """Hand a JSON-RPC message on; answer anything else but a blank line, which is dropped.

    The verdict is the SDK's: a line is a message when its adapter
    (``mcp_types.jsonrpc_message_adapter``) accepts it. The usual case is checked the cheap way,
    ``pydantic_core.from_json`` then ``validate_python`` (2-16 ms on a 13.3 MB line, where
    ``validate_json``, the SDK's own call, takes 24-34 ms: docs/benchmarks.md), and a refusal is
    confirmed with ``validate_json`` itself, so a line the SDK would accept is never answered with
    an error. ``tests/transport/test_stdio.py`` holds the two ways to the same verdicts.
    """
    if _BLANK.fullmatch(line):  # fullmatch stops at the first other character: O(1) for a message
        return ScreenedLine(forward=False)
    try:
        types.jsonrpc_message_adapter.validate_python(pydantic_core.from_json(line), by_name=False)
    except ValueError:  # pydantic's ValidationError, or from_json's error for text that is not JSON
        try:
            types.jsonrpc_message_adapter.validate_json(line, by_name=False)
        except pydantic.ValidationError as exc:
            return ScreenedLine(forward=False, reply=unreadable_line_reply(exc))
    return ScreenedLine(forward=True)


def unreadable_line_reply(exc: pydantic.ValidationError) -> types.JSONRPCError:
    """The error to answer for a line ``jsonrpc_message_adapter.validate_json`` refused with ``exc``.

    The id is always null: JSON-RPC 2.0 §5.1 allows it when the id cannot be detected, and
    echoing an id read from a malformed message could make the client take this error for the
    answer to a request of its own.
    """
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
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


def _frame(message: types.JSONRPCError) -> bytes:
    # As the SDK writes its own frames.
    return (message.model_dump_json(by_alias=True, exclude_unset=True) + "\n").encode("utf-8")


class _WholeLines(io.BufferedIOBase):
    """``sys.stdout.buffer`` while serving: the wire, written whole lines at a time by one writer.

    Bytes up to the last newline of a write go out at once; a tail without a newline waits for
    the rest of its line in memory, never on the wire. So whoever holds the lock finds the wire
    between two frames, and :meth:`write_line` can put an answer there.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._lock = threading.Lock()
        self._tail = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer, /) -> int:
        view = memoryview(data).cast("B")
        with self._lock:
            if not self._tail and view.nbytes and view[-1] == 0x0A:  # ends with a newline
                self._write_all(view)  # the usual case: the SDK writes one whole frame per call
                return len(view)
            self._tail += view
            end = self._tail.rfind(b"\n")
            if end >= 0:
                whole = bytes(self._tail[: end + 1])
                del self._tail[: end + 1]
                self._write_all(whole)
        return len(view)

    def write_line(self, line: bytes) -> None:
        """Write one whole line between frames (from the reading thread)."""
        with self._lock:
            self._write_all(line)

    def _write_all(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


class _ScreenedInput(io.BufferedIOBase):
    """``sys.stdin.buffer`` while serving: the wire's JSON-RPC lines; any other line is answered.

    Read by the SDK's text wrapper (``read1``) in its reader thread, one caller at a time. Each
    line is checked when the SDK asks for bytes past the previous one, so an answer goes out in
    the order the lines came.
    """

    def __init__(self, wire: TextIO, answer: Callable[[bytes], None]) -> None:
        super().__init__()
        self._wire = wire
        self._answer = answer
        self._line = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1, /) -> bytes:
        while self._pos >= len(self._line):
            line = self._wire.readline()
            if not line:
                return b""  # EOF: the SDK's reader ends, and the session with it
            self._line, self._pos = self._screen(line), 0
        end = len(self._line) if size is None or size < 0 else self._pos + size
        chunk = self._line[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def read(self, size: int | None = -1, /) -> bytes:
        if size is not None and size >= 0:
            return self.read1(size)
        parts = []
        while chunk := self.read1(-1):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: Buffer, /) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self.read1(len(view))
        view[: len(chunk)] = chunk
        return len(chunk)

    def _screen(self, line: str) -> bytes:
        """The line's bytes for the SDK, or ``b""`` when it is not handed on."""
        verdict = screen_line(line)
        if verdict.reply is not None:
            log.debug("answered an unreadable stdio line with JSON-RPC error %d", verdict.reply.error.code)
            try:
                self._answer(_frame(verdict.reply))
            except OSError:  # the host is gone: EOF on stdin follows
                log.debug("could not answer an unreadable stdio line", exc_info=True)
        return line.encode("utf-8") if verdict.forward else b""


class _StdinStandIn(io.TextIOBase):
    """``sys.stdin`` while serving: EOF for anyone else; ``.buffer`` is the wire, for the SDK."""

    def __init__(self, wire: _ScreenedInput) -> None:
        super().__init__()
        self._wire_input = wire

    @property
    def buffer(self) -> BinaryIO:
        return self._wire_input  # type: ignore[return-value]

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def readable(self) -> bool:
        return True

    def read(self, _size: int | None = -1, /) -> str:
        return ""

    def readline(self, _size: int | None = -1, /) -> str:  # type: ignore[override]
        return ""


class _StdoutStandIn(io.TextIOBase):
    """``sys.stdout`` while serving: text goes to stderr; ``.buffer`` is the wire, for the SDK."""

    def __init__(self, wire: _WholeLines, stderr: TextIO) -> None:
        super().__init__()
        self._wire_output = wire
        self._stderr = stderr

    @property
    def buffer(self) -> BinaryIO:
        return self._wire_output  # type: ignore[return-value]

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stderr.encoding

    def writable(self) -> bool:
        return True

    def write(self, text: str, /) -> int:
        return self._stderr.write(text)

    def flush(self) -> None:
        self._stderr.flush()

    def fileno(self) -> int:
        return self._stderr.fileno()


# fds this process has claimed; a second concurrent claim would tear frames.
_claimed: set[int] = set()
_claimed_lock = threading.Lock()


def _claim_fd(fd: int, open_diversion: Callable[[], int]) -> tuple[int, Callable[[], None]]:
    """Serve the wire from a private duplicate of ``fd`` and point ``fd`` itself elsewhere.

    Best-effort, as the SDK's claim: when the descriptor cannot be duplicated or diverted (or on
    Windows, where the Win32 standard handles would need repointing too), the wire is served from
    ``fd`` in place. Returns the descriptor to serve and the function that puts ``fd`` back.
    Raises RuntimeError when ``fd`` is already claimed in this process.
    """
    with _claimed_lock:
        if fd in _claimed:
            raise RuntimeError(f"another stdio server in this process has already claimed fd {fd}")
        _claimed.add(fd)

    def release() -> None:
        with _claimed_lock:
            _claimed.discard(fd)

    if sys.platform == "win32":
        return fd, release
    try:
        # Above the standard range (never 0-2) and close-on-exec (children never see it).
        private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    except OSError:
        return fd, release
    try:
        diversion = open_diversion()
    except OSError:
        return private, release
    try:
        os.dup2(diversion, fd)
    except OSError:
        return private, release
    finally:
        os.close(diversion)

    def restore() -> None:
        try:
            os.dup2(private, fd)
        except OSError:  # pragma: no cover - fd stays diverted; the claim is kept so none reuse it
            return
        # ``private`` stays open: a worker thread may still be blocked on it (see the docstring).
        release()

    return private, restore


def _open_stdin_diversion() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _open_stdout_diversion() -> int:
    try:
        return os.dup(2)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


@contextmanager
def _serving_stdio() -> Iterator[None]:
    """Claim fd 0/1 and put the stand-ins in ``sys.stdin``/``sys.stdout``; undo both on exit."""
    saved_stdin, saved_stdout = sys.stdin, sys.stdout
    restores: list[Callable[[], None]] = []
    try:
        in_fd, restore_stdin = _claim_fd(0, _open_stdin_diversion)
        restores.append(restore_stdin)
        out_fd, restore_stdout = _claim_fd(1, _open_stdout_diversion)
        restores.append(restore_stdout)
        if saved_stdout is not None:
            saved_stdout.flush()  # anything printed before now goes where fd 1 points: stderr
        # closefd=False: the wire's descriptor is never closed under a reader thread.
        wire = open(in_fd, encoding="utf-8", errors="replace", buffering=_READ_BUFFER, closefd=False)
        output = _WholeLines(out_fd)
        sys.stdin = _StdinStandIn(_ScreenedInput(wire, output.write_line))
        sys.stdout = _StdoutStandIn(output, sys.stderr)
        yield
    finally:
        sys.stdin, sys.stdout = saved_stdin, saved_stdout
        for restore in reversed(restores):
            restore()
