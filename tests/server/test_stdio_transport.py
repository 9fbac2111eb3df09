"""Our stdio transport (non-blocking pipes on the event loop), through real subprocesses.

The SDK's stdio client talks to a one-tool server run on ``rivya_mcp.transport._stdio`` for the
large and unicode messages; raw pipes check what the SDK client can't send (an invalid line, a
final line without newline, EOF); ``rivya-mcp serve`` itself is checked for the fast path and for
the fallback to the SDK transport when stdout is a regular file.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.message import SessionMessage
from mcp.types import JSONRPCRequest, JSONRPCResponse

from rivya_mcp.server import _stdio
from rivya_mcp.transport import _LineSplitter

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ECHO_SERVER = textwrap.dedent(
    """
    import sys

    import anyio
    from mcp.server import MCPServer

    from rivya_mcp.server import _stdio

    server = MCPServer("echo")


    @server.tool()
    def echo(text: str) -> str:
        return text


    @server.tool()
    def length(text: str) -> int:
        return len(text)


    async def main() -> None:
        print("fast path:", _stdio._pipes_usable(), file=sys.stderr, flush=True)
        lowlevel = server._lowlevel_server
        async with _stdio.stdio_server() as (read_stream, write_stream):
            print("stray print goes to stderr", flush=True)  # fd 1 is claimed: must not reach the wire
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


    anyio.run(main)
    """
)

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


@pytest.fixture
def echo_server(tmp_path: Path) -> Path:
    script = tmp_path / "echo_server.py"
    script.write_text(ECHO_SERVER, encoding="utf-8")
    return script


def _serve_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update(
        {
            "RIVYA_API_KEY": "rk_test_not_used",
            "RIVYA_BASE_URL": "http://127.0.0.1:9",
            "RIVYA_OUTPUT_DIR": str(tmp_path / "out"),
            "RIVYA_DATA_DIR": str(tmp_path / "data"),
            "RIVYA_LOG_LEVEL": "DEBUG",
        }
    )
    return env


def _run_raw(
    args: list[str], payload: bytes, *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *args], input=payload, capture_output=True, env=env, timeout=60, check=False)


def _replies(stdout: bytes) -> dict[object, dict[str, object]]:
    lines = stdout.decode("utf-8").split("\n")
    assert lines[-1] == "", "every frame ends with a newline"
    replies = [json.loads(line) for line in lines[:-1]]
    return {reply.get("id"): reply for reply in replies}


async def test_large_and_unicode_messages_round_trip_through_the_sdk_client(echo_server: Path) -> None:
    big = "x" * (1024 * 1024 + 17)
    text = 'héllo wörld — 漢字 🎨 \u2028 line\r\nbreaks\ttabs \\ " quotes'
    async with Client(StdioServerParameters(command=sys.executable, args=[str(echo_server)])) as client:
        result = await client.call_tool("echo", {"text": big + text})
        assert not result.is_error
        assert (result.structured_content or {})["result"] == big + text
        result = await client.call_tool("length", {"text": text})
        assert (result.structured_content or {})["result"] == len(text)
        for _ in range(20):  # many round trips on one pipe: nothing is lost or reordered
            result = await client.call_tool("echo", {"text": text})
            assert (result.structured_content or {})["result"] == text


def test_an_invalid_line_does_not_end_the_session_and_eof_ends_it_cleanly(echo_server: Path) -> None:
    payload = (
        (
            json.dumps(INIT)
            + "\n"
            + "this is not json\n"
            + "\xff\n"  # made a lone 0xff byte below: not UTF-8 at all
            + json.dumps(INITIALIZED)
            + "\r\n"  # a CRLF line is one line, as with the SDK's universal newlines
            + json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "tools/call",
                    "params": {"name": "echo", "arguments": {"text": "ünï"}},
                }
            )
            + "\n"
            + json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"})  # last line, no newline, then EOF
        )
        .encode("utf-8")
        .replace("\xff".encode(), b"\xff")
    )
    done = _run_raw([str(echo_server)], payload)
    assert done.returncode == 0, done.stderr.decode()
    replies = _replies(done.stdout)
    assert replies[1]["result"]
    assert replies[2]["result"]["structuredContent"] == {"result": "ünï"}  # type: ignore[index]
    assert replies[3] == {"jsonrpc": "2.0", "id": 3, "result": {}}
    stderr = done.stderr.decode()
    assert "fast path: True" in stderr
    assert "stray print goes to stderr" in stderr
    assert b"stray" not in done.stdout


def test_immediate_eof_exits_cleanly(echo_server: Path) -> None:
    done = _run_raw([str(echo_server)], b"")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


def test_rivya_serve_answers_over_pipes_and_falls_back_where_pipes_are_not_its_own(tmp_path: Path) -> None:
    payload = (
        json.dumps(INIT)
        + "\n"
        + json.dumps(INITIALIZED)
        + "\n"
        + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        + "\n"
    ).encode()
    env = _serve_env(tmp_path)
    over_pipes = _run_raw(["-m", "rivya_mcp", "serve"], payload, env=env)
    assert over_pipes.returncode == 0, over_pipes.stderr.decode()
    piped = _replies(over_pipes.stdout)
    assert {t["name"] for t in piped[2]["result"]["tools"]} >= {"generate_image", "get_task"}  # type: ignore[index]

    # stderr sharing stdout's pipe: no non-blocking pipes (O_NONBLOCK would reach our logs), so the
    # SDK's transport serves; a regular file for stdout is refused the same way (the probe below).
    # stdin stays open until the answers are in (at EOF the SDK cancels requests still in flight).
    process = subprocess.Popen(
        [sys.executable, "-m", "rivya_mcp", "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.flush()
        shared = {frame.get("id"): frame for frame in _frames_until(process, 2)}
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert shared[2]["result"] == piped[2]["result"]
    out = tmp_path / "out.jsonl"
    probe = "import sys; from rivya_mcp.transport._stdio import _pipes_usable; print(_pipes_usable(), file=sys.stderr)"
    with out.open("wb") as stdout:
        checked = subprocess.run(
            [sys.executable, "-c", probe], stdin=subprocess.PIPE, stdout=stdout, capture_output=False,
            stderr=subprocess.PIPE, timeout=60, check=True,
        )  # fmt: skip
    assert checked.stderr.strip() == b"False"


@pytest.mark.parametrize(
    "chunks",
    [
        [b'{"a": 1}\n{"b": 2}\n'],
        [b'{"a"', b": 1}\r", b'\n{"b": 2}\r{"c": 3}'],
        [b"caf\xc3", b"\xa9\n\xff\xfe\n", b"", b"tail"],
        [b"\n\n", b"\r\r\n"],
        [b"x" * 300_000, b"y" * 300_000 + b"\nz"],
    ],
)
def test_lines_split_exactly_as_the_sdk_text_wrapper_splits_them(chunks: list[bytes]) -> None:
    splitter = _LineSplitter()
    ours = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.feed(b"", final=True)
    wrapper = io.TextIOWrapper(io.BytesIO(b"".join(chunks)), encoding="utf-8", errors="replace")
    assert ours == list(wrapper)


# --- the streams themselves, on a pipe of this process --------------------------------------


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    return read_fd, write_fd


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def _until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (a hang is ended by the per-test timeout)."""
    while not condition():
        await anyio.sleep(0)


