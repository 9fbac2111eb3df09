"""The Tasks extension on the wire: real server, real uvicorn, real sandbox, a bare requester."""

from __future__ import annotations

import base64
import io
import logging
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret
from tests.tasks.conftest import EXTENSION, TASKS_KEY, Requester, serve, tasks_settings

# Generous: a fast sandbox finishes in well under a second; this only stops a hung test.
DEADLINE_SECONDS = 60.0


@pytest.fixture
def requester(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Requester]:
    """A requester on a server whose data directory is ``tmp_path / "data"``."""
    with serve(tasks_settings(sandbox, tmp_path)) as server:
        client = Requester(f"{server.base_url}/mcp")
        try:
            yield client
        finally:
            client.close()


def settle(requester: Requester, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        task = requester.task("tasks/get", task_id)
        if task["status"] != "working":
            return task
        assert time.monotonic() < deadline, task
        time.sleep(task["pollIntervalMs"] / 1000)


def charges(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    ledger = httpx2.get(f"{sandbox.base_url}/_sandbox/state").json()["ledger"]
    return [e for e in ledger if e["delta"] < 0]


def test_discover_advertises_the_extension_as_an_empty_object(requester: Requester) -> None:
    result = requester.call("server/discover", {})
    assert result["capabilities"]["extensions"][EXTENSION] == {}
    assert "tasks" not in result["capabilities"]  # the 2025-11-25 core tasks are not offered


def test_a_declared_generate_becomes_a_task_that_completes_with_the_blocking_result(
    requester: Requester, sandbox: RunningSandbox
) -> None:
    before = len(charges(sandbox))
    created = requester.tool("generate_image", {"prompt": "a lighthouse at dusk", "aspectRatio": "1:1"})
    assert created["resultType"] == "task"
    assert created["status"] == "working"
    assert {"taskId", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"} <= created.keys()
    assert isinstance(created["pollIntervalMs"], int) and created["pollIntervalMs"] > 0
    assert created["ttlMs"] == 24 * 3600 * 1000
    assert "result" not in created and "task" not in created
    handle = created["taskId"]

    # Durable before the reply: an immediate get resolves.
    first = requester.task("tasks/get", handle)
    assert first["resultType"] == "complete" and first["taskId"] == handle

    done = settle(requester, handle)
    assert done["status"] == "completed", done
    result = done["result"]
    assert result.get("isError") is not True
    kinds = [c["type"] for c in result["content"]]
    assert "image" in kinds and "resource_link" in kinds
    structured = result["structuredContent"]
    assert structured["status"] == "succeeded" and Path(structured["saved_path"]).is_file()
    assert len(charges(sandbox)) == before + 1

    # get_task answers for the handle too (and for the Rivya id the result names).
    by_handle = requester.tool("get_task", {"task_id": handle})
    assert by_handle["structuredContent"]["task_id"] == structured["task_id"]
    assert by_handle["structuredContent"]["saved_path"] == structured["saved_path"]
    assert len(charges(sandbox)) == before + 1


def test_a_finished_handle_says_its_outcome_and_the_first_poll_interval_is_the_first_look(
    requester: Requester,
) -> None:
    """Issue 23 item 16: a completed handle kept the follow-up's last "looking now" as its
    ``statusMessage``; and the create result's ``pollIntervalMs`` is Rivya's first look (2.5 s,
    ``client.FIRST_POLL_DELAY``, times the test's poll scale), as docs/tasks.md says."""
    from rivya_mcp.client import FIRST_POLL_DELAY

    created = requester.tool("generate_image", {"prompt": "a lighthouse at dawn [sandbox:seconds=2]"})
    assert created["pollIntervalMs"] == round(FIRST_POLL_DELAY * 1000 * 0.05)  # tasks_settings' poll_scale
    done = settle(requester, created["taskId"])
    rivya_id = done["result"]["structuredContent"]["task_id"]
    assert done["status"] == "completed"
    assert done["statusMessage"] == f"{rivya_id}: finished", done["statusMessage"]
    failed = settle(requester, requester.tool("generate_image", {"prompt": "[sandbox:fail] a kite"})["taskId"])
    assert failed["status"] == "completed" and failed["result"]["isError"] is True
    assert failed["statusMessage"].endswith(": failed"), failed["statusMessage"]


def test_an_undeclared_request_gets_todays_blocking_call(requester: Requester) -> None:
    result = requester.tool("generate_image", {"prompt": "a red kite"}, tasks=False)
    assert result.get("resultType", "complete") == "complete"
    assert "taskId" not in result
    assert result["structuredContent"]["status"] == "succeeded"


def test_bad_input_is_refused_before_any_task_or_charge(requester: Requester, sandbox: RunningSandbox) -> None:
    before = len(charges(sandbox))
    result = requester.tool("generate_image", {"prompt": "x", "aspectRatio": "2:1"})
    assert result.get("resultType", "complete") == "complete" and result["isError"] is True
    assert "taskId" not in result
    assert len(charges(sandbox)) == before


def test_an_upstream_failure_is_a_completed_task_with_an_error_result(requester: Requester) -> None:
    # The sandbox's documented magic token for a failed task (docs/sandbox.md).
    created = requester.tool("generate_image", {"prompt": "please [sandbox:moderated] this"})
    assert created["resultType"] == "task"
    done = settle(requester, created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["isError"] is True
    assert "error" not in done


def test_cancel_stops_following_and_a_terminal_cancel_is_an_idempotent_ack(
    requester: Requester, sandbox: RunningSandbox
) -> None:
    httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 30})
    try:
        created = requester.tool("generate_image", {"prompt": "a slow glacier"})
    finally:
        httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 0.4})
    handle = created["taskId"]
    ack = requester.task("tasks/cancel", handle)
    assert ack["resultType"] == "complete" and set(ack) <= {"resultType", "_meta"}
    task = requester.task("tasks/get", handle)
    assert task["status"] == "cancelled"
    assert "may still finish and is paid" in task["statusMessage"]
    assert "result" not in task
    # Cancelling again, or updating, is a plain ack; the state stays.
    requester.task("tasks/cancel", handle)
    requester.call("tasks/update", {"taskId": handle, "inputResponses": {"x": {}}}, name=handle)
    assert requester.task("tasks/get", handle)["status"] == "cancelled"


