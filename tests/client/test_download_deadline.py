"""A result download ends by its deadline as a whole, however the bytes trickle in (issue 23 item 4).

httpx's timeouts are per read: a body dripping a byte a second never trips one. The client bounds
each attempt as a whole, so the task service's deadlines (a call's, or ``MAX_DOWNLOAD_SECONDS`` in
the background) hold. Against the sandbox over loopback, its ``drip_ms`` fault on the result URL.
"""

from __future__ import annotations

import time

import httpx2
import pytest

from rivya_mcp.client import AsyncRivyaClient, DeadlineExceededError
from rivya_mcp.sandbox import SandboxConfig, start_sandbox

from .conftest import API_KEY

pytestmark = pytest.mark.anyio


async def test_a_dripping_download_ends_by_its_deadline_and_a_steady_one_completes() -> None:
    with start_sandbox(SandboxConfig(queued_seconds=0.0, processing_seconds=0.0)) as sandbox:
        async with AsyncRivyaClient(api_key=API_KEY, base_url=sandbox.base_url, max_retries=0) as client:
            task = await client.create_generation(model="flux-kontext-max", prompt="A drip")
            done = await client.wait_for_generation(task.id, timeout=10)
            assert done.result_url is not None
            drip = {"path": "/_sandbox/media/", "method": "GET", "drip_ms": 500, "times": 1}
            httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [drip]}).raise_for_status()
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await client.download(done.result_url, max_bytes=10_000_000, timeout=2.0)
            took = time.monotonic() - started
            # The same URL again, not dripping: the whole image.
            image = await client.download(done.result_url, max_bytes=10_000_000, timeout=10.0)
    assert took < 3.5, took  # not the minutes a byte every half second would take
    assert image[:3] == b"\xff\xd8\xff"
