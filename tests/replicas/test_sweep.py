"""The sweep on a replica: it takes over what a dead replica left, never what a live one holds.

In process (``mcp.Client`` on ``build_server``) against a real sandbox over loopback and a real
PostgreSQL. The journal is seeded as replicas would have left it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from rivya_mcp.journal import TaskJournal, open_journal
from rivya_mcp.journal.postgres import PostgresStore
from rivya_mcp.manifest import get_manifest, to_wire_params, validate_arguments
from rivya_mcp.sandbox import RunningSandbox, start_sandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Secret
from tests.faults._process import eventually
from tests.faults.conftest import SANDBOX_CONFIG, Account

pytestmark = pytest.mark.anyio

MANIFEST = get_manifest("flux-kontext-max")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SANDBOX_CONFIG) as running:
        yield running


def record_intent(journal: TaskJournal, key: str, prompt: str) -> None:
    params = to_wire_params(MANIFEST, "generate", validate_arguments(MANIFEST, "generate", {"prompt": prompt}))
    journal.record_intent(
        idempotency_key=key, model=MANIFEST.id, mode="generate", prompt=prompt, params=params, reference=None
    )


async def test_an_orphaned_intent_is_sent_once_and_one_held_by_a_live_replica_is_left(
    sandbox: RunningSandbox, postgres_url: str, tmp_path: Path
) -> None:
    account = Account(sandbox, tmp_path)
    settings = account.settings(database_url=Secret(postgres_url), lease_seconds=0.5)
    # The replicas' journal is scoped to their upstream and key (as Runtime opens it).
    with (
        open_journal(postgres_url, upstream=settings.base_url, api_key=settings.api_key) as journal,
        open_journal(postgres_url, upstream=settings.base_url, api_key="rvya_sk_another_account") as elsewhere,
    ):
        # A replica recorded this intent and died before its create POST left: no lease, no task.
        record_intent(journal, "orphan", "A windmill at noon")
        # Another replica is sending this one right now: it holds the intent's lease.
        record_intent(journal, "in-flight", "A lighthouse at dusk")
        # A replica serving another account left this one: never re-sent under this key, nor listed.
        record_intent(elsewhere, "other-account", "A harbour at night")
        assert isinstance(journal.store, PostgresStore)
        assert journal.store.try_lease("intent:in-flight", "live-replica", 120) is None

        async with Client(build_server(settings)):
            await eventually(
                lambda: bool((e := journal.find_by_idempotency_key("orphan")) and e.saved_paths),
                timeout=30,
                what="the orphaned intent to be sent, followed and saved",
            )
        # The pass that adopted the orphan saw the live one too, and left it alone.
        in_flight = journal.find_by_idempotency_key("in-flight")
        assert in_flight is not None and (in_flight.status, in_flight.task_id) == ("unsubmitted", None)
        orphan = journal.find_by_idempotency_key("orphan")
        assert orphan is not None and orphan.status == "succeeded"
        other = elsewhere.find_by_idempotency_key("other-account")
        assert other is not None and (other.status, other.task_id) == ("unsubmitted", None)
        assert journal.find_by_idempotency_key("other-account") is None
        assert "other-account" not in {e.idempotency_key for e in journal.list()}
        assert journal.pending_elsewhere() == 1
    [task] = account.tasks()
    assert (task["idempotency_key"], task["id"]) == ("orphan", orphan.task_id)
    account.assert_one_charge_per_task(1)
