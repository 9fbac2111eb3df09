"""Shared helpers for the benchmark scripts: tables, percentiles, the sandbox process, machine info.

Every benchmark runs the Rivya sandbox in its own process (``bench/_sandbox_proc.py``) so that the
MCP server's memory and CPU are measured alone, and the sandbox records the time of every API
request it answers (``GET /_bench/requests``), which is how polls are counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PYTHON = sys.executable
SANDBOX_KEY = "rvya_sk_bench_" + "0" * 16
READY_TIMEOUT = 20.0
# The MCP revision the raw JSON-RPC clients (cold_start.py, _minimal_host.py) ask for.
PROTOCOL_VERSION = "2025-11-25"
PACKAGES = (
    "rivya-mcp",
    "mcp",
    "httpx2",
    "pydantic",
    "pillow",
    "zlib-ng",
    "starlette",
    "uvicorn",
    "anyio",
    "jsonschema",
)


def initialize_params(client_name: str) -> dict[str, Any]:
    """``initialize`` params of a raw JSON-RPC client with no capabilities."""
    return {
        "protocolVersion": PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": client_name, "version": "0"},
    }


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "pass" if ok else "**FAIL**"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def wait_for_http(url: str, *, timeout: float = READY_TIMEOUT, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1.0).close()
            return
        except OSError as exc:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process exited with {proc.returncode} before {url} answered") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:g} s") from exc
            time.sleep(0.05)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def current_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def stop(proc: subprocess.Popen[Any], *, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


@dataclass
class Sandbox:
    """The sandbox in its own process, with helpers for its control surface."""

    base_url: str
    proc: subprocess.Popen[bytes]

    def config(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = http_json("POST", f"{self.base_url}/_sandbox/config", changes)
        return result

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = http_json("GET", f"{self.base_url}/_sandbox/state")
        return result

    def faults(self, rules: list[dict[str, Any]]) -> None:
        http_json("POST", f"{self.base_url}/_sandbox/faults", {"rules": rules})

    def requests(self) -> list[dict[str, Any]]:
        """Every API request answered so far: ``{method, path, start, end, status}`` (wall-clock times)."""
        result: list[dict[str, Any]] = http_json("GET", f"{self.base_url}/_bench/requests")
        return result

    def clear_requests(self) -> None:
        http_json("POST", f"{self.base_url}/_bench/requests", {})


@contextmanager
def sandbox_process(**config: Any) -> Iterator[Sandbox]:
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "_sandbox_proc.py"), "--port", str(port), "--config", json.dumps(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/_sandbox/health", proc=proc)
        yield Sandbox(base_url, proc)
    finally:
        stop(proc)


def server_env(workdir: Path, *, base_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment a host would give the server: a key, an API URL, output and data folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update(
        {
            "RIVYA_API_KEY": SANDBOX_KEY,
            "RIVYA_OUTPUT_DIR": str(workdir / "out"),
            "RIVYA_DATA_DIR": str(workdir / "data"),
            "RIVYA_LOG_LEVEL": "WARNING",
        }
    )
    if base_url is not None:
        env["RIVYA_BASE_URL"] = base_url
    env.update(extra)
    return env


@contextmanager
def http_server_process(
    workdir: Path, base_url: str, **extra_env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``rivya-mcp serve --transport http`` in its own process; yields (MCP URL, process)."""
    port = free_port()
    proc = subprocess.Popen(
        [PYTHON, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port)],
        env=server_env(workdir, base_url=base_url, **extra_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_tcp("127.0.0.1", port, proc=proc)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        stop(proc)


def wait_for_tcp(host: str, port: int, *, proc: subprocess.Popen[Any], timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), timeout=1.0).close()
            return
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from exc
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host}:{port} did not accept connections") from exc
            time.sleep(0.05)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(versions),
    }


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    except OSError:
        pass
    return "unknown"


def print_report(title: str, body: str, notes: Mapping[str, str] | Sequence[str] = ()) -> None:
    print(f"### {title}\n")
    print(body)
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print(flush=True)


async def generation_burst(
    urls: Sequence[str], calls: int, tag: str, *, job_seconds: float, wait_seconds: float
) -> tuple[float, list[float], int]:
    """``calls`` concurrent ``generate_image`` calls of ``job_seconds`` sandbox jobs, spread round-robin
    over one MCP session per URL: (wall seconds for all, each call's latency, calls that failed)."""
    import anyio
    from mcp import Client

    latencies: list[float] = []
    failures = 0
    async with contextlib.AsyncExitStack() as stack:
        sessions = [await stack.enter_async_context(Client(url)) for url in urls]

        async def one(i: int) -> None:
            nonlocal failures
            started = time.perf_counter()
            result = await sessions[i % len(sessions)].call_tool(
                "generate_image",
                {"prompt": f"{tag} {i} [sandbox:seconds={job_seconds:g}]", "wait_seconds": wait_seconds},
            )
            latencies.append(time.perf_counter() - started)
            data = result.structured_content or {}
            if result.is_error or data.get("status") != "succeeded":
                failures += 1

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for i in range(calls):
                group.start_soon(one, i)
        total = time.perf_counter() - started
    return total, latencies, failures
