"""Server tests run the real server, client and journal against a real sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
TEST_KEY = "rvya_sk_test_server_0123456789abcdef"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


def settings_for(sandbox: RunningSandbox, tmp_path: Path, *, key: str | None = TEST_KEY, **changes: Any) -> Settings:
    settings = Settings(
        api_key=Secret(key) if key else None,
        base_url=sandbox.base_url,
        output_dir=tmp_path / "out",
        data_dir=tmp_path / "data",
        poll_scale=0.1,
    )
    return settings.with_changes(**changes)
