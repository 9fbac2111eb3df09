"""Credits (reserve, settle, release, 402), idempotency and rate limits."""

from __future__ import annotations

import pytest

from rivya_mcp.sandbox import ManualClock, SandboxState

from .conftest import AUTH, MODEL, OTHER_AUTH, Api, assert_error

pytestmark = pytest.mark.anyio


async def test_reserve_then_settle_on_success(api: Api) -> None:
    task_id = (await api.create()).json()["id"]
    assert await api.credits() == 992  # reserved at create
    state = await api.state()
    account = state["tasks"][0]["account"]
    assert [(e["task_id"], e["delta"], e["reason"]) for e in state["ledger"]] == [(task_id, -8, "reserve")]
    await api.finish(task_id)
    state = await api.state()
    assert [(e["delta"], e["reason"], e["account"]) for e in state["ledger"]] == [
        (-8, "reserve", account),
        (0, "settle", account),
    ]
    assert state["balances"] == {account: 992}
    assert state["tasks"][0]["final_credits"] == 8
    assert await api.credits() == 992


async def test_release_on_failure(api: Api) -> None:
    task_id = (await api.create("[sandbox:fail]")).json()["id"]
    await api.finish(task_id)
    ledger = (await api.state())["ledger"]
    assert [(e["delta"], e["reason"]) for e in ledger] == [(-8, "reserve"), (8, "release")]
    assert await api.credits() == 1000


async def test_accounts_have_their_own_wallets(api: Api) -> None:
    await api.create()
    assert await api.credits() == 992
    assert await api.credits(OTHER_AUTH) == 1000
    balances = (await api.state())["balances"]
    assert sorted(balances.values()) == [992, 1000]
    assert all(account.startswith("acct_") and len(account) == 17 for account in balances)


async def test_insufficient_credits_is_402_and_charges_nothing(api: Api, state: SandboxState) -> None:
    await api.client.post("/_sandbox/reset", json={"balance": 10})
    assert (await api.create()).status_code == 201
    assert await api.credits() == 2
    error = assert_error(await api.create(), 402, "insufficient_credits")
    assert "needs 8" in error["message"]
    assert len((await api.state())["ledger"]) == 1
    assert len(state.snapshot()["tasks"]) == 1


async def test_idempotent_replay_returns_the_original_task(api: Api) -> None:
    headers = {**AUTH, "Idempotency-Key": "order-123-preview"}
    first = await api.create("a kite", headers=headers)
    assert first.status_code == 201
    again = await api.create("a kite", headers=headers)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert await api.credits() == 992
    assert len((await api.state())["tasks"]) == 1
    # Replays report the task as it is now.
    await api.finish(first.json()["id"])
    assert (await api.create("a kite", headers=headers)).json()["status"] == "succeeded"


async def test_idempotency_conflict_on_a_different_body(api: Api) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-1"}
    await api.create("a kite", headers=headers)
    assert_error(await api.create("a different kite", headers=headers), 409, "idempotency_conflict")
    assert await api.credits() == 992


async def test_idempotency_keys_are_per_account(api: Api) -> None:
    await api.create("a kite", headers={**AUTH, "Idempotency-Key": "shared"})
    other = await api.create("a kite", headers={**OTHER_AUTH, "Idempotency-Key": "shared"})
    assert other.status_code == 201
    assert len((await api.state())["tasks"]) == 2


async def test_an_invalid_request_does_not_consume_the_key(api: Api) -> None:
    headers = {**AUTH, "Idempotency-Key": "k-2"}
    assert_error(await api.create(None, headers=headers), 400, "validation_failed")
    assert (await api.create("now valid", headers=headers)).status_code == 201


async def test_rate_limit_answers_429_with_retry_after(api: Api, clock: ManualClock) -> None:
    await api.client.post("/_sandbox/config", json={"rate_limit": 2, "rate_window_seconds": 10})
    assert await api.credits() == 1000
    clock.advance(4)
    assert await api.credits() == 1000
    limited = await api.client.get("/api/v1/credits", headers=AUTH)
    assert_error(limited, 429, "rate_limited")
    assert limited.headers["retry-after"] == "6"
    # Per key: another key still gets through.
    assert await api.credits(OTHER_AUTH) == 1000
    clock.advance(6)
    assert await api.credits() == 1000
    # The public model list is not rate limited.
    for _ in range(3):
        assert (await api.client.get("/api/v1/models")).status_code == 200


async def test_rate_limit_is_off_by_default(api: Api) -> None:
    for _ in range(30):
        assert (await api.client.get("/api/v1/credits", headers=AUTH)).status_code == 200


async def test_create_body_fields_are_checked_before_charging(api: Api) -> None:
    response = await api.client.post("/api/v1/generations", json={"model": MODEL, "prompt": ""}, headers=AUTH)
    assert_error(response, 400, "validation_failed")
    assert await api.credits() == 1000
