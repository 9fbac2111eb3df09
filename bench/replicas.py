"""Replicas: tasks/s and time-to-image for 1 vs 3 replicas sharing one PostgreSQL, on the sandbox.

Each configuration starts its own processes: the sandbox (``_sandbox_proc.py``, rate limit off),
N x ``rivya-mcp serve --transport http`` with ``RIVYA_DATABASE_URL`` (each replica with its own
output/data folders), and a throwaway PostgreSQL cluster (fsync on) from the Debian binaries.
``--calls`` simultaneous ``generate_image`` calls (default 200) go round-robin over the replicas,
one MCP session per replica; every job takes 2 s in the sandbox and the poll schedule is real
(poll_scale 1.0). Time-to-image is one call's time, from sent to the saved image's result.
A "1 replica, SQLite" row is the embedded default, for reference. The money check: the sandbox
ledger must show exactly one charge per task.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import (
    free_port,
    generation_burst,
    median,
    percentile,
    print_report,
    sandbox_process,
    server_env,
    stop,
    table,
    verdict,
    wait_for_http,
)
from tests._postgres import fresh_schema, throwaway_cluster

JOB_SECONDS = 2
CALL_WAIT_SECONDS = 55


@contextlib.contextmanager
def replicas(count: int, workdir: Path, base_url: str, database_url: str | None) -> Iterator[list[str]]:
    import subprocess

    from _common import PYTHON

    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for n in range(count):
            port = free_port()
            extra = {"RIVYA_POLL_SCALE": "1.0"}
            if database_url:
                extra["RIVYA_DATABASE_URL"] = database_url
            proc = subprocess.Popen(
                [PYTHON, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port)],
                env=server_env(workdir / f"r{n}", base_url=base_url, **extra),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            wait_for_http(f"{url}/readyz", proc=proc, timeout=60)
        yield [f"{url}/mcp" for url in urls]
    finally:
        for proc in procs:
            stop(proc)


async def burst(urls: list[str], calls: int, tag: str) -> tuple[float, list[float], int]:
    return await generation_burst(urls, calls, tag, job_seconds=JOB_SECONDS, wait_seconds=CALL_WAIT_SECONDS)


def one_charge_each(state: dict[str, Any], earlier: set[str], calls: int) -> bool:
    """The burst's tasks (those not in ``earlier``): ``calls`` of them, each charged exactly once."""
    tasks = {t["id"] for t in state["tasks"]} - earlier
    charges: dict[str, int] = {}
    for entry in state["ledger"]:
        if entry["delta"] < 0 and entry["task_id"] in tasks:
            charges[entry["task_id"]] = charges.get(entry["task_id"], 0) + 1
    return len(tasks) == calls and charges == dict.fromkeys(tasks, 1)


async def measure(calls: int) -> tuple[str, bool]:
    rows = []
    ok_all = True
    configs = [("1 replica, SQLite (embedded)", 1, False), ("1 replica, PostgreSQL", 1, True),
               ("3 replicas, PostgreSQL", 3, True)]  # fmt: skip
    with throwaway_cluster(durable=True) as server:
        for label, count, shared in configs:
            with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
                sandbox.config(rate_limit=None, starting_balance=10_000_000)
                database_url = fresh_schema(server) if shared else None
                with replicas(count, Path(tmp), sandbox.base_url, database_url) as urls:
                    await burst(urls, count, "warm-up")  # first-use imports, pools, the journal
                    earlier = {t["id"] for t in sandbox.state()["tasks"]}
                    total, latencies, failures = await burst(urls, calls, "replicas")
                money = one_charge_each(sandbox.state(), earlier, calls)
                ok = failures == 0 and money
                ok_all &= ok
                rows.append(
                    [
                        label,
                        calls,
                        f"{total:.1f}",
                        f"{calls / total:.1f}",
                        f"{median(latencies):.2f}",
                        f"{percentile(latencies, 99):.2f}",
                        f"{calls - failures}/{calls}",
                        "one each" if money else "**WRONG**",
                        verdict(ok),
                    ]
                )
    body = table(
        ["configuration", "calls", "wall s", "tasks/s", "p50 time-to-image s", "p99 s", "succeeded", "charges",
         "result"],
        rows,
    )  # fmt: skip
    return body, ok_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="30 calls")
    args = parser.parse_args()
    calls = 30 if args.quick else args.calls
    body, _ = anyio.run(measure, calls)
    print_report(f"Replicas ({calls} simultaneous generate_image, {JOB_SECONDS} s jobs, round-robin)", body)


if __name__ == "__main__":
    main()
