"""The control surface: state, reset, config, clock."""

from __future__ import annotations

import json

import pytest

from rivya_mcp.sandbox import SandboxConfig, SandboxState

from .conftest import KEY, Api, assert_error, image_bytes

pytestmark = pytest.mark.anyio


async def test_state_lists_tasks_ledger_balances_files_without_keys(api: Api) -> None:
    await api.upload(image_bytes())
    task_id = (await api.create("a boat", params={"aspectRatio": "1:1"}, client_request_id="trace-1")).json()["id"]
    response = await api.client.get("/_sandbox/state")
    assert response.status_code == 200
    state = response.json()
    assert {"tasks", "ledger", "balances", "files", "faults", "config", "now"} <= set(state)
    task = state["tasks"][0]
    assert task["id"] == task_id and task["status"] == "queued" and task["model"] == "flux-kontext-max"
    assert task["prompt"] == "a boat" and task["params"] == {"aspectRatio": "1:1"}
    assert task["reserved_credits"] == 8 and task["final_credits"] == 0
    assert task["client_request_id"] == "trace-1"
    assert task["account"].startswith("acct_")
    assert state["files"][0]["account"] == task["account"]
    assert KEY not in response.text and KEY[8:] not in response.text


async def test_reset_clears_everything_and_sets_the_balance(api: Api, state: SandboxState) -> None:
    await api.create(headers=None)
    await api.upload(image_bytes())
    await api.client.post("/_sandbox/faults", json={"rules": [{"path": "/api/v1/models", "status": 500}]})
    response = await api.client.post("/_sandbox/reset", json={"balance": 50})
    assert response.json() == {"reset": True, "starting_balance": 50}
    snapshot = state.snapshot()
    assert snapshot["tasks"] == snapshot["ledger"] == snapshot["files"] == snapshot["faults"] == []
    assert snapshot["balances"] == {}
    assert await api.credits() == 50
    assert (await api.client.get("/api/v1/models")).status_code == 200
    # Without a body the balance stays.
    assert (await api.client.post("/_sandbox/reset")).json()["starting_balance"] == 50
    assert_error(await api.client.post("/_sandbox/reset", json={"balance": -1}), 400, "validation_failed")


async def test_config_changes_durations_at_runtime(api: Api) -> None:
    response = await api.client.post("/_sandbox/config", json={"queued_seconds": 0, "processing_seconds": 10})
    assert response.json()["processing_seconds"] == 10
    task_id = (await api.create()).json()["id"]
    assert (await api.get(task_id))["status"] == "processing"
    assert (await api.client.get("/_sandbox/config")).json()["queued_seconds"] == 0
    assert_error(await api.client.post("/_sandbox/config", json={"queued_seconds": -1}), 400, "validation_failed")
    assert_error(await api.client.post("/_sandbox/config", json={"bogus": 1}), 400, "validation_failed")
    assert_error(await api.client.post("/_sandbox/config", json={"rate_limit": 0}), 400, "validation_failed")


async def test_clock_advance_finishes_tasks(api: Api) -> None:
    task_id = (await api.create()).json()["id"]
    response = await api.client.post("/_sandbox/clock", json={"advance": 4})
    assert response.json()["now"] == "2026-05-11T00:00:04.000Z"
    assert (await api.get(task_id))["status"] == "succeeded"
    assert_error(await api.client.post("/_sandbox/clock", json={"advance": -1}), 400, "validation_failed")
    assert_error(await api.client.post("/_sandbox/clock", content=b"nope"), 400, "validation_failed")


async def test_state_snapshot_is_a_copy(state: SandboxState, api: Api) -> None:
    await api.create()
    snapshot = state.snapshot()
    snapshot["tasks"][0]["params"]["aspectRatio"] = "changed"
    snapshot["balances"].clear()
    assert "changed" not in json.dumps(state.snapshot())
    assert state.snapshot()["balances"]


def test_config_validates() -> None:
    with pytest.raises(ValueError, match="queued_seconds"):
        SandboxConfig(queued_seconds=-1)
    with pytest.raises(ValueError, match="public_base_url"):
        SandboxConfig(public_base_url="ftp://x")
