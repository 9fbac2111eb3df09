"""The recovery pass in process: what it re-sends, what it leaves alone, and how it shares a task.

The journal is seeded as a stopped server would have left it; a new server (in-memory client,
real sandbox over loopback) then starts on the same data directory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.journal import TaskJournal
from rivya_mcp.manifest import get_manifest, to_wire_params, validate_arguments
from rivya_mcp.server import build_server
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import Recovery, Runtime, TaskService
from tests.faults._process import eventually, journal_entries
from tests.faults.conftest import Account, advance_clock, data_of, fault_hits, set_faults

pytestmark = pytest.mark.anyio

MANIFEST = get_manifest("flux-kontext-max")
# How long a state the test waits for may take: far more than it needs (milliseconds), far less
# than the per-test timeout, so a bug that never reaches the state fails here, saying which.
WAIT_SECONDS = 10.0


@asynccontextmanager
async def within(what: str, seconds: float = WAIT_SECONDS) -> AsyncIterator[None]:
    """Fail with ``what`` did not happen, rather than hang, if the block takes longer than ``seconds``."""
    try:
        with anyio.fail_after(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"not within {seconds:g} s: {what}") from None


def _journal(settings: Settings, **kwargs: Any) -> TaskJournal:
    # Scoped as the server's own: it re-sends only what its base URL and key recorded.
    path = Path(settings.data_dir) / "journal.sqlite3"
    return TaskJournal(path, upstream=settings.base_url, api_key=settings.api_key, **kwargs)


def _record_intent(journal: TaskJournal, key: str, prompt: str) -> dict[str, Any]:
    """What the server records before a create POST: the exact wire body under the key."""
    params = to_wire_params(MANIFEST, "generate", validate_arguments(MANIFEST, "generate", {"prompt": prompt}))
    journal.record_intent(
        idempotency_key=key, model=MANIFEST.id, mode="generate", prompt=prompt, params=params, reference=None
    )
    return params


def _by_key(settings: Settings) -> dict[str, Any]:
    return {e.idempotency_key: e for e in journal_entries(settings)}


async def test_unanswered_creates_are_resent_and_old_or_told_ones_are_not(account: Account) -> None:
    settings = account.settings()
    with _journal(settings) as journal:
        # Never reached the API (the server died before the POST left): re-sending creates it.
        _record_intent(journal, "lost-1", "A windmill at noon")
        # The agent was told about these: not re-sent by recovery.
        _record_intent(journal, "refused-1", "A refused request")
        journal.reject_intent("refused-1", error_code="insufficient_credits", error_message="Not enough credits.")
        _record_intent(journal, "unknown-1", "An unconfirmed request")
        journal.end_intent("unknown-1", status="unconfirmed", error_code="APIConnectionError", error_message="x")
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    with _journal(settings, now=lambda: two_days_ago) as old_journal:
        _record_intent(old_journal, "stale-1", "A request from the day before yesterday")

    async with Client(build_server(settings)) as client:
        await eventually(lambda: bool(_by_key(settings)["lost-1"].saved_paths), what="the re-sent task to be saved")
        listing = data_of(await client.call_tool("list_tasks", {}))

    entries = _by_key(settings)
    [task] = account.tasks()
    assert (task["idempotency_key"], task["prompt"]) == ("lost-1", "A windmill at noon")
    assert task["client_request_id"] == "lost-1"  # the intent's own id, so Rivya's task can be matched to it
    assert (entries["lost-1"].task_id, entries["lost-1"].status) == (task["id"], "succeeded")
    # Too old to re-send (Rivya may have forgotten its key): reported unconfirmed, with what to check.
    assert (entries["stale-1"].status, entries["stale-1"].error_code) == ("unconfirmed", "intent_expired")
    assert "client_request_id 'stale-1'" in (entries["stale-1"].error_message or "")
    assert (entries["refused-1"].status, entries["unknown-1"].status) == ("rejected", "unconfirmed")
    statuses = {t["idempotency_key"]: t["status"] for t in listing["tasks"]}
    expected = {"lost-1": "succeeded", "refused-1": "rejected", "unknown-1": "unconfirmed", "stale-1": "unconfirmed"}
    assert statuses == expected
    account.assert_one_charge_per_task(1)


async def test_get_task_and_recovery_share_a_task_and_save_it_once(account: Account) -> None:
    settings = account.settings()
    async with Client(build_server(settings)) as client:
        started = data_of(await client.call_tool("generate_image", {"prompt": "A red bicycle", "wait_seconds": 0}))
    advance_clock(account.sandbox, 5)  # the task finishes upstream while no server runs
    # A new server: its recovery and the agent's get_task both go for the same finished task at once.
    async with Client(build_server(settings)) as client:
        data = data_of(await client.call_tool("get_task", {"task_id": started["task_id"], "wait_seconds": 10}))
        again = data_of(await client.call_tool("get_task", {"task_id": started["task_id"], "wait_seconds": 10}))
    assert data["status"] == "succeeded" and again["saved_path"] == data["saved_path"]
    assert account.saved_images() == [Path(data["saved_path"])]  # one download, one file
    assert Path(data["saved_path"]).name.endswith("_a-red-bicycle.jpg")
    account.assert_one_charge_per_task(1)


async def test_recovery_never_blocks_calls_and_stops_with_the_session(account: Account) -> None:
    settings = account.settings()
    async with Client(build_server(settings)) as client:
        slow = data_of(
            await client.call_tool("generate_image", {"prompt": "A glacier [sandbox:seconds=600]", "wait_seconds": 0})
        )
    # Every poll of the recovered task is slow to answer, and the task runs for 10 (sandbox) minutes,
    # which no wall clock here advances: a first call that waited for the recovery pass, or a session
    # end that did not cancel it, would never return; each is bounded and named.
    set_faults(account.sandbox, [{"path": "/api/v1/generations/", "method": "GET", "delay_ms": 300}])
    async with within("the session to end (cancelling its recovery pass)"), Client(build_server(settings)) as client:
        async with within("list_tasks and get_credits to answer beside the recovery pass", 5.0):
            listing = data_of(await client.call_tool("list_tasks", {}))
            credits = data_of(await client.call_tool("get_credits", {}))
    # Leaving the session cancelled the recovery (still polling a 10-minute task).
    assert listing["tasks"][0]["task_id"] == slow["task_id"] and credits["current_credits"] >= 0
    [entry] = journal_entries(settings)
    assert entry.status in ("queued", "processing") and not entry.saved_paths
    account.assert_one_charge_per_task(1)


async def test_a_task_created_by_this_server_is_left_to_its_caller(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery covers what was recorded before the server started, not the server's own tasks."""
    settings = account.settings()
    assert settings.api_key is not None
    recovered = anyio.Event()
    real_pass = Recovery.__call__

    async def observed_pass(self: Recovery, started_at: datetime) -> None:  # the real pass, then a signal
        try:
            await real_pass(self, started_at)
        finally:
            recovered.set()

    monkeypatch.setattr(Recovery, "__call__", observed_pass)
    async with Client(build_server(settings)) as client:
        started = data_of(await client.call_tool("generate_image", {"prompt": "A quiet lake", "wait_seconds": 0}))
        advance_clock(account.sandbox, 5)  # finished upstream: a (wrong) background save could happen at once
        async with within("the recovery pass to finish"):
            await recovered.wait()
        assert account.saved_images() == []
        done = data_of(await client.call_tool("get_task", {"task_id": started["task_id"], "wait_seconds": 10}))
    assert account.saved_images() == [Path(done["saved_path"])]
    async with AsyncRivyaClient(api_key=settings.api_key, base_url=settings.base_url) as api:
        assert (await api.get_generation(started["task_id"])).status == "succeeded"


