"""Property-based hostile calls: every tool, arguments drawn from its live schema and mutated.

One in-memory session serves every example (run on a blocking portal so hypothesis drives a
plain function), so "the server never crashes" means the same session keeps answering.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.manifest import check_wire_params, get_manifest
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.tasks import HARD_PROMPT_CAP
from tests.hostile._strategies import Case, JsonObject, cases
from tests.hostile.conftest import (
    HOSTILE_KEY,
    Upstream,
    billable,
    data_uri,
    hostile_settings,
    image_bytes,
    recording_client,
)

MANIFEST = get_manifest("flux-kontext-max")
ANSWER_WITHIN = 10.0
GOOD_REFERENCES = st.sampled_from([data_uri(image_bytes("PNG")), data_uri(image_bytes("JPEG"), "image/jpeg")])


@dataclass
class Live:
    portal: BlockingPortal
    client: Client
    schemas: dict[str, JsonObject]
    upstream: Upstream
    sandbox: RunningSandbox
    api: AsyncRivyaClient
    refusals: list[str] = field(default_factory=list)

    def call(self, tool: str, arguments: JsonObject) -> CallToolResult | MCPError:
        async def bounded() -> CallToolResult | MCPError:
            with anyio.fail_after(ANSWER_WITHIN):
                try:
                    return await self.client.call_tool(tool, arguments)
                except MCPError as exc:  # a protocol-level answer is still an answer
                    return exc

        return self.portal.call(bounded)

    def still_answers(self) -> None:
        """A fresh, cheap call on the same session still works (and still reaches the API)."""

        async def bounded() -> CallToolResult:
            with anyio.fail_after(ANSWER_WITHIN):
                return await self.client.call_tool("get_credits", {})

        result = self.portal.call(bounded)
        assert not result.is_error, _text(result)


@pytest.fixture(scope="module")
def live(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    settings = hostile_settings(sandbox, tmp_path_factory.mktemp("hostile-props"))
    upstream = Upstream()
    api = recording_client(settings, upstream)
    with start_blocking_portal() as portal:
        with portal.wrap_async_context_manager(Client(build_server(settings, client=api))) as client:
            tools = portal.call(client.list_tools).tools
            yield Live(portal, client, {t.name: t.input_schema for t in tools}, upstream, sandbox, api)
        assert upstream.http is not None
        portal.call(upstream.http.aclose)


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _all_cases(schemas: dict[str, JsonObject]) -> st.SearchStrategy[Case]:
    # wait_seconds=0: a valid generation returns its task id at once instead of waiting.
    fixed: dict[str, JsonObject] = {name: {"wait_seconds": 0} for name in schemas}
    extra = {
        "edit_image": {"reference": GOOD_REFERENCES},
        "upload_reference": {"source": GOOD_REFERENCES},
    }
    return st.one_of([cases(name, _with_prompt_cap(schemas[name]), fixed=fixed[name], extra_strings=extra.get(name, {}))
                      for name in sorted(schemas)])  # fmt: skip


def _with_prompt_cap(schema: JsonObject) -> JsonObject:
    """The schema as the server enforces it: a prompt is capped (HARD_PROMPT_CAP) even where the
    model documents no limit, so a longer one is a case the server must refuse, not a valid one."""
    prompt = schema.get("properties", {}).get("prompt")
    if prompt is None or "maxLength" in prompt:
        return schema
    properties = {**schema["properties"], "prompt": {**prompt, "maxLength": HARD_PROMPT_CAP}}
    return {**schema, "properties": properties}


def test_hostile_calls_are_answered_and_never_reach_the_api_invalid(live: Live) -> None:
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(case=_all_cases(live.schemas))
    def one_call(case: Case) -> None:
        event(f"{case.tool}: {case.why.split(':')[-1].strip()}")
        before = billable(live.sandbox)
        answer = live.call(case.tool, case.arguments)
        live.still_answers()  # the session survived whatever that was
        after = billable(live.sandbox)
        if isinstance(answer, MCPError):
            assert case.invalid, f"{case.why}: a valid call got a protocol error {answer}"
            failed = True
        else:
            failed = bool(answer.is_error)
            shown = _text(answer) + repr(answer.structured_content)
            assert HOSTILE_KEY not in shown, "the API key appeared in a tool result"
            if case.invalid:
                assert failed, f"{case.why}: accepted {case.arguments!r:.300}"
        if failed and not case.invalid and not isinstance(answer, MCPError):
            live.refusals.append(f"{case!r}: {_text(answer)[:200]}")
        if failed:
            assert after == before, f"{case.why}: a refused call left a task, charge or upload"
            return
        if case.tool in ("generate_image", "edit_image"):
            data = answer.structured_content
            assert data is not None
            new_tasks = after[0] - before[0]
            # count > 1: one task per image the call did not find under its key (each its own task).
            made = [c for c in data["candidates"] if c["task_id"]] if data.get("candidates") else [data]
            assert new_tasks == sum(1 for c in made if not c["reused"])

    one_call()
    _assert_nothing_invalid_went_upstream(live)


def _assert_nothing_invalid_went_upstream(live: Live) -> None:
    assert live.upstream.refused() == [], "the API refused a request the server sent"
    creates = live.upstream.creates()
    assert creates, "no valid generation was exercised:\n" + "\n".join(live.refusals)
    snapshot = live.sandbox.state.snapshot()
    for task in snapshot["tasks"]:
        assert check_wire_params(MANIFEST, task["mode"], task["params"]) == [], task
    for _status, body in creates:
        mode = "edit" if "referenceMediaItems" in body["params"] else "generate"
        assert check_wire_params(MANIFEST, mode, body["params"]) == [], body
        assert isinstance(body["prompt"], str) and body["prompt"].strip()
    charges = [e for e in snapshot["ledger"] if e["delta"] < 0]
    assert sorted(e["task_id"] for e in charges) == sorted(t["id"] for t in snapshot["tasks"])


def test_the_key_is_in_no_repr(live: Live) -> None:
    settings = hostile_settings(live.sandbox, Path("/nonexistent"))
    for shown in (repr(settings), str(settings), repr(settings.api_key), repr(live.api), str(live.api)):
        assert HOSTILE_KEY not in shown


def test_schema_strategies_cover_every_tool(live: Live) -> None:
    assert set(live.schemas) == {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits",
                                 "list_tasks"}  # fmt: skip
