"""Webhook completion with replicas: a delivery that reaches one replica wakes the call waiting on
another (LISTEN/NOTIFY through the shared database), with no status poll, and every replica
verifies deliveries with the one secret the database holds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from rivya_mcp.sandbox import SandboxConfig, account_id, start_sandbox

from .conftest import free_port, stop, wait_until_up

pytestmark = pytest.mark.anyio

KEY = "rvya_sk_replica_hooks"
POLLS = {"method": "GET", "path": "/api/v1/generations/", "delay_ms": 0}


def _polls(base_url: str) -> int:
    rules = httpx2.get(f"{base_url}/_sandbox/faults").json()["rules"]
    return int(next(r["hits"] for r in rules if r.get("path") == POLLS["path"]))


async def test_a_delivery_on_one_replica_finishes_the_call_waiting_on_another(
    postgres_url: str, tmp_path: Path
) -> None:
    config = SandboxConfig(queued_seconds=0.2, processing_seconds=1.0, webhooks_allow_loopback=True)
    with start_sandbox(config) as sandbox:
        ports = {"A": free_port(), "B": free_port()}
        # Both replicas sit behind one public address; here that address is A's own.
        public_url = f"http://127.0.0.1:{ports['A']}"
        processes: list[subprocess.Popen[bytes]] = []
        logs: dict[str, Path] = {}
        try:
            for name, port in ports.items():
                env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")} | {
                    "RIVYA_API_KEY": KEY,
                    "RIVYA_BASE_URL": sandbox.base_url,
                    "RIVYA_DATABASE_URL": postgres_url,
                    "RIVYA_OUTPUT_DIR": str(tmp_path / name / "out"),
                    "RIVYA_DATA_DIR": str(tmp_path / name / "data"),
                    "RIVYA_POLL_SCALE": "1",
                    "RIVYA_LOG_LEVEL": "INFO",
                }
                logs[name] = tmp_path / f"replica-{name}.log"
                with logs[name].open("wb") as sink:
                    args = ["serve", "--transport", "http", "--port", str(port), "--public-url", public_url]
                    process = subprocess.Popen(
                        [sys.executable, "-m", "rivya_mcp", *args], env=env, stdout=sink, stderr=subprocess.STDOUT
                    )
                processes.append(process)
                wait_until_up(f"http://127.0.0.1:{port}/readyz", process, logs[name])
                deadline = time.monotonic() + 30
                while b"webhooks: receiving at" not in logs[name].read_bytes():
                    assert time.monotonic() < deadline, logs[name].read_text(errors="replace")[-3000:]
                    time.sleep(0.05)  # another process: nothing to await
            # One endpoint for the one public URL: the second replica found it, and its secret in the database.
            endpoints = sandbox.state.webhooks.listing(account_id(KEY))
            assert [e["url"] for e in endpoints] == [f"{public_url}/webhooks/rivya"]

            httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [POLLS]}).raise_for_status()
            async with Client(f"http://127.0.0.1:{ports['B']}/mcp") as client:
                started = time.monotonic()
                result = await client.call_tool("generate_image", {"prompt": "Across replicas", "wait_seconds": 30})
                took = time.monotonic() - started
            data = result.structured_content or {}
            assert not result.is_error and data["status"] == "succeeded" and Path(data["saved_path"]).is_file()
            # The delivery reached A; B's call was woken by A's NOTIFY, long before the slow fallback's
            # first look (2.5 s x 3 after the create) and without any status poll.
            assert _polls(sandbox.base_url) == 0, took
            assert took < 7.0
        finally:
            for process in processes:
                stop(process)
