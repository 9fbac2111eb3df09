"""stdio transport: round trips of a bare MCPServer on the SDK's transport vs on ``serve_stdio``.

The same two-tool server (``echo``, ``size``) is run by the same interpreter twice: with
``MCPServer.run_stdio_async()`` (the SDK's ``mcp.server.stdio.stdio_server`` alone) and with
``rivya_mcp.transport.serve_stdio`` (that transport plus our screening of unreadable lines, which
parses every line once more). Each is spoken to with raw newline-delimited JSON-RPC on its pipes;
the clock runs from the first byte of a request written to its answer read and parsed. Per round,
each server gets the same requests and the servers take turns going first (ABBA), so drift on
the machine hits both alike:

- ``ping`` and ``tools/list`` (what the transport costs a small message);
- ``tools/call size`` with a 10 MB data-URI argument, a 13.3 MB line: the biggest message the
  server accepts (``MAX_REQUEST_BODY_BYTES``), a reference sent inline.

``--server LABEL=PATH`` adds another stdio server script to the rounds (it must offer ``size``),
e.g. an older transport to compare against. The time our screening (``screen_line``) takes
on the 13.3 MB line is printed under the table, timed in this process beside the SDK's own parse.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, initialize_params, median, percentile, print_report, table

REFERENCE_BYTES = 10_000_000  # a 10 MB image, the largest reference (see rivya_mcp.transport.MAX_REQUEST_BODY_BYTES)

SERVER = """
import anyio
from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
async def echo(text: str) -> str:
    return text


@server.tool()
async def size(text: str) -> int:
    return len(text)

"""
SDK_MAIN = "anyio.run(server.run_stdio_async)\n"
OURS_MAIN = "from rivya_mcp.transport import serve_stdio\n\nanyio.run(serve_stdio, server)\n"


class Peer:
    """One stdio server process, spoken to with raw JSON-RPC lines."""

    def __init__(self, label: str, command: list[str]) -> None:
        self.label = label
        # stderr to ours: a pipe nobody reads could fill up.
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        self._next_id = 0

    def request(self, method: str, params: dict[str, Any]) -> float:
        """Milliseconds from writing the request to its answer parsed."""
        self._next_id += 1
        head = json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method})[:-1].encode()
        return self.send_raw(head + b', "params": ' + json.dumps(params).encode() + b"}\n", self._next_id)

    def send_raw(self, line: bytes, request_id: int) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        started = time.perf_counter()
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        while True:
            answer = self.proc.stdout.readline()
            if not answer:
                raise RuntimeError(f"{self.label}: stdout closed (exit {self.proc.poll()})")
            message = json.loads(answer)
            if message.get("id") == request_id:
                elapsed = (time.perf_counter() - started) * 1000
                if "error" in message or message.get("result", {}).get("isError"):
                    raise RuntimeError(f"{self.label}: {method_of(line)} failed: {answer[:300]!r}")
                return elapsed

    def call_with_line(self, tail: bytes) -> float:
        """``tools/call`` whose params are ``tail`` (pre-encoded): the big message without re-encoding it."""
        self._next_id += 1
        head = b'{"jsonrpc": "2.0", "id": ' + str(self._next_id).encode() + b', "method": "tools/call", "params": '
        return self.send_raw(head + tail, self._next_id)

    def handshake(self) -> None:
        self.request("initialize", initialize_params("rivya-mcp-bench-stdio"))
        assert self.proc.stdin is not None
        self.proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        self.proc.stdin.flush()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # EOF ends a stdio server
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def method_of(line: bytes) -> str:
    start = line.find(b'"method": "') + len(b'"method": "')
    return line[start : line.find(b'"', start)].decode()


@contextmanager
def peers(servers: dict[str, list[str]]) -> Iterator[list[Peer]]:
    with ExitStack() as stack:
        started = []
        for label, command in servers.items():
            peer = Peer(label, command)
            stack.callback(peer.close)
            peer.handshake()
            started.append(peer)
        yield started


def big_params() -> bytes:
    data = random.Random(0).randbytes(REFERENCE_BYTES)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    return json.dumps({"name": "size", "arguments": {"text": uri}}).encode() + b"}\n"


def screening_cost(line: bytes, times: int = 10) -> tuple[float, float]:
    """Median ms of our screening (``screen_line``) and of the SDK's own parse on ``line``."""
    import mcp_types

    from rivya_mcp.transport import screen_line

    text = line.decode()
    ours, sdk = [], []
    for _ in range(times):
        started = time.perf_counter()
        assert screen_line(text).forward
        ours.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        mcp_types.jsonrpc_message_adapter.validate_json(text, by_name=False)
        sdk.append((time.perf_counter() - started) * 1000)
    return median(ours), median(sdk)


