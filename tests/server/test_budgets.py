"""Daily budgets and confirmation over the sandbox, through a real MCP client: the sandbox's ledger
shows no spend past a budget, also when calls race for its last credits (one journal file shared by
two servers, and one PostgreSQL database shared by two replicas).

Over stdio (no identity) the budget is the server's; per person over HTTP is in
tests/identity/test_people.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, TextContent

from rivya_mcp.journal import TaskJournal
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Secret, Settings
from tests.server.conftest import TEST_KEY, settings_for

pytestmark = pytest.mark.anyio

PER_IMAGE = 8  # flux-kontext-max's base credits (the manifest; the sandbox's catalog agrees)


def _charges(sandbox: RunningSandbox, key: str = TEST_KEY) -> list[dict[str, Any]]:
    """The sandbox's ledger: charges booked to ``key``'s account (its bookkeeping, not ours)."""
    from rivya_mcp.sandbox import account_id

    state = httpx2.get(f"{sandbox.base_url}/_sandbox/state", timeout=10).json()
    return [e for e in state["ledger"] if e["delta"] < 0 and e["account"] == account_id(key)]


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _unique_key(_: Path) -> str:
    # Each test its own sandbox account, so the module-wide sandbox's ledger is only this test's.
    return f"rvya_sk_budget_{uuid.uuid4().hex}"


async def _generate(client: Client, prompt: str, **extra: Any) -> CallToolResult:
    return await client.call_tool("generate_image", {"prompt": prompt, "wait_seconds": 0, **extra})


async def test_a_create_past_the_daily_budget_is_refused_before_any_spend(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _unique_key(tmp_path)
    settings = settings_for(sandbox, tmp_path, key=key, budget_credits_per_day=2 * PER_IMAGE)
    async with Client(build_server(settings)) as client:
        first = await _generate(client, "a lighthouse")
        second = await _generate(client, "a harbour")
        third = await _generate(client, "a ferry")
        credits = await client.call_tool("get_credits", {})
    assert not first.is_error and not second.is_error
    assert third.is_error
    text = _text(third)
    assert "budget_exceeded" in text
    assert f"daily budget of {2 * PER_IMAGE} credits has 0 left ({2 * PER_IMAGE} spent today)" in text
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert f"resets at {tomorrow} 00:00 UTC" in text and "no credits were spent" in text
    assert text.startswith("Error (budget_exceeded):")
    assert len(_charges(sandbox, key)) == 2  # the refused call never reached Rivya

    # get_credits shows the spend beside the balance, and what is left.
    assert credits.structured_content is not None
    shown = credits.structured_content
    assert shown["spent_today"] == 2 * PER_IMAGE and shown["budget_per_day"] == 2 * PER_IMAGE
    assert shown["budget_left"] == 0 and shown["budget_resets_at"] == f"{tomorrow}T00:00:00Z"
    assert f"This server spent {2 * PER_IMAGE} credits today (UTC)" in _text(credits)


async def test_a_refused_create_is_not_counted_and_a_failed_one_is_refunded(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _unique_key(tmp_path)
    settings = settings_for(sandbox, tmp_path, key=key, budget_credits_per_day=PER_IMAGE)
    async with Client(build_server(settings)) as client:
        # The sandbox's documented magic token for a failed task (docs/sandbox.md): final_credits 0.
        failed = await client.call_tool("generate_image", {"prompt": "please [sandbox:moderated] this"})
        assert failed.is_error and "content_moderated" in _text(failed)
        after_refund = await _generate(client, "a lighthouse")
        over = await _generate(client, "a harbour")
    assert not after_refund.is_error
    assert over.is_error and "budget_exceeded" in _text(over)


async def test_without_a_budget_nothing_is_refused_and_spend_is_still_shown(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, key=_unique_key(tmp_path))
    async with Client(build_server(settings)) as client:
        assert not (await _generate(client, "a lighthouse")).is_error
        credits = await client.call_tool("get_credits", {})
    assert credits.structured_content is not None
    assert credits.structured_content["spent_today"] == PER_IMAGE
    assert credits.structured_content.get("budget_per_day") is None
    schema = (await _tool_schema(settings))["properties"]
    assert "confirm_credits" not in schema  # only on a server that asks for confirmation


async def _tool_schema(settings: Settings) -> dict[str, Any]:
    async with Client(build_server(settings)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    return tools["generate_image"].input_schema


@asynccontextmanager
async def _servers(settings: Settings, count: int) -> AsyncIterator[list[Client]]:
    """``count`` servers (separate runtimes and journal handles) on one journal location."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Client(build_server(settings))) for _ in range(count)]