async def test_runtime_runs_recovery_once_restarts_it_if_cut_short_and_passes_errors_through(
    tmp_path: Path,
) -> None:
    runtime = Runtime(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))
    runs: list[datetime] = []
    release = anyio.Event()
    finished: list[bool] = []

    async def recovery(started_at: datetime) -> None:
        runs.append(started_at)
        await release.wait()
        finished.append(True)

    runtime.set_recovery(recovery)
    async with within("the session to end, cutting its pass short"), runtime.session():
        await _until(lambda: len(runs) == 1, "the background pass to start")
    assert len(runs) == 1  # cut short by the end of the session
    with pytest.raises(ValueError, match="from the session body"):  # not wrapped in an ExceptionGroup
        async with within("the session to end with its body's error"), runtime.session():
            await _until(lambda: len(runs) == 2, "the pass to start again with the next session")
            raise ValueError("from the session body")
    assert len(runs) == 2 and runs[0] == runs[1]  # same cutoff: the first start of this server
    release.set()
    async with runtime.session():
        await _until(lambda: bool(finished), "the pass to finish")
    async with runtime.session():
        for _ in range(20):
            await anyio.sleep(0)
    assert len(runs) == 3 and finished == [True]  # finished once: never again for this server


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Let other tasks run until ``condition`` holds; fail naming ``what`` if it does not within the bound."""
    async with within(what):
        while not condition():
            await anyio.sleep(0)


async def test_recovery_goes_on_in_a_session_still_open_when_its_own_ends_first(tmp_path: Path) -> None:
    """SSE and Streamable HTTP keep several sessions: the pass must not wait for a new one."""
    runtime = Runtime(Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data"))
    runs: list[datetime] = []
    release = anyio.Event()
    finished: list[bool] = []

    async def recovery(started_at: datetime) -> None:
        runs.append(started_at)
        await release.wait()
        finished.append(True)

    async def hold(until: anyio.Event) -> None:
        async with runtime.session():
            await until.wait()

    runtime.set_recovery(recovery)
    close_first, close_second = anyio.Event(), anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(hold, close_first)
        await _until(lambda: len(runs) == 1, "the pass to start in the first session")
        group.start_soon(hold, close_second)
        for _ in range(20):
            await anyio.sleep(0)
        assert len(runs) == 1  # the second session stands by: one pass at a time
        close_first.set()
        await _until(lambda: len(runs) == 2, "the pass to be taken over by the session still open")
        release.set()
        await _until(lambda: bool(finished), "the pass to finish")
        close_second.set()
    assert runs[0] == runs[1]  # the same cutoff: the first start of this server
    async with runtime.session():
        for _ in range(20):
            await anyio.sleep(0)
    assert len(runs) == 2  # finished once: never again


CREATE = {"path": "/api/v1/generations", "method": "POST"}


@pytest.mark.parametrize(
    "unclear",
    [
        {"status": 500},
        {"status": 503},
        {"status": 408},
        {"drop": True},
        {"malformed": True},
        # Processed (and charged) upstream, its answer replaced by a 502: only the key can find it.
        {"status": 502, "phase": "after"},
    ],
    ids=["500", "503", "408", "dropped", "malformed", "charged-then-502"],
)
async def test_a_resent_create_with_an_unclear_answer_stays_unsubmitted_and_goes_again_under_its_key(
    account: Account, unclear: dict[str, Any]
) -> None:
    """Recovery's re-send that gets a 5xx, a 408, a lost connection or a garbled answer may have been
    charged: the intent must stay ``unsubmitted`` (never ``rejected``, which nothing re-sends), and
    the next pass re-sends it under the same key, so the task is found (or made) and charged once."""
    settings = account.settings()
    assert settings.api_key is not None
    with _journal(settings) as journal:
        _record_intent(journal, "unclear-1", "A re-send with no clear answer")
    set_faults(account.sandbox, [{**CREATE, **unclear}])

    async def one_pass() -> None:
        started_at = datetime.now(UTC)
        client = AsyncRivyaClient(settings.api_key, settings.base_url, max_retries=1, sleep=_no_wait)
        runtime = Runtime(settings, client=client)
        try:
            with anyio.fail_after(30):
                await Recovery(TaskService(runtime))(started_at)
        finally:
            await runtime.aclose()
            await client.aclose()

    await one_pass()
    entry = _by_key(settings)["unclear-1"]
    assert (entry.status, entry.task_id) == ("unsubmitted", None), entry
    assert fault_hits(account.sandbox) == [2]  # sent, and retried once under the same key
    charged = len(account.tasks())
    assert charged == (1 if unclear.get("phase") == "after" else 0)

    set_faults(account.sandbox, [])  # the API answers again: the next start re-sends it
    await one_pass()
    entry = _by_key(settings)["unclear-1"]
    [task] = account.tasks()
    assert (entry.task_id, entry.status, task["idempotency_key"]) == (task["id"], "succeeded", "unclear-1")
    assert entry.saved_paths and Path(entry.saved_paths[0]).is_file()
    account.assert_one_charge_per_task(1)


async def _no_wait(_seconds: float) -> None:
    await anyio.sleep(0)
async def test_a_create_rivya_has_not_settled_is_re_sent_after_a_restart_until_it_settles(account: Account) -> None:
    """Issue 22 item 1: a create that reached Rivya (and was charged) but whose re-sends keep being
    answered 409 (not settled yet) is followed under its key at the documented pace, not given up."""
    settings = account.settings(max_retries=1)
    prompt = "A lighthouse that took its time"
    with _journal(settings) as journal:
        params = _record_intent(journal, "unsettled-1", prompt)
    # The create reached Rivya before the server stopped: the task exists, and is charged.
    async with AsyncRivyaClient(api_key=settings.api_key, base_url=settings.base_url) as api:
        upstream = await api.create_generation(
            model=MANIFEST.id, prompt=prompt, params=params, idempotency_key="unsettled-1",
            client_request_id="unsettled-1",
        )  # fmt: skip
    # Rivya answers the key 409 for a while: more than the client's own retries (max_retries=1).
    conflict = {"path": "/api/v1/generations", "method": "POST", "status": 409, "code": "idempotency_conflict",
                "times": 5}  # fmt: skip
    set_faults(account.sandbox, [conflict])
    async with Client(build_server(settings)):
        await eventually(
            lambda: bool(_by_key(settings)["unsettled-1"].saved_paths), timeout=30, what="the settled task to be saved"
        )
    entry = _by_key(settings)["unsettled-1"]
    assert (entry.task_id, entry.status) == (upstream.id, "succeeded")
    hits = httpx2.get(f"{account.sandbox.base_url}/_sandbox/faults", timeout=5).json()["rules"][0]["hits"]
    assert hits == 5  # every 409 was answered by a re-send under the same key, never given up on
    assert [t["id"] for t in account.tasks()] == [upstream.id]
    account.assert_one_charge_per_task(1)


async def test_an_agent_repeating_a_day_old_unconfirmed_create_is_told_what_to_check(account: Account) -> None:
    """Issue 22 item 6: a create older than INTENT_MAX_AGE is never re-sent (Rivya may have forgotten
    its key, and a re-send could charge twice), not even by the agent's own retry with the key."""
    settings = account.settings()
    prompt = "A request from the day before yesterday"
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    with _journal(settings, now=lambda: two_days_ago) as old_journal:
        _record_intent(old_journal, "old-key", prompt)
        old_journal.end_intent("old-key", status="unconfirmed", error_code="APIConnectionError", error_message="x")
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("generate_image", {"prompt": prompt, "idempotency_key": "old-key"})
    text = "\n".join(c.text for c in result.content if hasattr(c, "text"))
    assert result.is_error and "intent_expired" in text, text
    assert "client_request_id 'old-key'" in text and "not sent again" in text
    assert account.tasks() == []  # never re-sent
    entry = _by_key(settings)["old-key"]
    assert (entry.status, entry.error_code) == ("unconfirmed", "intent_expired")
