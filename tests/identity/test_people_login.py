"""rivya-login: every call of a person spends that person's own key, and only theirs.

No operator key is configured at all, so a call that fell back to "the server's key" would fail
loudly; the sandbox's ledger books each create to the account of the key it was sent with
(``rivya_mcp.sandbox.account_id``). The recovery (SQLite, at start) and the replicas' sweep
(PostgreSQL, for the server's life) resume a person's unanswered create with that person's key,
read from their sign-in; a row whose person's key this server can't read is left alone, never sent
with another key.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from rivya_mcp.journal import SqliteStore, Store, TaskJournal, open_journal
from rivya_mcp.manifest import get_manifest, to_wire_params
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, account_id, start_sandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests._journals import store_for
from tests.identity._apps import serve_late
from tests.identity._login import SECRET_KEY, sign_in_by_hand
from tests.server._threaded import ThreadedServer
from tests.tasks.conftest import Requester

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
DEADLINE_SECONDS = 60.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


def login_settings(sandbox: RunningSandbox, workdir: Path, url: str, **changes: Any) -> Settings:
    return Settings(
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=0.05,
        public_url=url,
        rivya_login=True,
        secret_key=Secret(SECRET_KEY),
        lease_seconds=1.0,
    ).with_changes(**changes)


def _key(name: str) -> str:
    return f"rvya_sk_{name}_{uuid.uuid4().hex}"


def _sign_in(url: str, key: str) -> str:
    async def run() -> str:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
            return str((await sign_in_by_hand(http, url, key))["access_token"])

    return anyio.run(run)


def _state(sandbox: RunningSandbox) -> dict[str, Any]:
    state: dict[str, Any] = httpx2.get(f"{sandbox.base_url}/_sandbox/state", timeout=10).json()
    return state


def _charges_by_key(sandbox: RunningSandbox, *keys: str) -> dict[str, int]:
    """Charges the sandbox booked per key's account; anything booked to another account under "other"."""
    named = {account_id(key): key for key in keys}
    counts = dict.fromkeys([*keys, "other"], 0)
    for entry in _state(sandbox)["ledger"]:
        if entry["delta"] < 0:
            counts[named.get(entry["account"], "other")] += 1
    return counts


def test_each_person_spends_their_own_key(sandbox: RunningSandbox, tmp_path: Path) -> None:
    ada_key, bob_key = _key("ada"), _key("bob")
    with serve_late(lambda url: build_http_app(login_settings(sandbox, tmp_path, url), transport="http")) as server:
        url = server.base_url
        ada = Requester(f"{url}/mcp", token=_sign_in(url, ada_key))
        bob = Requester(f"{url}/mcp", token=_sign_in(url, bob_key))
        try:
            made = ada.tool("generate_image", {"prompt": "Ada's lighthouse", "aspectRatio": "1:1"}, tasks=False)
            assert made.get("isError") is not True, made
            task_id = made["structuredContent"]["task_id"]
            assert ada.tool("get_credits", {}, tasks=False)["structuredContent"]["spent_today"] == 8
            his = bob.tool("generate_image", {"prompt": "Bob's kite", "wait_seconds": 0}, tasks=False)
            assert his.get("isError") is not True, his
            # A task handle's follow-up outlives its request, and still spends its person's key.
            handle = bob.tool("generate_image", {"prompt": "Bob's second kite"})["taskId"]
            deadline = time.monotonic() + DEADLINE_SECONDS
            while (done := bob.task("tasks/get", handle))["status"] == "working":
                assert time.monotonic() < deadline
                time.sleep(done["pollIntervalMs"] / 1000)
            assert done["status"] == "completed" and done["result"].get("isError") is not True
            refused = bob.tool("get_task", {"task_id": task_id, "wait_seconds": 0}, tasks=False)
            assert refused["isError"] is True and "not_found" in refused["content"][0]["text"]
        finally:
            ada.close()
            bob.close()
    owners = {t["id"]: t["account"] for t in _state(sandbox)["tasks"]}
    assert owners[task_id] == account_id(ada_key)
    assert _charges_by_key(sandbox, ada_key, bob_key) == {ada_key: 1, bob_key: 2, "other": 0}


def _person_of(store: Store) -> str:
    with store.read() as tx:
        rows = tx.all("SELECT person_id FROM identity_people")
    assert len(rows) == 1
    return str(rows[0][0])


