"""A create that ends without a clear answer is ``unconfirmed``, and a restart never re-sends it.

Issue 14 item 18: after the client's retries, a dropped connection, a timeout and a 408 each
leave the outcome unknown (the request may have been processed). The journal must say
``unconfirmed`` (the agent was told the key to repeat the call with), and the recovery pass of the
next start must leave it alone: only the agent's own retry under that key may re-send it. A 408
counted as a refusal (``rejected``) fails here. Each fault fires *before* the sandbox processes
the request, so no task exists and any re-send would show up as one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mcp import Client

from rivya_mcp.server import build_server, build_tool_bodies
from rivya_mcp.tasks import Recovery
from tests.faults._process import journal_entries
from tests.faults.conftest import Account, data_of, set_faults, text_of

pytestmark = pytest.mark.anyio

CREATE = {"path": "/api/v1/generations", "method": "POST"}

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("drop", {"drop": True}, {}),
    # The answer would come after a second; the client gives up at 0.2 s each attempt. The 503
    # only ends the sandbox's side: the client has stopped listening by then.
    ("timeout", {"delay_ms": 1000, "status": 503}, {"request_timeout": 0.2}),
    ("408", {"status": 408, "code": "request_timeout"}, {}),
]


@pytest.mark.parametrize(("fault", "rule", "changes"), CASES, ids=[c[0] for c in CASES])
async def test_a_create_without_a_clear_answer_is_unconfirmed_and_never_resent_on_restart(
    account: Account, fault: str, rule: dict[str, Any], changes: dict[str, Any]
) -> None:
    set_faults(account.sandbox, [{**CREATE, **rule}])
    settings = account.settings(max_retries=1, **changes)
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("generate_image", {"prompt": f"A parcel ({fault})", "wait_seconds": 0})
        listing = data_of(await client.call_tool("list_tasks", {}))
    text = text_of(failed)
    assert failed.is_error and "may help" in text, text
    key = text.split('idempotency_key="', 1)[1].split('"', 1)[0]
    assert [(t["idempotency_key"], t["status"]) for t in listing["tasks"]] == [(key, "unconfirmed")]
    assert account.tasks() == []

    # The next start, with the API healthy again: its recovery pass runs to the end here.
    set_faults(account.sandbox, [])
    bodies = build_tool_bodies(settings)
    async with bodies.runtime.session():
        await Recovery(bodies)(datetime.now(UTC))
    assert account.tasks() == []
    assert [(e.idempotency_key, e.status) for e in journal_entries(settings)] == [(key, "unconfirmed")]
