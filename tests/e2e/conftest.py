"""The e2e harness: one sandbox per profile per module, and the server reached over each real transport.

Only the outer edge is real-but-local: the Rivya API is the sandbox on loopback HTTP. Our own
server, client, journal and reference loading run for real.

Every flow runs against both sandbox profiles (docs/sandbox.md): ``default`` over all four
transports, ``variant`` (which decides every point the docs leave open the other way) over the two
that matter most, stdio and Streamable HTTP. A flow that passes only against one profile depends on
a sandbox decision.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests.server._threaded import ThreadedServer

TRANSPORTS = ("memory", "stdio", "sse", "http")
PROFILES = ("default", "variant")
# (profile, transport) pairs: the variant's runs are the ones that keep the client honest, so they
# go through the real stdio and Streamable HTTP transports; memory and SSE add nothing there.
RUNS = [("default", t) for t in TRANSPORTS] + [("variant", "stdio"), ("variant", "http")]
# Tiny lifecycle, small poll scale: every generation still sees queued → processing → succeeded.
# The variant scales these (×2.5, ±40 %, seeded), so its tasks stay under a second too.
SANDBOX_CONFIG = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
POLL_SCALE = 0.1


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[Callable[[str], RunningSandbox]]:
    """One sandbox per profile, started when a test first needs it and shared by the module."""
    running: dict[str, RunningSandbox] = {}

    def get(profile: str) -> RunningSandbox:
        if profile not in running:
            running[profile] = start_sandbox(SANDBOX_CONFIG.updated({"profile": profile}))
        return running[profile]

    try:
        yield get
    finally:
        for sandbox in running.values():
            sandbox.stop()


@dataclass
class Harness:
    """One transport to one server, with everything a test needs to check its effects."""

    transport: str
    settings: Settings
    sandbox: RunningSandbox
    workdir: Path
    url: str | None = None
    profile: str = "default"

    def charges(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The sandbox's credit ledger and task ids: what anything billable would have changed."""
        snapshot = self.sandbox.state.snapshot()
        return snapshot["ledger"], [t["id"] for t in snapshot["tasks"]]

    @property
    def account(self) -> str:
        """The sandbox's name for this harness's API key (docs/sandbox.md, Authentication)."""
        key = self.settings.api_key.reveal() if self.settings.api_key else ""
        return "acct_" + hashlib.sha256(key.encode()).hexdigest()[:12]

    def charges_per_task(self) -> dict[str, int]:
        """Task id → how many charges (negative ledger entries) this account was booked for it."""
        counts: dict[str, int] = {}
        for entry in self.sandbox.state.snapshot()["ledger"]:
            if entry["account"] == self.account and entry["delta"] < 0:
                counts[entry["task_id"]] = counts.get(entry["task_id"], 0) + 1
        return counts

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the sandbox's fault rules through its control API, as a user would."""
        response = httpx2.post(f"{self.sandbox.base_url}/_sandbox/faults", json={"rules": rules}, timeout=5)
        response.raise_for_status()

    def fault_hits(self) -> list[int]:
        response = httpx2.get(f"{self.sandbox.base_url}/_sandbox/faults", timeout=5)
        response.raise_for_status()
        return [int(rule["hits"]) for rule in response.json()["rules"]]

    def task(self, task_id: str) -> dict[str, Any]:
        return next(t for t in self.sandbox.state.snapshot()["tasks"] if t["id"] == task_id)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[Client]:
        target: Any
        if self.transport == "memory":
            target = build_server(self.settings)
        elif self.transport == "stdio":
            target = StdioServerParameters(
                command=sys.executable, args=["-m", "rivya_mcp", "serve"], env=server_env(self.settings)
            )
        elif self.transport == "sse":
            target = sse_client(f"{self.url}/sse")
        else:
            target = f"{self.url}/mcp"
        async with Client(target) as client:
            yield client


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update(
        {
            "RIVYA_BASE_URL": settings.base_url,
            "RIVYA_OUTPUT_DIR": str(settings.output_dir),
            "RIVYA_DATA_DIR": str(settings.data_dir),
            "RIVYA_POLL_SCALE": str(settings.poll_scale),
            "RIVYA_LOG_LEVEL": "WARNING",
        }
    )
    if settings.api_key is not None:
        env["RIVYA_API_KEY"] = settings.api_key.reveal()
    if settings.read_dirs:
        env["RIVYA_READ_DIRS"] = os.pathsep.join(str(p) for p in settings.read_dirs)
    return env


def make_settings(sandbox: RunningSandbox, workdir: Path, key: str, **changes: Any) -> Settings:
    base = Settings(
        api_key=Secret(key),
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=POLL_SCALE,
        # Over HTTP transports local references are read only from named directories.
        read_dirs=(workdir / "refs",),
    )
    return base.with_changes(**changes)


@pytest.fixture(scope="module", params=RUNS, ids=[f"{p}-{t}" for p, t in RUNS])
def harness(
    request: pytest.FixtureRequest,
    sandboxes: Callable[[str], RunningSandbox],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Harness]:
    profile, transport = request.param
    sandbox = sandboxes(profile)
    assert sandbox.state.profile.name == profile
    workdir = tmp_path_factory.mktemp(f"e2e-{profile}-{transport}")
    (workdir / "refs").mkdir()
    settings = make_settings(sandbox, workdir, f"rvya_sk_test_{profile}_{transport}")
    if transport in ("sse", "http"):
        app = build_http_app(settings, transport="sse" if transport == "sse" else "http")
        with ThreadedServer(app) as server:
            yield Harness(transport, settings, sandbox, workdir, url=server.base_url, profile=profile)
    else:
        yield Harness(transport, settings, sandbox, workdir, profile=profile)