def test_undeclared_tasks_methods_get_32021_before_the_id_is_looked_at(requester: Requester) -> None:
    for method in ("tasks/get", "tasks/update", "tasks/cancel"):
        status, message = requester.raw(method, {"taskId": "gate-test"}, name="gate-test", tasks=False)
        assert message["error"]["code"] == -32021, (method, message)
        assert message["error"]["data"]["requiredCapabilities"] == {"extensions": {EXTENSION: {}}}
        assert status == 400


def test_unknown_ids_and_wrong_routing_headers_are_refused(requester: Requester) -> None:
    _, unknown = requester.raw("tasks/get", {"taskId": "no-such-task"}, name="no-such-task")
    assert unknown["error"]["code"] == -32602
    created = requester.tool("generate_image", {"prompt": "a pin"})
    handle = created["taskId"]
    _, wrong = requester.raw("tasks/get", {"taskId": handle}, name="someone-else")
    assert wrong["error"]["code"] == -32020
    _, missing = requester.raw("tasks/get", {"taskId": handle})
    assert missing["error"]["code"] == -32020
    assert requester.task("tasks/get", handle)["taskId"] == handle  # the right header still works


def test_listen_streams_task_updates_until_every_watched_task_is_terminal(
    requester: Requester, sandbox: RunningSandbox
) -> None:
    httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 1.5})
    try:
        created = requester.tool("generate_image", {"prompt": "a slow tide"})
    finally:
        httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 0.4})
    handle = created["taskId"]
    frames = requester.listen({"taskIds": [handle, "not-a-task"], "toolsListChanged": True})

    ack = frames[0]
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"] == {"taskIds": [handle], "toolsListChanged": True}  # accepted ids only
    final = frames[-1]
    assert "result" in final  # a graceful end once the task is terminal
    listen_id = final["id"]
    for frame in frames:
        carrier = frame.get("params") or frame.get("result")
        assert carrier["_meta"]["io.modelcontextprotocol/subscriptionId"] == listen_id
    updates = [f["params"] for f in frames if f.get("method") == "notifications/tasks"]
    assert updates[0]["taskId"] == handle and updates[0]["status"] == "working"
    assert len(updates) >= 2
    assert updates[-1]["status"] == "completed"
    assert updates[-1]["result"]["structuredContent"]["status"] == "succeeded"
    assert all(u["status"] == "working" for u in updates[:-1])


