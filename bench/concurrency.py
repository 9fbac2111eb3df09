"""Concurrency: 1, 10, 50 and 100 simultaneous ``generate_image`` calls over Streamable HTTP.

The server runs as ``rivya-mcp serve --transport http`` in its own process and the sandbox in
another (rate limit off), so the server's peak memory (VmHWM from /proc) is its own. Every job
takes 2 s in the sandbox; the poll schedule is real (poll_scale 1.0). Each level opens one MCP
session and starts all its calls at once; the level's time runs from the first call sent to the
last result received. The floor is the time of a single call.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    current_rss_mb,
    generation_burst,
    http_server_process,
    median,
    peak_rss_mb,
    print_report,
    sandbox_process,
    table,
    verdict,
)

FULL_LEVELS = (1, 10, 50, 100)
QUICK_LEVELS = (1, 10)
JOB_SECONDS = 2
TARGET_RATIO_AT_50 = 2.0
TARGET_PEAK_MB = 250.0
CALL_WAIT_SECONDS = 55


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def level(url: str, n: int) -> tuple[float, list[float], int]:
    return await generation_burst(
        [url], n, f"Concurrency {n}/", job_seconds=JOB_SECONDS, wait_seconds=CALL_WAIT_SECONDS
    )


async def measure(levels: tuple[int, ...]) -> tuple[str, bool]:
    rows = []
    ok_all = True
    with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        sandbox.config(rate_limit=None, starting_balance=1_000_000)
        with http_server_process(Path(tmp), sandbox.base_url, RIVYA_POLL_SCALE="1.0") as (url, proc):
            await level(url, 1)  # warm-up: first-use imports, the client's connection pool, the journal
            idle_mb = current_rss_mb(proc.pid)
            single = None
            for n in levels:
                server_cpu, sandbox_cpu = cpu_seconds(proc.pid), cpu_seconds(sandbox.proc.pid)
                total, latencies, failures = await level(url, n)
                server_cpu = cpu_seconds(proc.pid) - server_cpu
                sandbox_cpu = cpu_seconds(sandbox.proc.pid) - sandbox_cpu
                peak = peak_rss_mb(proc.pid)
                single = single or total
                ratio = total / single
                checks = [failures == 0, peak <= TARGET_PEAK_MB]
                target = f"all succeed; peak ≤ {TARGET_PEAK_MB:g} MB"
                if n == 50:
                    checks.append(ratio <= TARGET_RATIO_AT_50)
                    target = f"≤ {TARGET_RATIO_AT_50:g}× one; " + target
                ok = all(checks)
                ok_all &= ok
                rows.append(
                    [
                        n,
                        f"{total:.2f}",
                        f"{ratio:.2f}×" if n > 1 else "1.00× (floor)",
                        f"{median(latencies):.2f}",
                        f"{max(latencies):.2f}",
                        f"{n - failures}/{n}",
                        f"{peak:.0f}",
                        f"{server_cpu:.1f} / {sandbox_cpu:.1f}",
                        target,
                        verdict(ok),
                    ]
                )
    body = table(
        [
            "calls",
            "wall s",
            "vs one",
            "median call s",
            "max call s",
            "succeeded",
            "server peak RSS MB",
            "CPU s server / sandbox",
            "target",
            "result",
        ],
        rows,
    )
    return body + f"\n\nServer RSS after warm-up (idle): {idle_mb:.0f} MB.", ok_all


def run(quick: bool) -> tuple[str, bool]:
    return anyio.run(measure, QUICK_LEVELS if quick else FULL_LEVELS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 10 calls only")
    args = parser.parse_args()
    body, _ = run(args.quick)
    print_report(
        f"Concurrency (simultaneous generate_image over Streamable HTTP, {JOB_SECONDS} s jobs)",
        body,
        [
            "Peak RSS is VmHWM of the server process, cumulative over the levels (run in increasing order).",
            "CPU s = user+system CPU the server and the sandbox process spent during the level (2 cores).",
        ],
    )


if __name__ == "__main__":
    main()
