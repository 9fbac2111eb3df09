"""One identity per person, on the real HTTP app: two people never see each other's tasks, images or
handles, and each path is tried by the other person while the owner still gets it.

Behind the team's issuer (oidc-provider started here; two of its clients are two people) both spend
the operator's one Rivya key, so only the person recorded with each row keeps them apart: the
hardest case. The paths: ``list_tasks``, the ``rivya://tasks`` resource, ``get_task`` (by Rivya id
and by handle), ``resources/read`` of the image, ``edit_image`` of the other's task,
``tasks/get``, ``tasks/cancel``, ``subscriptions/listen``, a webhook-applied result, and the daily
budget (per person). Every request is a raw 2026-07-28 request with the person's access token
(``tests.tasks.conftest.Requester``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, account_id, start_sandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests.identity._apps import serve_late
from tests.identity.conftest import AuthServer
from tests.server._threaded import ThreadedServer
from tests.tasks.conftest import Requester

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.4, webhooks_allow_loopback=True)
DEADLINE_SECONDS = 60.0
PER_IMAGE = 8
GENERATION_POLLS = {"method": "GET", "path": "/api/v1/generations/", "delay_ms": 0}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


@dataclass
class People:
    url: str
    operator_key: str
    ada: Requester
    bob: Requester

    def close(self) -> None:
        self.ada.close()
        self.bob.close()


def issuer_settings(
    sandbox: RunningSandbox, workdir: Path, authserver: AuthServer, url: str, **changes: Any
) -> Settings:
    return Settings(
        api_key=Secret(changes.pop("operator_key")),
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=0.05,
        public_url=url,
        oauth_issuer=authserver.issuer,
        oauth_scopes=("images",),
    ).with_changes(**changes)


def people_on(url: str, authserver: AuthServer, operator_key: str) -> People:
    resource = f"{url}/mcp"
    return People(
        url,
        operator_key,
        Requester(resource, token=authserver.token(resource, client="svc")),
        Requester(resource, token=authserver.token(resource, client="svc-b")),
    )


@pytest.fixture
def people(sandbox: RunningSandbox, tmp_path: Path, authserver: AuthServer) -> Iterator[People]:
    key = f"rvya_sk_people_{uuid.uuid4().hex}"
    server = serve_late(
        lambda url: build_http_app(
            issuer_settings(sandbox, tmp_path, authserver, url, operator_key=key), transport="http"
        )
    )
    with server:
        both = people_on(server.base_url, authserver, key)
        try:
            yield both
        finally:
            both.close()


def _text(result: dict[str, Any]) -> str:
    return "\n".join(c.get("text", "") for c in result.get("content", []))


def _code(result: dict[str, Any]) -> str:
    """The failure's code, as an error result's text starts: ``Error (<code>): …``."""
    assert result.get("isError") is True, result
    return _text(result).split(")", 1)[0].removeprefix("Error (")


def _link(result: dict[str, Any]) -> str:
    return str(next(c["uri"] for c in result["content"] if c["type"] == "resource_link"))


def _charges(sandbox: RunningSandbox, key: str) -> int:
    ledger = httpx2.get(f"{sandbox.base_url}/_sandbox/state", timeout=10).json()["ledger"]
    return sum(1 for e in ledger if e["delta"] < 0 and e["account"] == account_id(key))


def _error(requester: Requester, method: str, params: dict[str, Any], *, name: str) -> dict[str, Any]:
    _, message = requester.raw(method, params, name=name)
    assert "result" not in message, message
    error: dict[str, Any] = message["error"]
    return error


def _settle(requester: Requester, handle: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        task = requester.task("tasks/get", handle)
        if task["status"] != "working":
            return task
        assert time.monotonic() < deadline, task
        time.sleep(task["pollIntervalMs"] / 1000)


SECRET_PROMPT = "Ada's secret lighthouse at dusk"


def test_another_person_gets_unknown_task_on_every_path_and_the_owner_gets_each(
    people: People, sandbox: RunningSandbox
) -> None:
    ada, bob = people.ada, people.bob
    made = ada.tool("generate_image", {"prompt": SECRET_PROMPT, "aspectRatio": "1:1"}, tasks=False)
    assert made.get("isError") is not True, made
    task_id, image = made["structuredContent"]["task_id"], _link(made)
    # A handle (Tasks extension) on a task that keeps running, for tasks/get, cancel and listen.
    created = ada.tool("generate_image", {"prompt": "Ada's slow harbour [sandbox:seconds=30]"})
    assert created["resultType"] == "task"
    handle = created["taskId"]
    charged = _charges(sandbox, people.operator_key)
    assert charged == 2

    # --- Bob, path by path: nothing of Ada's, and no sign that it exists --------------------------
    listing = bob.tool("list_tasks", {}, tasks=False)
    assert listing["structuredContent"]["count"] == 0 and task_id not in _text(listing)
    tasks_resource = bob.call("resources/read", {"uri": "rivya://tasks"}, name="rivya://tasks")
    assert task_id not in str(tasks_resource) and "lighthouse" not in str(tasks_resource)

    by_id = bob.tool("get_task", {"task_id": task_id, "wait_seconds": 0}, tasks=False)
    assert by_id["isError"] is True and _code(by_id) == "not_found"
    assert "lighthouse" not in str(by_id) and "saved_path" not in _text(by_id)
    nobody = bob.tool("get_task", {"task_id": "task_nobody_has_this_id", "wait_seconds": 0}, tasks=False)
    # The same answer as for a task that does not exist at all, with only the id changed.
    assert _text(by_id).replace(task_id, "X") == _text(nobody).replace("task_nobody_has_this_id", "X")
    by_handle = bob.tool("get_task", {"task_id": handle, "wait_seconds": 0}, tasks=False)
    assert by_handle["isError"] is True and _code(by_handle) == "not_found"

    read = _error(bob, "resources/read", {"uri": image}, name=image)
    made_up = "rivya://images/2026-01-01_task_nobody_x.jpg"
    missing = _error(bob, "resources/read", {"uri": made_up}, name=made_up)
    name, other = image.rsplit("/", 1)[1], made_up.rsplit("/", 1)[1]
    assert read["code"] == missing["code"] and read["message"].replace(name, "X") == missing["message"].replace(
        other, "X"
    )

    edit = bob.tool("edit_image", {"prompt": "make it night", "reference": task_id}, tasks=False)
    assert edit["isError"] is True and _code(edit) == "invalid_arguments"

    got = _error(bob, "tasks/get", {"taskId": handle}, name=handle)
    cancelled = _error(bob, "tasks/cancel", {"taskId": handle}, name=handle)
    updated = _error(bob, "tasks/update", {"taskId": handle, "inputResponses": {}}, name=handle)
    assert got["code"] == cancelled["code"] == updated["code"] == -32602
    frames = bob.listen({"taskIds": [handle]})
    assert frames[0]["params"]["notifications"]["taskIds"] == []
    assert not [f for f in frames if f.get("method") == "notifications/tasks"]
    assert _charges(sandbox, people.operator_key) == charged  # Bob's tries spent nothing

    # --- Ada still gets every one of them ----------------------------------------------------------
    mine = ada.tool("list_tasks", {}, tasks=False)
    assert {t["task_id"] for t in mine["structuredContent"]["tasks"]} >= {task_id}
    assert task_id in str(ada.call("resources/read", {"uri": "rivya://tasks"}, name="rivya://tasks"))
    again = ada.tool("get_task", {"task_id": task_id, "wait_seconds": 0}, tasks=False)
    assert again.get("isError") is not True and again["structuredContent"]["saved_path"]
    contents = ada.call("resources/read", {"uri": image}, name=image)["contents"]
    assert contents[0]["blob"] and contents[0]["uri"] == image
    assert ada.task("tasks/get", handle)["status"] == "working"  # Bob's cancel changed nothing
    by_her_handle = ada.tool("get_task", {"task_id": handle, "wait_seconds": 0}, tasks=False)
    assert by_her_handle["structuredContent"]["task_id"] != handle  # resolved to the Rivya task
    assert ada.task("tasks/cancel", handle)["resultType"] == "complete"
    assert ada.task("tasks/get", handle)["status"] == "cancelled"
    heard = ada.listen({"taskIds": [handle]})
    assert heard[0]["params"]["notifications"]["taskIds"] == [handle]
    assert [f["params"]["status"] for f in heard if f.get("method") == "notifications/tasks"] == ["cancelled"]

    # Bob's own work is his alone.
    his = bob.tool("generate_image", {"prompt": "Bob's kite", "aspectRatio": "1:1"}, tasks=False)
    assert his.get("isError") is not True
    assert {t["prompt"] for t in bob.tool("list_tasks", {}, tasks=False)["structuredContent"]["tasks"]} == {
        "Bob's kite"
    }
    assert "Bob's kite" not in str(ada.tool("list_tasks", {}, tasks=False))


def test_an_idempotency_key_of_another_person_finds_nothing_of_theirs(people: People, sandbox: RunningSandbox) -> None:
    arguments = {"prompt": SECRET_PROMPT, "aspectRatio": "1:1", "idempotency_key": "shared-key-1"}
    first = people.ada.tool("generate_image", arguments, tasks=False)
    assert first.get("isError") is not True
    replay = people.bob.tool("generate_image", arguments, tasks=False)
    assert replay["isError"] is True and _code(replay) == "idempotency_conflict"
    assert first["structuredContent"]["task_id"] not in _text(replay) and "lighthouse" not in _text(replay)
    assert _charges(sandbox, people.operator_key) == 1


def test_the_daily_budget_is_per_person(sandbox: RunningSandbox, tmp_path: Path, authserver: AuthServer) -> None:
    key = f"rvya_sk_people_{uuid.uuid4().hex}"

    def build(url: str) -> Any:
        settings = issuer_settings(
            sandbox, tmp_path, authserver, url, operator_key=key, budget_credits_per_day=PER_IMAGE
        )
        return build_http_app(settings, transport="http")

    with serve_late(build) as server:
        people = people_on(server.base_url, authserver, key)
        try:
            call = {"prompt": "a lighthouse", "wait_seconds": 0}
            assert people.ada.tool("generate_image", call, tasks=False).get("isError") is not True
            over = people.ada.tool("generate_image", call, tasks=False)
            assert over["isError"] is True and _code(over) == "budget_exceeded"
            assert "your daily budget of 8 credits has 0 left" in _text(over)
            assert people.bob.tool("generate_image", call, tasks=False).get("isError") is not True
            credits = people.ada.tool("get_credits", {}, tasks=False)
            assert credits["structuredContent"]["spent_today"] == PER_IMAGE
            assert "You spent 8 credits today" in _text(credits)
        finally:
            people.close()
    assert _charges(sandbox, key) == 2


def _polls(sandbox: RunningSandbox) -> int:
    rules = httpx2.get(f"{sandbox.base_url}/_sandbox/faults", timeout=10).json()["rules"]
    return int(next(r["hits"] for r in rules if r.get("path") == GENERATION_POLLS["path"]))


def test_a_webhook_applies_the_result_to_its_own_person(
    sandbox: RunningSandbox, tmp_path: Path, authserver: AuthServer
) -> None:
    key = f"rvya_sk_people_{uuid.uuid4().hex}"
    # The documented pace (slowed threefold with webhooks): a poll could not finish it in time.
    build = lambda url: build_http_app(  # noqa: E731
        issuer_settings(sandbox, tmp_path, authserver, url, operator_key=key, poll_scale=1.0), transport="http"
    )
    with serve_late(build) as server:
        deadline = time.monotonic() + DEADLINE_SECONDS
        while not any(
            e["url"] == f"{server.base_url}/webhooks/rivya" for e in sandbox.state.webhooks.listing(account_id(key))
        ):
            assert time.monotonic() < deadline, "the server never registered its webhook endpoint"
            time.sleep(0.05)  # the server registers in its own thread
        people = people_on(server.base_url, authserver, key)
        try:
            httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [GENERATION_POLLS]}, timeout=10)
            made = people.ada.tool("generate_image", {"prompt": SECRET_PROMPT, "wait_seconds": 0}, tasks=False)
            task_id = made["structuredContent"]["task_id"]
            while not (saved := _saved(people.ada, task_id)):
                assert time.monotonic() < deadline, "the delivery never saved the image"
                time.sleep(0.05)
            assert _polls(sandbox) == 0  # the delivery, not a poll, finished it
            assert Path(saved).is_file()
            assert task_id not in str(people.bob.tool("list_tasks", {}, tasks=False))
            image = _link(people.ada.tool("get_task", {"task_id": task_id, "wait_seconds": 0}, tasks=False))
            assert people.ada.call("resources/read", {"uri": image}, name=image)["contents"][0]["blob"]
            _error(people.bob, "resources/read", {"uri": image}, name=image)
        finally:
            httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": []}, timeout=10)
            people.close()


def _saved(requester: Requester, task_id: str) -> str | None:
    listing = requester.tool("list_tasks", {}, tasks=False)["structuredContent"]["tasks"]
    return next((t["saved_path"] for t in listing if t["task_id"] == task_id and t["saved_path"]), None)


def test_two_replicas_on_postgresql_agree_whose_task_is_whose(
    sandbox: RunningSandbox, tmp_path: Path, authserver: AuthServer, postgres_url: str
) -> None:
    key = f"rvya_sk_people_{uuid.uuid4().hex}"
    shared = {"operator_key": key, "database_url": Secret(postgres_url), "lease_seconds": 1.5}
    first = serve_late(
        lambda url: build_http_app(
            issuer_settings(sandbox, tmp_path / "a", authserver, url, **dict(shared)), transport="http"
        )
    )
    with first:
        public = first.base_url  # what the balancer answers to; replica B is reached at its own port
        settings_b = issuer_settings(sandbox, tmp_path / "b", authserver, public, **dict(shared))
        with ThreadedServer(build_http_app(settings_b, transport="http")) as second:
            resource = f"{public}/mcp"
            ada_token = authserver.token(resource, client="svc")
            bob_token = authserver.token(resource, client="svc-b")
            on_a = Requester(f"{public}/mcp", token=ada_token)
            ada_on_b = Requester(f"{second.base_url}/mcp", token=ada_token)
            bob_on_b = Requester(f"{second.base_url}/mcp", token=bob_token)
            try:
                made = on_a.tool("generate_image", {"prompt": SECRET_PROMPT, "aspectRatio": "1:1"}, tasks=False)
                task_id, image = made["structuredContent"]["task_id"], _link(made)
                handle = on_a.tool("generate_image", {"prompt": "slow [sandbox:seconds=30]"})["taskId"]
                # Bob on the other replica: the identity travelled with the rows.
                assert bob_on_b.tool("list_tasks", {}, tasks=False)["structuredContent"]["count"] == 0
                bob_get = bob_on_b.tool("get_task", {"task_id": task_id, "wait_seconds": 0}, tasks=False)
                assert bob_get["isError"] is True and _code(bob_get) == "not_found"
                _error(bob_on_b, "resources/read", {"uri": image}, name=image)
                assert _error(bob_on_b, "tasks/get", {"taskId": handle}, name=handle)["code"] == -32602
                assert _error(bob_on_b, "tasks/cancel", {"taskId": handle}, name=handle)["code"] == -32602
                assert bob_on_b.listen({"taskIds": [handle]})[0]["params"]["notifications"]["taskIds"] == []
                # Ada on the other replica gets hers, the image from the shared database.
                assert task_id in str(ada_on_b.tool("list_tasks", {}, tasks=False))
                assert ada_on_b.call("resources/read", {"uri": image}, name=image)["contents"][0]["blob"]
                assert ada_on_b.task("tasks/get", handle)["status"] == "working"
                assert ada_on_b.task("tasks/cancel", handle)["resultType"] == "complete"
            finally:
                for requester in (on_a, ada_on_b, bob_on_b):
                    requester.close()


async def _over_sse(url: str, token: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    from mcp import Client
    from mcp.client.sse import sse_client

    results = []
    async with Client(sse_client(f"{url}/sse", headers={"Authorization": f"Bearer {token}"})) as client:
        for name, arguments in calls:
            results.append(await client.call_tool(name, arguments))
    return results


def test_the_legacy_sse_transport_keeps_people_apart(
    sandbox: RunningSandbox, tmp_path: Path, authserver: AuthServer
) -> None:
    import anyio

    key = f"rvya_sk_people_{uuid.uuid4().hex}"
    build = lambda url: build_http_app(  # noqa: E731
        issuer_settings(sandbox, tmp_path, authserver, url, operator_key=key), transport="sse"
    )
    with serve_late(build) as server:
        url = server.base_url
        resource = f"{url}/mcp"
        ada, bob = authserver.token(resource, client="svc"), authserver.token(resource, client="svc-b")
        [made] = anyio.run(_over_sse, url, ada, [("generate_image", {"prompt": SECRET_PROMPT, "wait_seconds": 0})])
        assert not made.is_error and made.structured_content is not None
        task_id = made.structured_content["task_id"]
        listing, lookup = anyio.run(
            _over_sse, url, bob, [("list_tasks", {}), ("get_task", {"task_id": task_id, "wait_seconds": 0})]
        )
        [mine] = anyio.run(_over_sse, url, ada, [("list_tasks", {})])
    assert listing.structured_content is not None and listing.structured_content["count"] == 0
    assert lookup.is_error and "Error (not_found)" in lookup.content[0].text  # type: ignore[union-attr]
    assert mine.structured_content is not None and task_id in str(mine.structured_content)