def test_listen_for_task_ids_needs_the_extension(requester: Requester) -> None:
    status, message = requester.raw("subscriptions/listen", {"notifications": {"taskIds": ["x"]}}, tasks=False)
    assert message["error"]["code"] == -32021, message
    assert status == 400


def test_the_key_never_reaches_a_task_result(requester: Requester) -> None:
    created = requester.tool("generate_image", {"prompt": "a key-shaped cloud"})
    done = settle(requester, created["taskId"])
    assert TASKS_KEY not in repr(done)


def test_past_its_ttl_a_handle_is_gone_but_the_image_is_not(requester: Requester, tmp_path: Path) -> None:
    created = requester.tool("generate_image", {"prompt": "an old photograph"})
    handle = created["taskId"]
    done = settle(requester, handle)
    rivya_id = done["result"]["structuredContent"]["task_id"]
    # A day and a second later, as the journal sees it (another connection, as another process would).
    journal = sqlite3.connect(tmp_path / "data" / "journal.sqlite3")
    born = datetime.now(UTC) - timedelta(milliseconds=created["ttlMs"], seconds=1)
    journal.execute("UPDATE mcp_tasks SET created_at = ? WHERE mcp_task_id = ?", (born.isoformat(), handle))
    journal.commit()
    journal.close()
    for method in ("tasks/get", "tasks/cancel", "tasks/update"):
        _, expired = requester.raw(method, {"taskId": handle}, name=handle)
        assert expired["error"]["code"] == -32602, (method, expired)
    again = requester.tool("get_task", {"task_id": rivya_id})
    assert again["structuredContent"]["saved_path"] == done["result"]["structuredContent"]["saved_path"]


