"""Completion lag with webhooks beside polling: time from a sandbox task turning ``succeeded`` to the
tool returning its image, and how many status requests each task cost.

Two ``rivya-mcp serve --transport http`` processes against one sandbox process (real time,
``RIVYA_POLL_SCALE=1``): one with ``--public-url`` (webhook completion; polling only as the slow
fallback), one without (polling at the documented pace). Jobs of the given lengths run
concurrently through ``generate_image`` over Streamable HTTP. "Turned succeeded" is the sandbox's
``finishes_at`` for the task; polls are the ``GET /api/v1/generations/{id}`` requests the sandbox
answered for it (``bench/_sandbox_proc.py`` records them). Target (issue 18): with webhooks, a
median lag under 1 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PYTHON,
    Sandbox,
    free_port,
    median,
    print_report,
    sandbox_process,
    server_env,
    stop,
    table,
    verdict,
    wait_for_tcp,
)

FULL_JOBS = (3, 8, 15)
QUICK_JOBS = (3,)
TARGET_MEDIAN_LAG = 1.0
WAIT_SECONDS = 55


@dataclass
class Run:
    mode: str
    seconds: float
    task_id: str = ""
    returned_at: float = 0.0
    lag: float = 0.0
    polls: int = 0
    status: str = ""


@contextmanager
def server(workdir: Path, base_url: str, *, webhooks: bool) -> Any:
    port = free_port()
    args = [PYTHON, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port)]
    if webhooks:
        args += ["--public-url", f"http://127.0.0.1:{port}"]
    log = workdir / f"server-{port}.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            args, env=server_env(workdir, base_url=base_url, RIVYA_LOG_LEVEL="INFO"), stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    try:
        wait_for_tcp("127.0.0.1", port, proc=proc)
        deadline = time.monotonic() + 20
        while webhooks and b"webhooks: receiving at" not in log.read_bytes():
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not register its webhook endpoint")
            time.sleep(0.05)  # another process: nothing to await
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(proc)


async def one(url: str, run: Run) -> None:
    async with Client(url) as client:
        prompt = f"{run.mode} {run.seconds:g} s [sandbox:seconds={run.seconds:g}]"
        result = await client.call_tool("generate_image", {"prompt": prompt, "wait_seconds": WAIT_SECONDS})
        run.returned_at = time.time()
        data: dict[str, Any] = result.structured_content or {}
        run.task_id, run.status = str(data.get("task_id")), "error" if result.is_error else str(data.get("status"))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def measure(sandbox: Sandbox, url: str, mode: str, jobs: tuple[int, ...]) -> list[Run]:
    runs = [Run(mode, float(s)) for s in jobs]
    sandbox.clear_requests()
    async with anyio.create_task_group() as group:
        for run in runs:
            group.start_soon(one, url, run)
    tasks = {t["id"]: t for t in sandbox.state()["tasks"]}
    requests = sandbox.requests()
    for run in runs:
        task = tasks.get(run.task_id)
        if task is not None:
            run.lag = run.returned_at - _epoch(task["finishes_at"])
        run.polls = sum(
            1 for r in requests if r["method"] == "GET" and r["path"].endswith(f"/generations/{run.task_id}")
        )
    return runs


def webhook_section(jobs: tuple[int, ...]) -> tuple[str, bool]:
    """The webhook rows for ``bench/completion_lag.py``: the same jobs, finished by delivery."""
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(webhooks_allow_loopback=True) as sandbox:
        workdir = Path(tmp) / "webhook"
        workdir.mkdir()
        with server(workdir, sandbox.base_url, webhooks=True) as url:
            runs = anyio.run(measure, sandbox, url, "webhook", jobs)
    rows = [[f"{r.seconds:g} s", r.status, f"{r.lag:.2f}", r.polls] for r in runs]
    lag = median([r.lag for r in runs])
    ok = lag < TARGET_MEDIAN_LAG and all(r.status == "succeeded" for r in runs)
    body = table(["job", "status", "lag s", "status polls"], rows)
    body += f"\n\nWebhook median lag {lag:.2f} s (target < {TARGET_MEDIAN_LAG:g} s): {verdict(ok)}"
    return body, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    jobs = QUICK_JOBS if args.quick else FULL_JOBS
    rows: list[list[object]] = []
    results: dict[str, list[Run]] = {}
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(webhooks_allow_loopback=True) as sandbox:
        for mode, webhooks in (("webhook", True), ("polling", False)):
            workdir = Path(tmp) / mode
            workdir.mkdir()
            with server(workdir, sandbox.base_url, webhooks=webhooks) as url:
                results[mode] = anyio.run(measure, sandbox, url, mode, jobs)
    for mode, runs in results.items():
        for run in runs:
            rows.append([mode, f"{run.seconds:g} s", run.status, f"{run.lag:.2f}", run.polls])
    hook_median = median([r.lag for r in results["webhook"]])
    poll_median = median([r.lag for r in results["polling"]])
    ok = hook_median < TARGET_MEDIAN_LAG and all(r.status == "succeeded" for rs in results.values() for r in rs)
    body = table(["mode", "job", "status", "lag s", "status polls"], rows)
    body += (
        f"\n\nMedian lag: webhook {hook_median:.2f} s, polling {poll_median:.2f} s. "
        f"Target: webhook median < {TARGET_MEDIAN_LAG:g} s: {verdict(ok)}"
    )
    print_report("Completion lag, webhook vs polling", body)


if __name__ == "__main__":
    main()
