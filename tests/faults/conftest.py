"""The fault harness: a real sandbox on loopback, its fault rules and ledger, and per-test accounts.

Every test uses its own API key, so its own sandbox account: the ledger and the task list are
read per account, and tests sharing the module's sandbox cannot see each other's charges.
Fault rules and the sandbox clock are global, so each test sets its rules through the control
API and clears them when it ends (tests in a module run one after another).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.types import CallToolResult, TextContent

from rivya_mcp.manifest import get_manifest
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings

# Tiny lifecycle and poll scale; a short URL TTL so one clock jump expires result URLs.
SANDBOX_CONFIG = SandboxConfig(queued_seconds=0.05, processing_seconds=0.25, url_ttl_seconds=600)
POLL_SCALE = 0.1
COST = get_manifest("flux-kontext-max").base_credits


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SANDBOX_CONFIG) as running:
        yield running


@dataclass
class Account:
    """One sandbox account (one API key) and what the sandbox recorded for it."""

    sandbox: RunningSandbox
    workdir: Path
    key: str = field(default_factory=lambda: f"rvya_sk_faults_{uuid.uuid4().hex}")

    @property
    def id(self) -> str:
        return "acct_" + hashlib.sha256(self.key.encode()).hexdigest()[:12]

    def settings(self, **changes: Any) -> Settings:
        base = Settings(
            api_key=Secret(self.key),
            base_url=self.sandbox.base_url,
            output_dir=self.workdir / "out",
            data_dir=self.workdir / "data",
            poll_scale=POLL_SCALE,
            wait_seconds=10.0,
        )
        return base.with_changes(**changes)

    def tasks(self) -> list[dict[str, Any]]:
        return [t for t in self.sandbox.state.snapshot()["tasks"] if t["account"] == self.id]

    def ledger(self) -> list[dict[str, Any]]:
        return [e for e in self.sandbox.state.snapshot()["ledger"] if e["account"] == self.id]

    def charges(self) -> dict[str, int]:
        """Task id → the number of charges (negative deltas) booked for it."""
        counts: dict[str, int] = {}
        for entry in self.ledger():
            if entry["delta"] < 0:
                counts[entry["task_id"]] = counts.get(entry["task_id"], 0) + 1
        return counts

    def assert_one_charge_per_task(self, expected_tasks: int) -> None:
        """The money check: as many tasks as the agent asked for, each charged exactly once."""
        tasks = self.tasks()
        assert len(tasks) == expected_tasks, [t["id"] for t in tasks]
        assert self.charges() == {t["id"]: 1 for t in tasks}, self.ledger()

    def released(self, task_id: str) -> bool:
        return any(e["task_id"] == task_id and e["reason"] == "release" and e["delta"] > 0 for e in self.ledger())

    def saved_images(self) -> list[Path]:
        out = self.workdir / "out"
        return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


@pytest.fixture
def account(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Account]:
    yield Account(sandbox, tmp_path)
    set_faults(sandbox, [])


def set_faults(sandbox: RunningSandbox, rules: list[dict[str, Any]]) -> None:
    """Replace the sandbox's fault rules through its control API (as a user would, with curl)."""
    response = httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": rules}, timeout=5)
    response.raise_for_status()


def fault_hits(sandbox: RunningSandbox) -> list[int]:
    response = httpx2.get(f"{sandbox.base_url}/_sandbox/faults", timeout=5)
    response.raise_for_status()
    body = response.json()
    rules = body["rules"] if isinstance(body, dict) else body
    return [int(rule["hits"]) for rule in rules]


def advance_clock(sandbox: RunningSandbox, seconds: float) -> None:
    response = httpx2.post(f"{sandbox.base_url}/_sandbox/clock", json={"advance": seconds}, timeout=5)
    response.raise_for_status()


def text_of(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def data_of(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text_of(result)
    data: dict[str, Any] | None = result.structured_content
    assert data is not None
    return data
