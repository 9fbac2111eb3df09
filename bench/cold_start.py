"""Cold start: spawn → initialize → tools/list answered over stdio, ours vs a bare MCPServer.

Both servers are spawned the same way (``python -m rivya_mcp serve`` vs ``python
bench/bare_server.py``, same interpreter) and spoken to with raw newline-delimited JSON-RPC over
pipes, alternating runs so drift on the machine hits both alike. The clock starts just before the
spawn and stops when the ``tools/list`` answer has been read.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, PYTHON, initialize_params, median, percentile, print_report, server_env, table, verdict

TARGET_RATIO = 1.15
ANSWER_TIMEOUT = 30.0


class Pipe:
    """Line reader with a deadline over a child's stdout."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, request_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                if line.strip():
                    message: dict[str, Any] = json.loads(line)
                    if message.get("id") == request_id:
                        return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                raise TimeoutError(f"no answer to request {request_id}")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise RuntimeError(f"server closed stdout (exit {self.proc.poll()})")
            self.buffer += chunk


def one_run(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Seconds from spawn to the tools/list answer, and how many tools it listed."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        pipe = Pipe(proc)
        pipe.send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": initialize_params("bench")})
        pipe.answer(1)
        pipe.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        pipe.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        listed = pipe.answer(2)
        elapsed = time.perf_counter() - started
        return elapsed, len(listed["result"]["tools"])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(runs: int) -> tuple[str, bool]:
    with tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        workdir = Path(tmp)
        # What a host configures: a key and the API URL (nothing is contacted at startup).
        ours_env = server_env(workdir, base_url="http://127.0.0.1:9")
        bare_env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
        ours_cmd = [PYTHON, "-m", "rivya_mcp", "serve"]
        bare_cmd = [PYTHON, str(BENCH_DIR / "bare_server.py")]
        # One untimed run each, so both start from a warm page cache and compiled bytecode.
        one_run(ours_cmd, ours_env)
        one_run(bare_cmd, bare_env)
        ours: list[float] = []
        bare: list[float] = []
        tools = {"ours": 0, "bare": 0}
        for index in range(runs * 2):
            if (index % 2 == 0) == (index % 4 < 2):  # ours, bare, bare, ours, ...: neither always goes first
                seconds, tools["ours"] = one_run(ours_cmd, ours_env)
                ours.append(seconds)
            else:
                seconds, tools["bare"] = one_run(bare_cmd, bare_env)
                bare.append(seconds)
    ratio_median = median(ours) / median(bare)
    ratio_p90 = percentile(ours, 90) / percentile(bare, 90)
    ok = ratio_median <= TARGET_RATIO
    rows = [
        [f"rivya-mcp serve ({tools['ours']} tools)", f"{median(ours) * 1000:.0f}", f"{percentile(ours, 90) * 1000:.0f}",
         f"{min(ours) * 1000:.0f}", len(ours), f"{ratio_median:.2f}× (p90 {ratio_p90:.2f}×)",
         f"≤ {TARGET_RATIO}× bare", verdict(ok)],
        [f"bare MCPServer ({tools['bare']} tool)", f"{median(bare) * 1000:.0f}", f"{percentile(bare, 90) * 1000:.0f}",
         f"{min(bare) * 1000:.0f}", len(bare), "1.00× (floor)", "", ""],
    ]  # fmt: skip
    body = table(["server", "median ms", "p90 ms", "min ms", "runs", "vs bare", "target", "result"], rows)
    return body, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each instead of 25")
    parser.add_argument("--runs", type=int, default=None)
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 25)
    body, _ = run(runs)
    print_report(
        "Cold start (spawn → initialize → tools/list over stdio)",
        body,
        [
            "Raw JSON-RPC over pipes; runs alternate ours/bare (ABBA order) after one untimed warm-up run each.",
            "Ratio = median(ours) / median(bare).",
        ],
    )


if __name__ == "__main__":
    main()
