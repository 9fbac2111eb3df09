"""The control surface's request log, and the ``merge`` fault that bends an answer the docs allow."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import AUTH, Api, assert_error

pytestmark = pytest.mark.anyio


async def test_every_api_request_is_logged_in_order_with_its_status(api: Api) -> None:
    task_id = (await api.create()).json()["id"]
    await api.get(task_id)
    await api.client.get("/api/v1/generations/task_nope", headers=AUTH)
    await api.client.get("/_sandbox/state")  # the control surface itself is not logged
    records: list[dict[str, Any]] = (await api.client.get("/_sandbox/requests")).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/api/v1/generations", 201),
        ("GET", f"/api/v1/generations/{task_id}", 200),
        ("GET", "/api/v1/generations/task_nope", 404),
    ]
    assert all(r["start"] <= r["end"] for r in records)
    assert records[0]["start"] <= records[1]["start"] <= records[2]["start"]
    cleared = await api.client.delete("/_sandbox/requests")
    assert cleared.json() == {"requests": []}
    assert (await api.client.get("/_sandbox/requests")).json() == {"requests": []}


async def test_faulted_requests_are_logged_too(api: Api) -> None:
    await api.client.post("/_sandbox/faults", json={"rules": [{"path": "/api/v1/credits", "status": 429, "times": 1}]})
    assert_error(await api.client.get("/api/v1/credits", headers=AUTH), 429, "rate_limited")
    records = (await api.client.get("/_sandbox/requests")).json()["requests"]
    assert [(r["path"], r["status"]) for r in records] == [("/api/v1/credits", 429)]


async def test_a_merge_fault_changes_the_answer_after_processing_then_stops(api: Api) -> None:
    task_id = (await api.create()).json()["id"]
    rule = {
        "path": "/api/v1/generations/",
        "method": "GET",
        "phase": "after",
        "times": 1,
        "merge": {"status": "paused_for_review", "result": {"urls": None}, "extra": [1]},
    }
    assert (await api.client.post("/_sandbox/faults", json={"rules": [rule]})).status_code == 200
    api.clock.advance(3600)
    bent = await api.get(task_id)
    assert bent["status"] == "paused_for_review" and bent["extra"] == [1]
    assert bent["result"]["urls"] is None and bent["result"]["primary_url"]  # merged key by key
    assert bent["id"] == task_id and bent["final_credits"] == 8  # the rest is the real answer
    plain = await api.get(task_id)
    assert plain["status"] == "succeeded" and plain["result"]["urls"] == [plain["result"]["primary_url"]]


@pytest.mark.parametrize(
    "rule",
    [
        {"merge": {"status": "x"}},  # before the request is processed there is no answer to merge into
        {"merge": [1], "phase": "after"},
        {"merge": {"status": "x"}, "phase": "after", "status": 500},
    ],
)
async def test_a_bad_merge_rule_is_refused(api: Api, rule: dict[str, Any]) -> None:
    response = await api.client.post("/_sandbox/faults", json={"rules": [rule]})
    assert_error(response, 400, "validation_failed")