def _request(request_id: int, text: str) -> SessionMessage:
    return SessionMessage(
        JSONRPCRequest(
            jsonrpc="2.0", id=request_id, method="tools/call", params={"name": "echo", "arguments": {"text": text}}
        )
    )


def _response(request_id: int, text: str) -> SessionMessage:
    return SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=request_id, result={"text": text}))


async def test_read_stream_parses_each_line_and_reports_bad_ones_then_ends_at_eof() -> None:
    read_fd, write_fd = _pipe()
    stream = _stdio._PipeReadStream(read_fd, _stdio._Unanswered())
    try:
        # Several messages in one write (a pipelining host), one split across writes, a bad line.
        os.write(write_fd, b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n{"jsonrpc":"2.0","method":"notif')
        first = await stream.receive()
        assert isinstance(first, SessionMessage) and first.message.id == 1  # type: ignore[union-attr]
        os.write(write_fd, b'ications/initialized"}\nnot json\n')
        second = await stream.receive()
        assert isinstance(second, SessionMessage) and second.message.method == "notifications/initialized"  # type: ignore[union-attr]
        assert isinstance(await stream.receive(), Exception)
        os.close(write_fd)
        with pytest.raises(anyio.EndOfStream):
            await stream.receive()
    finally:
        os.close(read_fd)


async def test_eof_gives_requests_already_read_a_grace_to_be_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    # A grace no test could outwait: the stream must end when the answer is written, not at the
    # end of the grace (that would hang into the per-test timeout), and not before the answer.
    monkeypatch.setattr(_stdio, "EOF_GRACE_SECONDS", 3600.0)
    read_fd, write_fd = _pipe()
    out_read, out_write = _pipe()
    unanswered = _stdio._Unanswered()
    reader = _stdio._PipeReadStream(read_fd, unanswered)
    writer = _stdio._PipeWriteStream(out_write, unanswered)
    try:
        os.write(write_fd, b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n')
        os.close(write_fd)
        assert isinstance(await reader.receive(), SessionMessage)
        order: list[str] = []

        async def answer_later() -> None:
            for _ in range(10):  # the reader reaches EOF and settles down to wait first
                await anyio.sleep(0)
            order.append("answered")
            await writer.send(_response(7, "pong"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_later)
            with pytest.raises(anyio.EndOfStream):
                await reader.receive()  # held open until the answer is written
            order.append("ended")
        assert order == ["answered", "ended"]
        assert _drain(out_read).count(b"\n") == 1
    finally:
        for fd in (read_fd, out_read, out_write):
            os.close(fd)


async def test_a_message_larger_than_the_pipe_is_written_whole_and_later_ones_wait_behind_it() -> None:
    read_fd, write_fd = _pipe()
    writer = _stdio._PipeWriteStream(write_fd, _stdio._Unanswered())
    big = "x" * (1 << 20)  # far more than a pipe holds: the rest is queued
    try:
        async with anyio.create_task_group() as tg:
            sent: list[int] = []

            async def send(request_id: int, text: str) -> None:
                await writer.send(_response(request_id, text))
                sent.append(request_id)

            tg.start_soon(send, 1, big)
            await _until(lambda: len(writer._queue) == 1)  # the pipe took what it could; the rest waits
            received = bytearray(os.read(read_fd, 4096))  # room in the pipe, 1 still unfinished
            tg.start_soon(send, 2, "small")  # must not go into that room: it waits behind 1
            with anyio.CancelScope() as scope:
                scope.cancel()
                # A cancelled sender writes nothing (and raises), as a memory stream's send does.
                await writer.send(_response(3, "never"))
            await _until(lambda: len(writer._queue) == 2)  # 2 queued behind 1, not written into the room
            assert sent == []
            tg.start_soon(writer.flush_queue)
            while received.count(b"\n") < 2:
                await anyio.wait_readable(read_fd)
                received += _drain(read_fd)
            writer.close()
        assert sent == [1, 2]
        lines = bytes(received).split(b"\n")
        assert [json.loads(line)["id"] for line in lines[:-1]] == [1, 2]
        assert json.loads(lines[0])["result"]["text"] == big
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_a_queued_message_is_written_whole_even_if_its_sender_is_cancelled() -> None:
    read_fd, write_fd = _pipe()
    writer = _stdio._PipeWriteStream(write_fd, _stdio._Unanswered())
    big = "y" * (1 << 20)
    received = bytearray()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer.flush_queue)
            scope = anyio.CancelScope()

            async def send_big() -> None:
                with scope:
                    await writer.send(_response(1, big))

            tg.start_soon(send_big)
            await _until(lambda: len(writer._queue) == 1)  # its tail is queued: nobody reads the pipe yet
            scope.cancel()  # the sender is cut off while its tail is still queued
            await _until(lambda: scope.cancelled_caught)
            tg.start_soon(writer.send, _response(2, "after"))  # queued behind the rest of 1, not mixed into it
            while received.count(b"\n") < 2:
                await anyio.wait_readable(read_fd)
                received += _drain(read_fd)
            writer.close()
        lines = bytes(received).split(b"\n")
        assert [json.loads(line)["id"] for line in lines[:-1]] == [1, 2]
    finally:
        os.close(read_fd)
        os.close(write_fd)


async def test_a_closed_pipe_breaks_the_write_stream() -> None:
    read_fd, write_fd = _pipe()
    os.close(read_fd)  # the host is gone
    writer = _stdio._PipeWriteStream(write_fd, _stdio._Unanswered())
    try:
        with pytest.raises(anyio.BrokenResourceError):
            await writer.send(_response(1, "lost"))
        with pytest.raises(BrokenPipeError):
            await writer.flush_queue()  # the transport ends with the error, as the SDK's does
        await writer.aclose()
        with pytest.raises(anyio.ClosedResourceError):
            await writer.send(_response(2, "closed"))
    finally:
        os.close(write_fd)


async def test_closing_the_streams_in_a_cancelled_scope_does_not_raise() -> None:
    read_fd, write_fd = _pipe()
    unanswered = _stdio._Unanswered()
    reader, writer = _stdio._PipeReadStream(read_fd, unanswered), _stdio._PipeWriteStream(write_fd, unanswered)
    try:
        with anyio.CancelScope() as scope:
            scope.cancel()
            # Cleanup code closes its streams while cancelled; it must get to the end of it.
            await reader.aclose()
            await writer.aclose()
            closed = True
        assert closed
        with pytest.raises(anyio.ClosedResourceError):
            await reader.receive()
    finally:
        os.close(read_fd)
        os.close(write_fd)


# --- lines that are not JSON-RPC messages get an answer (JSON-RPC 2.0 §5.1) -----------------


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("this is not json\n", -32700),
        ("\ufffd\n", -32700),  # undecodable bytes, replaced as the SDK's text wrapper does
        ('{"jsonrpc": "2.0", "id": 5, "method": \n', -32700),  # cut short
        ('{"a": 1}\n', -32600),
        ("[1, 2]\n", -32600),
        ('{"jsonrpc": "2.0", "id": 5, "method": 3}\n', -32600),  # the id is not echoed: see the docstring
        ('{"jsonrpc": "2.0", "id": 9, "result": "x", "error": {}}\n', -32600),
        ("\n", None),
        ("  \r\n", None),
    ],
)
def test_unreadable_line_reply(line: str, code: int | None) -> None:
    from mcp_types import jsonrpc_message_adapter

    with pytest.raises(Exception) as caught:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
    reply = _stdio.unreadable_line_reply(caught.value)
    if code is None:
        assert reply is None
    else:
        assert reply is not None and reply.id is None and reply.error.code == code
        assert "not json" not in reply.error.message  # the line itself is never echoed
    assert _stdio.unreadable_line_reply(RuntimeError("not a parse failure")) is None


def _frames_until(process: subprocess.Popen[bytes], wanted_id: int) -> list[dict[str, object]]:
    """Protocol frames read from the server's stdout up to the reply with ``wanted_id``.

    Blocking reads, no sleeps: the suite's per-test timeout ends a server that never answers.
    Lines that are not JSON-RPC frames (log lines, when stderr shares the pipe) are skipped.
    """
    assert process.stdout is not None
    frames: list[dict[str, object]] = []
    while True:
        line = process.stdout.readline()
        assert line, f"the server closed stdout before answering {wanted_id}: {frames}"
        if not line.startswith(b'{"jsonrpc"'):
            continue
        frames.append(json.loads(line))
        if frames[-1].get("id") == wanted_id:
            return frames


@pytest.mark.parametrize("path", ["pipes", "sdk transport"])
def test_rivya_serve_answers_an_unparsable_line_with_a_parse_error_and_keeps_serving(tmp_path: Path, path: str) -> None:
    payload = (
        json.dumps(INIT) + "\n"
        + "garbage {\n"
        + '{"not": "a message"}\n'
        + "\n"
        + json.dumps(INITIALIZED) + "\n"
        + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}) + "\n"
    ).encode()  # fmt: skip
    # stderr on stdout's pipe: O_NONBLOCK would reach our logs too, so the SDK's transport serves.
    stderr = subprocess.STDOUT if path == "sdk transport" else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "rivya_mcp", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=_serve_env(tmp_path),
    )  # fmt: skip
    try:
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.flush()
        frames = _frames_until(process, 2)
        process.stdin.close()
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    # Requests are handled concurrently: the initialize result may come before or after the errors.
    assert any(f["id"] == 1 and "result" in f for f in frames)
    errors = [f for f in frames if "error" in f]
    assert [(e["id"], e["error"]["code"]) for e in errors] == [(None, -32700), (None, -32600)]  # type: ignore[index]
    assert {t["name"] for t in frames[-1]["result"]["tools"]} >= {"generate_image", "get_task"}  # type: ignore[index]
    assert len(frames) == 4  # the blank line got no answer


