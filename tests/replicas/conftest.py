"""Replicas as real processes: one sandbox, N ``rivya-mcp serve --transport http``, one PostgreSQL.

Every replica has its own output and data folders (nothing shared on disk): whatever one replica
knows about another's tasks came through the database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

STARTUP_SECONDS = 30.0
# Short leases, so a killed replica's task is taken over within seconds (the default is 15 s).
LEASE_SECONDS = 1.5
POLL_SCALE = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            if httpx2.get(url, timeout=1.0).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{url} did not come up:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)  # another process starting: no clock to inject


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Client]:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(120.0)) as http,
            Client(streamable_http_client(f"{self.url}/mcp", http_client=http)) as client,
        ):
            yield client

    def kill9(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@dataclass
class Cluster:
    sandbox_url: str
    database_url: str
    key: str
    replicas: list[Replica] = field(default_factory=list)

    def sandbox_state(self) -> dict[str, Any]:
        state: dict[str, Any] = httpx2.get(f"{self.sandbox_url}/_sandbox/state", timeout=10).json()
        return state

    def configure_sandbox(self, **changes: Any) -> None:
        httpx2.post(f"{self.sandbox_url}/_sandbox/config", json=changes, timeout=10).raise_for_status()

    def charges(self) -> dict[str, int]:
        """Task id → charges (negative ledger deltas) booked for it."""
        counts: dict[str, int] = {}
        for entry in self.sandbox_state()["ledger"]:
            if entry["delta"] < 0:
                counts[entry["task_id"]] = counts.get(entry["task_id"], 0) + 1
        return counts


@pytest.fixture
def cluster(postgres_url: str, tmp_path: Path) -> Iterator[Cluster]:
    sandbox_port = free_port()
    sandbox_log = tmp_path / "sandbox.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    with sandbox_log.open("wb") as sink:
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "rivya_mcp", "sandbox", "--port", str(sandbox_port), "--balance", "10000000"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    processes = [sandbox]
    try:
        cluster = Cluster(f"http://127.0.0.1:{sandbox_port}", postgres_url, f"rvya_sk_replicas_{uuid.uuid4().hex}")
        wait_until_up(f"{cluster.sandbox_url}/_sandbox/health", sandbox, sandbox_log)
        cluster.configure_sandbox(queued_seconds=0.1, processing_seconds=0.5)
        for name in ("A", "B", "C"):
            port = free_port()
            workdir = tmp_path / name
            log = tmp_path / f"replica-{name}.log"
            replica_env = {
                **env,
                "RIVYA_API_KEY": cluster.key,
                "RIVYA_BASE_URL": cluster.sandbox_url,
                "RIVYA_DATABASE_URL": postgres_url,
                "RIVYA_OUTPUT_DIR": str(workdir / "out"),
                "RIVYA_DATA_DIR": str(workdir / "data"),
                "RIVYA_POLL_SCALE": str(POLL_SCALE),
                "RIVYA_LEASE_SECONDS": str(LEASE_SECONDS),
                "RIVYA_LOG_FORMAT": "json",
                "RIVYA_LOG_LEVEL": "INFO",
            }
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "rivya_mcp", "serve", "--transport", "http", "--port", str(port)],
                    env=replica_env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            processes.append(process)
            cluster.replicas.append(Replica(name, port, process, workdir, log))
        for replica in cluster.replicas:
            # Ready: the shared journal is open and the replica is listening for wake-ups.
            wait_until_up(f"{replica.url}/readyz", replica.process, replica.log)
        yield cluster
    finally:
        for process in reversed(processes):
            stop(process)