async def _race(clients: list[Client], rounds: int) -> list[CallToolResult]:
    results: list[CallToolResult] = []

    async def call(client: Client, n: int) -> None:
        results.append(await _generate(client, f"a race {n}"))

    async with anyio.create_task_group() as group:
        for n in range(rounds):
            for client in clients:
                group.start_soon(call, client, n)
    return results


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_calls_racing_for_the_last_credits_never_both_pass(
    sandbox: RunningSandbox, tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    key = _unique_key(tmp_path)
    changes: dict[str, Any] = {"budget_credits_per_day": 3 * PER_IMAGE}
    if store == "postgres":
        changes["database_url"] = Secret(request.getfixturevalue("postgres_url"))
    settings = settings_for(sandbox, tmp_path, key=key, **changes)
    # Two servers (two processes' worth of runtimes and journal connections), four calls each at once.
    async with _servers(settings, 2) as clients:
        results = await _race(clients, 4)
    passed = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(passed) == 3 and len(refused) == 5
    assert all("budget_exceeded" in _text(r) for r in refused)
    assert len(_charges(sandbox, key)) == 3  # exactly the budget, never a fourth


async def test_above_the_threshold_the_user_confirms_through_elicitation(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = _unique_key(tmp_path)
    settings = settings_for(sandbox, tmp_path, key=key, confirm_above_credits=PER_IMAGE - 1)
    asked: list[ElicitRequestParams] = []
    answers = iter([ElicitResult(action="accept", content={"confirm": True}), ElicitResult(action="decline")])

    async def elicit(_: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        asked.append(params)
        return next(answers)

    async with Client(build_server(settings), mode="legacy", elicitation_callback=elicit) as client:
        accepted = await _generate(client, "a lighthouse")
        declined = await _generate(client, "a harbour")
    assert not accepted.is_error
    assert declined.is_error and "not_confirmed" in _text(declined) and "no credits were spent" in _text(declined)
    assert len(asked) == 2 and f"will spend {PER_IMAGE} credits" in asked[0].message
    assert len(_charges(sandbox, key)) == 1


async def test_a_client_that_cannot_be_asked_is_told_how_to_confirm(sandbox: RunningSandbox, tmp_path: Path) -> None:
    key = _unique_key(tmp_path)
    settings = settings_for(sandbox, tmp_path, key=key, confirm_above_credits=PER_IMAGE - 1)
    schema = (await _tool_schema(settings))["properties"]
    assert schema["confirm_credits"]["type"] == "number"
    async with Client(build_server(settings)) as client:  # no elicitation callback: nothing to ask
        unconfirmed = await _generate(client, "a lighthouse")
        too_little = await _generate(client, "a lighthouse", confirm_credits=PER_IMAGE - 1)
        assert len(_charges(sandbox, key)) == 0
        confirmed = await _generate(client, "a lighthouse", confirm_credits=PER_IMAGE)
        cheap = settings.with_changes(confirm_above_credits=PER_IMAGE)  # at the threshold: no question
    text = _text(unconfirmed)
    assert unconfirmed.is_error and "confirmation_required" in text
    assert f"costs {PER_IMAGE} credits" in text and f"confirm_credits: {PER_IMAGE}" in text
    assert too_little.is_error and "confirmation_required" in _text(too_little)
    assert not confirmed.is_error
    assert len(_charges(sandbox, key)) == 1
    async with Client(build_server(cheap)) as client:
        assert not (await _generate(client, "a harbour")).is_error


async def test_an_intent_counts_from_the_moment_it_is_recorded(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """A create whose answer never came (the server stopped mid-request) still counts: it may be charged."""
    key = _unique_key(tmp_path)
    settings = settings_for(sandbox, tmp_path, key=key, budget_credits_per_day=PER_IMAGE)
    settings.data_dir.mkdir(parents=True)
    with TaskJournal(settings.data_dir / "journal.sqlite3", upstream=sandbox.base_url, api_key=key) as journal:
        journal.record_intent(
            idempotency_key="in-flight", model="flux-kontext-max", mode="generate", prompt="p",
            params={"aspectRatio": "1:1"}, cost=PER_IMAGE,
        )  # fmt: skip
        assert journal.spent_today()[0] == PER_IMAGE
    async with Client(build_server(settings.with_changes(api_key=Secret(key)))) as client:
        refused = await _generate(client, "a harbour")
    assert refused.is_error and "budget_exceeded" in _text(refused)