def _unanswered(journal: TaskJournal, *, upstream: str, key: str, person: str, idempotency_key: str) -> None:
    """An intent whose create was sent and never answered (its server stopped), as that server recorded it."""
    params = to_wire_params(get_manifest("flux-kontext-max"), "generate", {"aspectRatio": "1:1"})
    journal.scoped(upstream=upstream, api_key=key, person=person).record_intent(
        idempotency_key=idempotency_key, model="flux-kontext-max", mode="generate", prompt="left behind",
        params=params, cost=8,
    )  # fmt: skip


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_persons_unanswered_create_is_resumed_with_their_own_key(
    sandbox: RunningSandbox, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """SQLite: the recovery pass at start. PostgreSQL: the replicas' sweep, which takes over what a
    replica left (here: an intent last touched an hour ago)."""
    changes: dict[str, Any] = {}
    if store == "postgres":
        changes["database_url"] = Secret(request.getfixturevalue("postgres_url"))
    ada_key, stranger_key = _key("ada"), _key("stranger")
    with serve_late(
        lambda url: build_http_app(login_settings(sandbox, tmp_path, url, **changes), transport="http")
    ) as first:
        _sign_in(first.base_url, ada_key)
    location = changes["database_url"].reveal() if changes else str(tmp_path / "data" / "journal.sqlite3")
    raw = store_for(location) if changes else SqliteStore(Path(location))
    try:
        ada = _person_of(raw)
    finally:
        raw.close()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    hers, strangers = f"ada-{uuid.uuid4().hex}", f"stranger-{uuid.uuid4().hex}"
    with open_journal(location, now=lambda: an_hour_ago) as journal:
        _unanswered(journal, upstream=sandbox.base_url, key=ada_key, person=ada, idempotency_key=hers)
        # Someone whose key this server does not hold: never sent, with any key.
        _unanswered(journal, upstream=sandbox.base_url, key=stranger_key, person="rivya:" + "0" * 32,
                    idempotency_key=strangers)  # fmt: skip
    settings = login_settings(sandbox, tmp_path, "http://127.0.0.1:1", **changes)
    with ThreadedServer(build_http_app(settings, transport="http")):
        deadline = time.monotonic() + DEADLINE_SECONDS
        with open_journal(location) as journal:
            while (entry := journal.find_by_idempotency_key(hers)) is None or entry.task_id is None:
                assert time.monotonic() < deadline, "the person's unanswered create was never resumed"
                time.sleep(0.1)  # the server works in its own thread
            stranger = journal.find_by_idempotency_key(strangers)
    assert stranger is not None and stranger.status == "unsubmitted" and stranger.task_id is None
    sent = {t["idempotency_key"]: t["account"] for t in _state(sandbox)["tasks"]}
    assert sent[hers] == account_id(ada_key)  # her key, nobody else's
    assert strangers not in sent


def test_a_create_rivya_has_not_settled_is_pursued_with_the_persons_own_key(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """The follow-up of a create answered "not settled" (409 to a key already sent) outlives its call
    (``Runtime.start_background``); it must go on with the person's own key. No operator key is
    configured: a follow-up that lost its person would have no key, or a closed client, and the task
    would never be saved."""
    ada_key = _key("ada")
    create = {"path": "/api/v1/generations", "method": "POST"}
    faults = [
        # Rivya makes (and charges) the task, the answer is lost, and it answers the key 409 for now.
        {**create, "drop": True, "phase": "after", "times": 1},
        {**create, "status": 409, "code": "idempotency_conflict", "message": "This key is in flight."},
    ]
    with serve_late(lambda url: build_http_app(login_settings(sandbox, tmp_path, url), transport="http")) as server:
        ada = Requester(f"{server.base_url}/mcp", token=_sign_in(server.base_url, ada_key))
        httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": faults}, timeout=5).raise_for_status()
        try:
            made = ada.tool("generate_image", {"prompt": "Ada's patient kite", "wait_seconds": 1}, tasks=False)
            text = made["content"][0]["text"]
            assert made.get("isError") is True and "create_not_settled" in text, text
        finally:
            httpx2.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=5).raise_for_status()
        try:
            # Rivya settles: the server's own follow-up re-sends under the key, then follows and saves.
            deadline = time.monotonic() + DEADLINE_SECONDS
            while not (saved := [t for t in _listed(ada) if t["prompt"] == "Ada's patient kite" and t["saved_path"]]):
                assert time.monotonic() < deadline, "the create was never pursued to a saved image"
                time.sleep(0.2)
        finally:
            ada.close()
    [task] = saved
    owners = {t["id"]: t["account"] for t in _state(sandbox)["tasks"]}
    assert owners[task["task_id"]] == account_id(ada_key)
    assert _charges_by_key(sandbox, ada_key)[ada_key] == 1  # (the module's other tests share the sandbox)


def _listed(requester: Requester) -> list[dict[str, Any]]:
    listing = requester.tool("list_tasks", {}, tasks=False)
    assert listing.get("isError") is not True, listing
    tasks: list[dict[str, Any]] = listing["structuredContent"]["tasks"]
    return tasks
