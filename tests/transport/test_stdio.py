"""stdio: the SDK's transport behind ``serve_stdio``, through real subprocesses and real pipes.

The SDK's stdio client talks to a small server run with ``rivya_mcp.transport.serve_stdio`` for
large and unicode messages; raw pipes send what the SDK client can't (lines that are not JSON-RPC
messages, invalid UTF-8, a 13 MB line, EOF) and read the frames byte for byte; ``rivya-mcp serve``
itself is checked through the real CLI. The screening's verdicts are a table (``screen_line``),
held to the SDK's own adapter.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pydantic
import pytest
from mcp import Client, StdioServerParameters
from mcp_types import jsonrpc_message_adapter

from rivya_mcp.transport import MAX_REQUEST_BODY_BYTES, screen_line

pytestmark = [pytest.mark.anyio]

ECHO_SERVER = textwrap.dedent(
    """
    import os
    import sys

    import anyio
    from mcp.server import MCPServer

    from rivya_mcp.transport import serve_stdio

    server = MCPServer("echo")


    @server.tool()
    def echo(text: str) -> str:
        return text


    @server.tool()
    def length(text: str) -> int:
        return len(text)


    @server.tool()
    async def stray() -> str:
        # What a careless handler, library or child could do while the session runs.
        print("stray print while serving", flush=True)
        os.write(1, b"stray write to fd 1 while serving\\n")
        read = os.read(0, 100)
        try:
            await serve_stdio(server)
            second = "a second serve_stdio was let in"
        except RuntimeError as exc:
            second = str(exc)
        return f"fd 0 gave {read!r}; {second}"


    print("before serving", flush=True)  # a print before serving still reaches stdout
    anyio.run(serve_stdio, server)
    print("restored", flush=True)  # fd 1 is the wire again
    print("blocking:", os.get_blocking(0), os.get_blocking(1), file=sys.stderr, flush=True)
    print("stdin after:", sys.stdin.buffer.read(), file=sys.stderr, flush=True)
    """
)

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def _line(message: dict[str, object]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def _call(request_id: int, tool: str, arguments: dict[str, object]) -> bytes:
    return _line(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}
    )


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


class Session:
    """A server process on raw pipes: write lines, read frames (blocking reads, no sleeps)."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.frames: list[dict[str, object]] = []
        self.stdout_lines: list[bytes] = []

    def send(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def read(self, size: int) -> bytes:
        assert self.process.stdout is not None
        return self.process.stdout.read(size)

    def frames_until(self, wanted_id: int) -> dict[object, dict[str, object]]:
        """Frames read up to the answer with ``wanted_id``, by id (the per-test timeout ends a hang)."""
        assert self.process.stdout is not None
        while not self.frames or self.frames[-1].get("id") != wanted_id:
            line = self.process.stdout.readline()
            assert line, f"the server closed stdout before answering {wanted_id}: {self.frames}"
            assert line.endswith(b"\n")
            self.frames.append(json.loads(line))  # every line on stdout is a whole JSON-RPC frame
        return {frame.get("id"): frame for frame in self.frames}

    def finish(self) -> tuple[int, bytes, str]:
        """Close stdin (EOF ends the session): the exit code, the rest of stdout, stderr."""
        out, err = self.process.communicate(timeout=60)
        return self.process.returncode, out, err.decode()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def _session(args: list[str], env: dict[str, str] | None = None) -> Session:
    return Session(args, env)


def _echo_session(script: Path) -> Session:
    session = Session([str(script)])
    assert session.process.stdout is not None
    assert session.process.stdout.readline() == b"before serving\n"  # printed before serve_stdio: the wire
    return session


# --- the screening's verdicts: the SDK's adapter decides what a message is --------------------

MESSAGE = '{"jsonrpc": "2.0", "id": 5, "method": "ping"}'
DEEP = "[" * 300 + "]" * 300  # deeper than the JSON parser's recursion limit


@pytest.mark.parametrize(
    ("line", "forward", "code"),
    [
        (MESSAGE + "\n", True, None),
        (MESSAGE, True, None),  # a last line without newline
        (MESSAGE + "\r\n", True, None),
        ('{"jsonrpc": "2.0", "method": "notifications/initialized"}\n', True, None),
        ('{"jsonrpc": "2.0", "id": 1, "result": {}}\n', True, None),  # a client's answer to our request
        ('{"jsonrpc": "2.0", "id": 1, "error": {"code": -1, "message": "no"}}\n', True, None),
        ('{"jsonrpc": "2.0", "id": "x", "method": "ping", "params": {"a": NaN}}\n', True, None),
        ("this is not json\n", False, -32700),
        ("\ufffd\n", False, -32700),  # undecodable bytes, replaced as the SDK's text wrapper does
        ('{"jsonrpc": "2.0", "id": 5, "method": \n', False, -32700),  # cut short
        (MESSAGE + " trailing\n", False, -32700),
        ("\ufeff" + MESSAGE + "\n", False, -32700),  # a byte-order mark is not JSON
        ("\u00a0\n", False, -32700),  # a Unicode space is not JSON whitespace: not a blank line
        ('{"jsonrpc": "2.0", "id": "x", "method": "ping", "params": {"a": "\\ud800"}}\n', False, -32700),
        ('{"jsonrpc": "2.0", "id": "x", "method": "ping", "params": {"a": ' + DEEP + "}}\n", False, -32700),
        ('{"a": 1}\n', False, -32600),
        ("[1, 2]\n", False, -32600),
        (f"[{MESSAGE}]\n", False, -32600),  # a batch: not in MCP
        ('"ping"\n', False, -32600),
        ("null\n", False, -32600),
        ('{"jsonrpc": "2.0", "id": 5, "method": 3}\n', False, -32600),  # the id is not echoed: see screen_line
        ('{"jsonrpc": 2.0, "id": 5, "method": "ping"}\n', False, -32600),
        ('{"jsonrpc": "2.0", "id": 5, "method": "ping", "params": []}\n', False, -32600),
        ('{"jsonrpc": "2.0", "id": 9, "result": null}\n', False, -32600),
        ("\n", False, None),  # blank lines: nothing sent, nothing answered
        ("  \r\n", False, None),
        ("\t", False, None),
    ],
)
def test_screen_line(line: str, forward: bool, code: int | None) -> None:
    verdict = screen_line(line)
    assert verdict.forward is forward
    if code is None:
        assert verdict.reply is None
    else:
        assert verdict.reply is not None and verdict.reply.id is None and verdict.reply.error.code == code
        assert "not json" not in verdict.reply.error.message  # the line itself is never echoed
    # The verdict is the SDK's own: what it accepts is handed on, what it refuses is not.
    try:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
        sdk_accepts = True
    except pydantic.ValidationError:
        sdk_accepts = False
    assert verdict.forward is sdk_accepts


# --- through real pipes ------------------------------------------------------------------------


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


def test_the_biggest_message_accepted_is_read_whole(echo_server: Path) -> None:
    # A 10 MB reference as a data URI: the largest tools/call an HTTP transport takes, sent as one line.
    uri = "data:image/png;base64," + base64.b64encode(random.Random(0).randbytes(10_000_000)).decode()
    line = _call(2, "length", {"text": uri})
    assert 13_000_000 < len(line) < MAX_REQUEST_BODY_BYTES
    session = _echo_session(echo_server)
    try:
        session.send(_line(INIT) + _line(INITIALIZED) + line)
        frames = session.frames_until(2)
        assert frames[2]["result"]["structuredContent"] == {"result": len(uri)}  # type: ignore[index]
        code, _, stderr = session.finish()
    finally:
        session.kill()
    assert code == 0, stderr


def test_lines_that_are_not_messages_are_answered_and_the_session_goes_on(echo_server: Path) -> None:
    payload = (
        _line(INIT)
        + b"this is not json\n"
        + b"\xff\xfe\n"  # not UTF-8 at all
        + b'{"not": "a message"}\n'
        + b"\n  \r\n"  # blank lines: no answer
        + json.dumps(INITIALIZED).encode()
        + b"\r\n"  # a CRLF line is one line, as with the SDK's universal newlines
        + _call(2, "echo", {"text": "ünï"})
        + b'{"jsonrpc": "2.0", "id": 3, "method": "ping"}\r'  # a lone CR ends a line too
        + b'{"jsonrpc": "2.0", "id": 4, "method": "ping"}\n'
    )
    session = _echo_session(echo_server)
    try:
        session.send(payload)
        session.frames_until(4)
        session.send(_call(5, "echo", {"text": "still here"}))
        frames = session.frames_until(5)
        code, rest, stderr = session.finish()
    finally:
        session.kill()
    assert code == 0, stderr
    assert rest.startswith(b"restored\n")
    assert frames[1]["result"]
    assert frames[2]["result"]["structuredContent"] == {"result": "ünï"}  # type: ignore[index]
    assert frames[3]["result"] == frames[4]["result"] == {}
    assert frames[5]["result"]["structuredContent"] == {"result": "still here"}  # type: ignore[index]
    errors = [(f["id"], f["error"]["code"]) for f in session.frames if "error" in f]  # type: ignore[index]
    # In the order the lines came; the answers to requests may come before or after them.
    assert errors == [(None, -32700), (None, -32700), (None, -32600)]
    assert len(session.frames) == 8  # the blank lines got no answer


def test_an_answer_never_lands_inside_a_large_frame(echo_server: Path) -> None:
    big = "y" * (4 * 1024 * 1024)  # far more than a pipe holds (64 KiB): its frame is written in parts
    session = _echo_session(echo_server)
    try:
        session.send(_line(INIT) + _line(INITIALIZED))
        session.frames_until(1)
        session.send(_call(2, "echo", {"text": big}))
        head = session.read(1000)  # the big frame has begun; the rest waits until we read on
        assert head.startswith(b'{"jsonrpc":"2.0","id":2,')
        session.send(b"garbage {\n" + _line({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        assert session.process.stdout is not None
        rest = session.process.stdout.readline()
        big_frame = json.loads(head + rest)  # whole: nothing was written into the middle of it
        assert big_frame["result"]["structuredContent"] == {"result": big}
        frames = session.frames_until(3)
        code, _, stderr = session.finish()
    finally:
        session.kill()
    assert code == 0, stderr
    assert frames[None]["error"]["code"] == -32700  # type: ignore[index]


def test_stray_io_misses_the_wire_and_the_descriptors_come_back(echo_server: Path) -> None:
    session = _echo_session(echo_server)
    try:
        session.send(_line(INIT) + _line(INITIALIZED) + _call(2, "stray", {}))
        frames = session.frames_until(2)
        code, rest, stderr = session.finish()
    finally:
        session.kill()
    assert code == 0, stderr
    said = frames[2]["result"]["structuredContent"]["result"]  # type: ignore[index]
    assert said == "fd 0 gave b''; another stdio server in this process has already claimed fd 0"
    assert "stray print while serving" in stderr and "stray write to fd 1 while serving" in stderr
    assert rest == b"restored\n"  # nothing stray reached the wire, and fd 1 is the wire again
    assert "blocking: True True" in stderr
    assert "stdin after: b''" in stderr  # fd 0 is the (drained) pipe again, not the null device


def test_immediate_eof_exits_cleanly(echo_server: Path) -> None:
    done = subprocess.run([sys.executable, str(echo_server)], input=b"", capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"before serving\nrestored\n"


def test_rivya_serve_answers_over_stdio_and_answers_unreadable_lines(tmp_path: Path) -> None:
    session = _session(["-m", "rivya_mcp", "serve"], env=_serve_env(tmp_path))
    try:
        session.send(
            _line(INIT)
            + b"garbage {\n"
            + b'{"not": "a message"}\n'
            + b"\n"
            + _line(INITIALIZED)
            + _line({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        )
        frames = session.frames_until(2)
        code, rest, stderr = session.finish()
    finally:
        session.kill()
    assert code == 0, stderr
    assert rest == b""
    assert "result" in frames[1]
    assert {t["name"] for t in frames[2]["result"]["tools"]} >= {"generate_image", "get_task"}  # type: ignore[index]
    errors = [(f["id"], f["error"]["code"]) for f in session.frames if "error" in f]  # type: ignore[index]
    assert errors == [(None, -32700), (None, -32600)]
    assert len(session.frames) == 4  # the blank line got no answer