def test_without_a_durable_handle_the_paid_task_is_still_named(
    requester: Requester, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """If the handle cannot be written after the create, the answer is the plain one: the Rivya id."""
    requester.call("server/discover", {})  # the server is up; its journal opens on first use
    requester.tool("get_credits", {})
    before = len(charges(sandbox))
    journal = sqlite3.connect(tmp_path / "data" / "journal.sqlite3")
    journal.execute("DROP TABLE mcp_tasks")  # every handle write now fails
    journal.commit()
    journal.close()
    answer = requester.tool("generate_image", {"prompt": "a paid-for sunrise"})
    assert answer.get("resultType", "complete") == "complete" and "taskId" not in answer
    rivya_id = answer["structuredContent"]["task_id"]
    assert rivya_id and f'get_task with task_id="{rivya_id}"' in answer["structuredContent"]["next_step"]
    finished = requester.tool("get_task", {"task_id": rivya_id, "wait_seconds": 30})
    assert finished["structuredContent"]["status"] == "succeeded"
    assert len(charges(sandbox)) == before + 1


def test_another_server_on_the_same_journal_answers_for_the_handle(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """Two servers (replicas) share one data directory: a handle made by one resolves on the other."""
    settings = tasks_settings(sandbox, tmp_path)
    before = len(charges(sandbox))
    with serve(settings) as first, serve(settings) as second:
        one, two = Requester(f"{first.base_url}/mcp"), Requester(f"{second.base_url}/mcp")
        try:
            created = one.tool("edit_image", {"prompt": "add a moon", "reference": _png_data_uri()})
            assert created["resultType"] == "task"
            done = settle(two, created["taskId"])
            assert done["status"] == "completed", done
            assert done["result"]["structuredContent"]["status"] == "succeeded"
            assert settle(one, created["taskId"])["result"] == done["result"]  # one result, whoever stored it
        finally:
            one.close()
            two.close()
    assert len(charges(sandbox)) == before + 1


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_server_with_another_key_on_the_same_journal_does_not_know_the_handle(
    sandbox: RunningSandbox, tmp_path: Path, request: pytest.FixtureRequest, store: str
) -> None:
    """Two servers, two keys, one journal (one data folder, or one database): handles stay their owner's.

    B gets "unknown task" for A's handle on tasks/get, tasks/update, tasks/cancel and in a listen,
    never A's result, and nothing B does moves it: A's handle completes with A's image.
    """
    shared: dict[str, Any] = {"data_dir": tmp_path / "data"}
    if store == "postgres":
        shared["database_url"] = Secret(str(request.getfixturevalue("postgres_url")))
    settings_a = tasks_settings(sandbox, tmp_path / "a", **shared)
    settings_b = tasks_settings(sandbox, tmp_path / "b", api_key=Secret(TASKS_KEY + "_other"), **shared)
    with serve(settings_a) as server_a, serve(settings_b) as server_b:
        a, b = Requester(f"{server_a.base_url}/mcp"), Requester(f"{server_b.base_url}/mcp")
        try:
            created = a.tool("generate_image", {"prompt": "a lamp only its owner may see"})
            handle = created["taskId"]
            for method in ("tasks/get", "tasks/update", "tasks/cancel"):
                _, refused = b.raw(method, {"taskId": handle}, name=handle)
                assert refused["error"]["code"] == -32602, (method, refused)
                assert "result" not in refused
            frames = b.listen({"taskIds": [handle]})
            assert frames[0]["params"]["notifications"]["taskIds"] == []
            # get_task does not resolve another key's handle either: it is no task id of B's.
            answer = b.tool("get_task", {"task_id": handle})
            assert answer["isError"] is True and "saved_path" not in repr(answer)

            done = settle(a, handle)
            assert done["status"] == "completed", done
            structured = done["result"]["structuredContent"]
            assert structured["status"] == "succeeded" and Path(structured["saved_path"]).is_file()
            _, after = b.raw("tasks/get", {"taskId": handle}, name=handle)
            assert after["error"]["code"] == -32602 and structured["saved_path"] not in repr(after)
        finally:
            a.close()
            b.close()


def _png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# -- a cancel, a completed handle, and a follow-up that breaks (issue 23 item 19) ----------------

# One status-request turn of a follow-up at this server's poll scale is at most 10 s × 0.05.
LONGEST_TURN_SECONDS = 0.5


def _rivya_id(sandbox: RunningSandbox, prompt: str) -> str:
    [task] = [t for t in sandbox.state.snapshot()["tasks"] if t["prompt"] == prompt]
    return str(task["id"])


def _status_requests(sandbox: RunningSandbox, task_id: str) -> list[float]:
    """When the sandbox received each status request for ``task_id`` (its request log)."""
    log = httpx2.get(f"{sandbox.base_url}/_sandbox/requests", timeout=5).json()["requests"]
    return [r["start"] for r in log if r["method"] == "GET" and r["path"] == f"/api/v1/generations/{task_id}"]


def _until(condition: Any, what: str, *, within: float = DEADLINE_SECONDS) -> None:
    """Wait, bounded, for ``condition()``; fail saying what never happened."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        time.sleep(0.02)


@pytest.fixture
def slow_tasks(sandbox: RunningSandbox) -> Iterator[None]:
    """Tasks created meanwhile run for 30 sandbox seconds; faults cleared afterwards."""
    httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 30}).raise_for_status()
    try:
        yield
    finally:
        httpx2.post(f"{sandbox.base_url}/_sandbox/config", json={"processing_seconds": 0.4}).raise_for_status()
        httpx2.delete(f"{sandbox.base_url}/_sandbox/faults").raise_for_status()


@pytest.mark.usefixtures("slow_tasks")
def test_after_a_cancel_the_follow_up_asks_rivya_nothing_more(requester: Requester, sandbox: RunningSandbox) -> None:
    """Judged from the sandbox's side: its request log (status requests) and a rule counting result
    downloads. A twin handle, created beside the cancelled one, is polled and downloaded meanwhile."""
    cancelled = requester.tool("generate_image", {"prompt": "a comet nobody waits for"})["taskId"]
    twin = requester.tool("generate_image", {"prompt": "a comet somebody waits for"})["taskId"]
    cancelled_id = _rivya_id(sandbox, "a comet nobody waits for")
    twin_id = _rivya_id(sandbox, "a comet somebody waits for")
    _until(lambda: bool(_status_requests(sandbox, cancelled_id)), "a first status request of the cancelled task")

    requester.task("tasks/cancel", cancelled)
    acknowledged = time.time()
    counted = {"path": "/_sandbox/media/", "delay_ms": 1}  # lets every download through, counting it
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [counted]}).raise_for_status()
    httpx2.post(f"{sandbox.base_url}/_sandbox/clock", json={"advance": 60}).raise_for_status()  # both finish

    assert settle(requester, twin)["status"] == "completed"
    time.sleep(2 * LONGEST_TURN_SECONDS)  # a follow-up still running would have had its turn by now
    assert [t for t in _status_requests(sandbox, twin_id) if t > acknowledged], "the twin was not followed"
    late = [t for t in _status_requests(sandbox, cancelled_id) if t > acknowledged]
    assert late == [], f"{len(late)} status request(s) after the cancel"
    rules = httpx2.get(f"{sandbox.base_url}/_sandbox/faults").json()["rules"]
    assert rules[0]["hits"] == 1  # the twin's image; none for the cancelled task
    assert requester.task("tasks/get", cancelled)["status"] == "cancelled"


def test_cancelling_a_completed_handle_keeps_it_completed_with_its_result(requester: Requester) -> None:
    handle = requester.tool("generate_image", {"prompt": "a finished fresco"})["taskId"]
    done = settle(requester, handle)
    assert done["status"] == "completed" and done["result"]["structuredContent"]["status"] == "succeeded"
    ack = requester.task("tasks/cancel", handle)
    assert ack["resultType"] == "complete"
    after = requester.task("tasks/get", handle)
    assert after["status"] == "completed" and after["result"] == done["result"]
    assert after.get("statusMessage") == done.get("statusMessage")


@pytest.mark.usefixtures("slow_tasks")
def test_a_follow_up_that_breaks_after_a_cancel_leaves_the_handle_cancelled(
    sandbox: RunningSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two servers on one journal (replicas): B cancels A's running handle; A's follow-up, still in
    its round, then hits an unexpected error (the journal's task table is gone). Its "failed" must
    not overwrite the cancel: terminal states are absorbing."""
    caplog.set_level(logging.DEBUG, logger="rivya_mcp.server")
    settings = tasks_settings(sandbox, tmp_path)
    with serve(settings) as first, serve(settings) as second:
        a, b = Requester(f"{first.base_url}/mcp"), Requester(f"{second.base_url}/mcp")
        try:
            handle = a.tool("generate_image", {"prompt": "a fresco that breaks"})["taskId"]
            task_id = _rivya_id(sandbox, "a fresco that breaks")
            _until(lambda: bool(_status_requests(sandbox, task_id)), "A's follow-up polling the task")
            b.task("tasks/cancel", handle)  # B has no follow-up of it: only the journal changes
            assert b.task("tasks/get", handle)["status"] == "cancelled"

            journal = sqlite3.connect(tmp_path / "data" / "journal.sqlite3")
            journal.execute("ALTER TABLE tasks RENAME TO tasks_elsewhere")  # A's next journal read fails
            journal.commit()
            journal.close()
            httpx2.post(f"{sandbox.base_url}/_sandbox/clock", json={"advance": 60}).raise_for_status()
            ended = f"the follow-up of handle {handle[:8]}… ended"
            _until(lambda: any(ended in r.getMessage() for r in caplog.records), "A's follow-up ending")
            assert any("follow-up of" in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
            task = b.task("tasks/get", handle)
            assert task["status"] == "cancelled" and "error" not in task and "result" not in task, task
        finally:
            a.close()
            b.close()