def measure(servers: dict[str, list[str]], rounds: int, big_rounds: int) -> tuple[str, list[str]]:
    tail = big_params()
    kinds = ("ping", "tools/list", "tools/call 13.3 MB")
    samples: dict[tuple[str, str], list[float]] = {(label, kind): [] for label in servers for kind in kinds}
    with peers(servers) as running:
        for peer in running:  # warm-up: first-call imports, caches
            for _ in range(3):
                peer.request("ping", {})
                peer.request("tools/list", {})
            peer.call_with_line(tail)
        for index in range(rounds):
            # ABBA: neither server always goes first.
            order = running if (index % 2 == 0) == (index % 4 < 2) else running[::-1]
            for peer in order:
                samples[(peer.label, "ping")].append(peer.request("ping", {}))
                samples[(peer.label, "tools/list")].append(peer.request("tools/list", {}))
                if index < big_rounds:
                    samples[(peer.label, "tools/call 13.3 MB")].append(peer.call_with_line(tail))
    rows = []
    for kind in kinds:
        for label in servers:
            values = samples[(label, kind)]
            quantiles = [f"{median(values):.2f}", f"{percentile(values, 90):.2f}", f"{min(values):.2f}"]
            rows.append([kind, label, *quantiles, len(values)])
    body = table(["request", "server", "median ms", "p90 ms", "min ms", "n"], rows)
    big_line = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + tail
    ours, sdk = screening_cost(big_line)
    notes = [
        f"The 13.3 MB line is {len(big_line) / 1e6:.2f} MB. Timed on it in this process (median of 10): our "
        f"screening (screen_line) {ours:.1f} ms; the SDK's own parse (validate_json) {sdk:.1f} ms.",
    ]
    return body, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds of ping and tools/list (default 200)")
    parser.add_argument("--big-rounds", type=int, default=20, help="rounds with the 13.3 MB call (default 20)")
    parser.add_argument("--quick", action="store_true", help="20 rounds, 3 with the big call")
    parser.add_argument("--server", action="append", default=[], metavar="LABEL=PATH", help="another server script")
    args = parser.parse_args()
    rounds, big_rounds = (20, 3) if args.quick else (args.rounds, args.big_rounds)
    with tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        sdk, ours = Path(tmp, "sdk_server.py"), Path(tmp, "ours_server.py")
        sdk.write_text(SERVER + SDK_MAIN, encoding="utf-8")
        ours.write_text(SERVER + OURS_MAIN, encoding="utf-8")
        servers = {
            "SDK stdio_server (run_stdio_async)": [PYTHON, str(sdk)],
            "serve_stdio (SDK transport + screening)": [PYTHON, str(ours)],
        }
        for extra in args.server:
            label, _, path = extra.partition("=")
            servers[label] = [PYTHON, os.path.abspath(path)]
        body, notes = measure(servers, rounds, min(big_rounds, rounds))
    print_report(
        "stdio transport: round trips on a bare MCPServer",
        body,
        [
            "Raw JSON-RPC over pipes, one process per server, same interpreter; rounds alternate ABBA.",
            *notes,
        ],
    )


if __name__ == "__main__":
    main()
