"""The documented poll pace holds across replicas: their shared journal (``claim_poll`` in
PostgreSQL) hands out each task's status-request turns, judged by the sandbox's own request log.

Three replicas ask about one running task at once (two waiting, one asking again and again without
waiting); the sandbox must see the task's status requests no closer together than the pace allows.
The bounds are lower bounds on sleeps the code chooses (poll_scale 0.1: the first look 0.25 s
after the create, then at least 0.5 s apart), so a loaded machine can only make the gaps longer.
"""

from __future__ import annotations

import itertools
from typing import Any

import anyio
import httpx2
import pytest
from mcp.types import CallToolResult

from tests.replicas.conftest import POLL_SCALE, Cluster

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

TASK_SECONDS = 4
MIN_FIRST_LOOK = 2.5 * POLL_SCALE * 0.8  # client FIRST_POLL_DELAY, with a margin for clock reads
MIN_GAP = 5.0 * POLL_SCALE * 0.9  # the schedule's shortest interval (5 s), scaled, with a margin


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def test_replicas_share_one_poll_pace_per_task(cluster: Cluster) -> None:
    first, second, third = cluster.replicas
    finished: list[dict[str, Any]] = []
    async with first.client() as a, second.client() as b, third.client() as c:
        made = structured(
            await a.call_tool(
                "generate_image", {"prompt": f"Paced [sandbox:seconds={TASK_SECONDS}]", "wait_seconds": 0}
            )
        )
        task_id = made["task_id"]
        assert made["done"] is False

        async def wait_on(client: Any) -> None:
            finished.append(structured(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 40})))

        async def keep_asking() -> None:
            for _ in range(15):  # another agent, on another replica, asking without waiting
                again = structured(await a.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0}))
                if again["status"] == "succeeded":
                    return
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as group:
            group.start_soon(wait_on, b)
            group.start_soon(wait_on, c)
            group.start_soon(keep_asking)
    records: list[dict[str, Any]] = httpx2.get(f"{cluster.sandbox_url}/_sandbox/requests", timeout=10).json()[
        "requests"
    ]

    assert [f["status"] for f in finished] == ["succeeded", "succeeded"]
    [create] = [r for r in records if r["method"] == "POST" and r["path"] == "/api/v1/generations"]
    looks = [r["start"] for r in records if r["method"] == "GET" and r["path"] == f"/api/v1/generations/{task_id}"]
    assert len(looks) >= 2, looks  # it was polled while running, by someone
    assert looks[0] - create["end"] >= MIN_FIRST_LOOK, (create, looks)
    gaps = [b - a for a, b in itertools.pairwise(looks)]
    assert all(gap >= MIN_GAP for gap in gaps), gaps