# --- the claim of fd 0/1 is our own code, not the SDK's private helpers ------------------------

CLAIM_SCRIPT = textwrap.dedent(
    """
    import os
    import sys

    import anyio

    from rivya_mcp.server import _stdio


    async def main() -> None:
        assert _stdio._pipes_usable()
        async with _stdio.stdio_server() as (read_stream, write_stream):
            print("stray print while serving", flush=True)
            os.write(1, b"stray write to fd 1 while serving\\n")
            assert os.read(0, 100) == b"", "fd 0 is the null device while serving"
            try:
                _stdio._claim_fd(0, _stdio._open_stdin_diversion)
                raise AssertionError("a second claim must be refused")
            except RuntimeError as exc:
                print("second claim:", exc, file=sys.stderr, flush=True)
            async for _ in read_stream:  # the wire: one line, then EOF
                pass
        print("restored", flush=True)
        print("blocking:", os.get_blocking(0), os.get_blocking(1), file=sys.stderr, flush=True)
        print("echo after:", sys.stdin.buffer.read(), file=sys.stderr, flush=True)


    anyio.run(main)
    """
)


def test_fd_0_and_1_are_diverted_while_serving_and_restored_after(tmp_path: Path) -> None:
    script = tmp_path / "claim.py"
    script.write_text(CLAIM_SCRIPT, encoding="utf-8")
    done = _run_raw([str(script)], b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    assert done.stdout == b"restored\n"  # nothing stray reached the wire, and fd 1 is the wire again
    assert "stray print while serving" in stderr and "stray write to fd 1 while serving" in stderr
    assert "second claim: another stdio_server() in this process has already claimed fd 0" in stderr
    assert "blocking: True True" in stderr
    assert "echo after: b''" in stderr  # fd 0 is the (drained) pipe again, not the null device


def test_no_private_name_of_the_sdk_is_imported() -> None:
    import ast

    import rivya_mcp

    offenders = []
    for source in Path(rivya_mcp.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("mcp", "mcp_types"):
                names = [(node.module or "").split("."), [alias.name for alias in node.names]]
                if any(part.startswith("_") for group in names for part in group):
                    offenders.append(f"{source.name}:{node.lineno}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] in ("mcp", "mcp_types") and any(p.startswith("_") for p in parts):
                        offenders.append(f"{source.name}:{node.lineno}")
    assert offenders == []


SDK_WITHOUT_LOWLEVEL = textwrap.dedent(
    """
    # An SDK release that no longer has MCPServer._lowlevel_server (simulated at the SDK edge).
    from typing import Any

    import rivya_mcp.transport._http as transports
    from rivya_mcp.cli import main

    real_build_server = transports.build_server


    class WithoutLowlevel:
        def __init__(self, server: Any) -> None:
            self._server = server

        def __getattr__(self, name: str) -> Any:
            if name == "_lowlevel_server":
                raise AttributeError(name)
            return getattr(self._server, name)


    transports.build_server = lambda settings, **kw: WithoutLowlevel(real_build_server(settings, **kw))
    raise SystemExit(main(["serve"]))
    """
)


def test_rivya_serve_still_starts_on_an_sdk_without_the_lowlevel_server(tmp_path: Path) -> None:
    script = tmp_path / "serve_without_lowlevel.py"
    script.write_text(SDK_WITHOUT_LOWLEVEL, encoding="utf-8")
    payload = (
        json.dumps(INIT) + "\n"
        + json.dumps(INITIALIZED) + "\n"
        + json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}) + "\n"
    ).encode()  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_serve_env(tmp_path),
    )  # fmt: skip
    try:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(payload)
        process.stdin.flush()
        frames = {frame.get("id"): frame for frame in _frames_until(process, 2)}
        process.stdin.close()
        assert process.wait(timeout=30) == 0
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert {t["name"] for t in frames[2]["result"]["tools"]} >= {"generate_image", "get_task"}  # type: ignore[index]
    assert "this mcp release has no _lowlevel_server; using the SDK's stdio transport" in stderr
