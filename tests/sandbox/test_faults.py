"""Fault rules: status/code/retry_after, delay, drop, malformed, phase "after", matching and limits."""

from __future__ import annotations

import time
from typing import Any

import httpx2
import pytest

from rivya_mcp.sandbox import ConnectionDropped

from .conftest import AUTH, Api, assert_error

pytestmark = pytest.mark.anyio


async def set_rules(api: Api, *rules: dict[str, Any]) -> httpx2.Response:
    return await api.client.post("/_sandbox/faults", json={"rules": list(rules)})


async def test_status_fault_with_code_and_retry_after_applies_times(api: Api) -> None:
    response = await set_rules(
        api, {"path": "/api/v1/credits", "status": 503, "code": "public_api_disabled", "retry_after": 7, "times": 2}
    )
    assert response.status_code == 200
    for _ in range(2):
        faulted = await api.client.get("/api/v1/credits", headers=AUTH)
        assert_error(faulted, 503, "public_api_disabled")
        assert faulted.headers["retry-after"] == "7"
    assert await api.credits() == 1000
    assert (await api.client.get("/_sandbox/faults")).json()["rules"][0]["hits"] == 2


async def test_status_fault_defaults_its_code(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/generations", "method": "POST", "status": 429, "times": 1})
    assert (await api.client.get("/api/v1/credits", headers=AUTH)).status_code == 200  # method does not match
    assert_error(await api.create(), 429, "rate_limited")
    assert (await api.create()).status_code == 201


async def test_delay_fault_waits_then_answers(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/credits", "delay_ms": 150, "times": 1})
    started = time.perf_counter()
    assert await api.credits() == 1000
    assert time.perf_counter() - started >= 0.14


async def test_drop_fault_in_process_raises_a_protocol_error(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/credits", "drop": True, "times": 1})
    with pytest.raises(httpx2.RemoteProtocolError) as caught:
        await api.client.get("/api/v1/credits", headers=AUTH)
    assert isinstance(caught.value, ConnectionDropped)
    assert await api.credits() == 1000


async def test_malformed_fault_sends_invalid_json(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/generations/", "malformed": True, "times": 1})
    task_id = (await api.create()).json()["id"]
    response = await api.client.get(f"/api/v1/generations/{task_id}", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()
    assert (await api.get(task_id))["id"] == task_id


async def test_request_id_and_body_faults_answer_what_the_rule_says(api: Api) -> None:
    await set_rules(
        api,
        {"path": "/api/v1/credits", "status": 400, "request_id": "req_chosen", "times": 1},
        {"path": "/api/v1/credits", "body": {"id": "task_x", "status": "failed"}, "request_id": "req_two", "times": 1},
        {"path": "/api/v1/credits", "body": {"odd": True}, "status": 418, "times": 1},
    )
    refused = await api.client.get("/api/v1/credits", headers=AUTH)
    assert_error(refused, 400, "validation_failed")
    assert refused.json()["error"]["requestId"] == refused.headers["x-request-id"] == "req_chosen"
    answered = await api.client.get("/api/v1/credits", headers=AUTH)
    assert answered.status_code == 200 and answered.json() == {"id": "task_x", "status": "failed"}
    assert answered.headers["x-request-id"] == "req_two"
    teapot = await api.client.get("/api/v1/credits", headers=AUTH)
    assert teapot.status_code == 418 and teapot.json() == {"odd": True}
    assert teapot.headers["x-request-id"].startswith("req_")
    assert await api.credits() == 1000


async def test_phase_after_charges_once_but_loses_the_answer(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/generations", "method": "POST", "status": 502, "phase": "after", "times": 1})
    headers = {**AUTH, "Idempotency-Key": "lost-answer-1"}
    assert_error(await api.create("a kite", headers=headers), 502, "internal_error")
    assert await api.credits() == 992  # processed and charged
    retried = await api.create("a kite", headers=headers)
    assert retried.status_code == 200  # the retry replays the task the lost answer created
    state = await api.state()
    assert len(state["tasks"]) == 1 and retried.json()["id"] == state["tasks"][0]["id"]
    assert [e["delta"] for e in state["ledger"]] == [-8]


async def test_phase_after_drop(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/generations", "method": "POST", "drop": True, "phase": "after", "times": 1})
    with pytest.raises(httpx2.RemoteProtocolError):
        await api.create()
    assert len((await api.state())["tasks"]) == 1


async def test_phase_after_delay_returns_the_real_answer(api: Api) -> None:
    await set_rules(api, {"path": "/api/v1/credits", "delay_ms": 20, "phase": "after", "times": 1})
    assert await api.credits() == 1000


async def test_first_matching_rule_wins_and_control_routes_are_never_faulted(api: Api) -> None:
    await set_rules(
        api,
        {"path": "/", "status": 500, "code": "boom"},
        {"path": "/api/v1/credits", "status": 503},
    )
    assert_error(await api.client.get("/api/v1/credits", headers=AUTH), 500, "boom")
    assert (await api.client.get("/_sandbox/state")).status_code == 200
    assert (await api.client.get("/_sandbox/faults")).status_code == 200
    cleared = await api.client.delete("/_sandbox/faults")
    assert cleared.json() == {"rules": []}
    assert await api.credits() == 1000


async def test_media_is_faulted_only_by_rules_that_name_it(api: Api) -> None:
    done = await api.finish((await api.create()).json()["id"])
    url = done["result"]["primary_url"]
    await set_rules(api, {"path": "/", "status": 500})
    assert (await api.client.get(url)).status_code == 200
    await set_rules(api, {"path": "/_sandbox/media/", "status": 403, "code": "url_expired", "times": 1})
    assert_error(await api.client.get(url), 403, "url_expired")
    assert (await api.client.get(url)).status_code == 200


async def test_truncate_cuts_the_real_answer_short_without_a_content_length(api: Api) -> None:
    done = await api.finish((await api.create()).json()["id"])
    url = done["result"]["primary_url"]
    whole = (await api.client.get(url)).content
    assert len(whole) > 100
    await set_rules(api, {"path": "/_sandbox/media/", "truncate": 100, "phase": "after", "times": 1})
    cut = await api.client.get(url)
    assert cut.status_code == 200 and cut.content == whole[:100]
    assert "content-length" not in cut.headers  # nothing in the framing says it is short
    assert (await api.client.get(url)).content == whole  # times: 1, then the real image again


async def test_probability_uses_the_seeded_rng(api: Api) -> None:
    async def pattern() -> list[int]:
        await api.client.post("/_sandbox/reset")
        await set_rules(api, {"path": "/api/v1/credits", "status": 503, "probability": 0.5})
        return [(await api.client.get("/api/v1/credits", headers=AUTH)).status_code for _ in range(20)]

    first = await pattern()
    assert first == await pattern()
    assert set(first) == {200, 503}


@pytest.mark.parametrize(
    "rule",
    [
        {"path": "/api/", "status": 503, "drop": True},
        {"path": "/api/"},
        {"path": "api", "status": 500},
        {"path": "/api/", "status": 99},
        {"path": "/api/", "status": 500, "times": 0},
        {"path": "/api/", "status": 500, "probability": 2},
        {"path": "/api/", "status": 500, "phase": "during"},
        {"path": "/api/", "status": 500, "colour": "red"},
        {"path": "/api/", "body": ["not", "an", "object"]},
        {"path": "/api/", "body": {}, "drop": True},
        {"path": "/api/", "status": 500, "request_id": 7},
        {"path": "/api/", "truncate": 10},
        {"path": "/api/", "truncate": -1, "phase": "after"},
        {"path": "/api/", "truncate": 10, "status": 500, "phase": "after"},
    ],
)
async def test_bad_rules_are_refused(api: Api, rule: dict[str, Any]) -> None:
    assert_error(await set_rules(api, rule), 400, "validation_failed")
    assert (await api.client.get("/_sandbox/faults")).json() == {"rules": []}
