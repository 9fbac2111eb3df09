"""The live catalog's limits: the stricter of it and the manifest applies, before any credit is spent.

The sandbox's catalog is built from the manifests, so it agrees with them; a test that needs it to
state something else bends its answer with an after-phase ``merge`` fault rule on
``GET /api/v1/models``.
"""

from __future__ import annotations

import base64
import copy
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from PIL import Image

from rivya_mcp.client import ModelInfo
from rivya_mcp.manifest import load_manifests
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, account_id, start_sandbox
from rivya_mcp.server import build_server
from rivya_mcp.tasks import HARD_PROMPT_CAP, Limits, effective_limits
from tests.server.conftest import TEST_KEY, settings_for

pytestmark = pytest.mark.anyio

MODEL = "flux-kontext-max"
MANIFEST = load_manifests()[MODEL]
UPLOAD = MANIFEST.upload.max_bytes


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _entry(**fields: Any) -> ModelInfo:
    return ModelInfo.model_validate({"id": MODEL, **fields})


@pytest.mark.parametrize(
    ("entry", "limits", "disagreements"),
    [
        (None, Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),  # offline: the manifest, and the hard cap
        (_entry(), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),  # nothing stated
        (_entry(max_prompt_length=500), Limits(500, UPLOAD, 8), 1),
        (_entry(max_prompt_length=500.0), Limits(500, UPLOAD, 8), 1),  # a number, int or float
        (_entry(max_prompt_length=10**6), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 1),  # never above the cap
        (_entry(base_credits=10), Limits(HARD_PROMPT_CAP, UPLOAD, 10), 1),  # a higher cost is stricter
        (_entry(base_credits=4), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 1),
        (_entry(base_credits=8, max_prompt_length=None), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),
        (_entry(reference_media={"max_bytes": 9_000_000}), Limits(HARD_PROMPT_CAP, 9_000_000, 8), 1),
        (_entry(reference_media={"max_bytes": UPLOAD}), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),
        (_entry(reference_media={"max_bytes": 10**9}), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 1),
        (_entry(reference_media={"size": "10 MB"}), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),  # shape unknown
        (_entry(reference_media=[1]), Limits(HARD_PROMPT_CAP, UPLOAD, 8), 0),
    ],
)
def test_the_stricter_limit_applies(entry: ModelInfo | None, limits: Limits, disagreements: int) -> None:
    got, notes = effective_limits(MANIFEST, entry)
    assert got == limits
    assert len(notes) == disagreements


async def _catalog_states(sandbox: RunningSandbox, **fields: Any) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        listing = (await control.get("/api/v1/models")).json()
        data = copy.deepcopy(listing["data"])
        for entry in data:
            if entry["id"] == MODEL:
                entry.update(fields)
        rule = {"path": "/api/v1/models", "method": "GET", "phase": "after", "merge": {"data": data}}
        assert (await control.post("/_sandbox/faults", json={"rules": [rule]})).status_code == 200


async def _clear_faults(sandbox: RunningSandbox) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        await control.delete("/_sandbox/faults")


def _tasks_and_charges(sandbox: RunningSandbox, key: str = TEST_KEY) -> tuple[int, int]:
    """This account's tasks and ledger entries (the module's sandbox is shared: another test's task
    may settle, and book its final charge, in the middle of this one)."""
    account = account_id(key)
    snapshot = sandbox.state.snapshot()
    return (
        sum(t["account"] == account for t in snapshot["tasks"]),
        sum(e["account"] == account for e in snapshot["ledger"]),
    )


async def test_a_prompt_over_the_catalogs_limit_is_refused_before_any_credit(
    sandbox: RunningSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _catalog_states(sandbox, max_prompt_length=100, base_credits=10)
    try:
        async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
            before = _tasks_and_charges(sandbox)
            refused = await client.call_tool("generate_image", {"prompt": "x" * 101, "wait_seconds": 0})
            after_refusal = _tasks_and_charges(sandbox)
            again = await client.call_tool("generate_image", {"prompt": "y" * 150, "wait_seconds": 0})
            accepted = await client.call_tool("generate_image", {"prompt": "z" * 100, "wait_seconds": 0})
            credits = await client.call_tool("get_credits", {})
    finally:
        await _clear_faults(sandbox)
    assert refused.is_error and again.is_error
    assert "101 characters" in _text(refused) and "at most 100" in _text(refused)
    assert "no credits were spent" in _text(refused)
    assert _text(refused).count("no credits were spent") == 1
    assert after_refusal == before  # no task, no charge
    assert not accepted.is_error, _text(accepted)
    assert "cost 10 credits" in _text(credits)  # the catalog's higher price is the one shown
    disagreements = [r.getMessage() for r in caplog.records if "disagree" in r.getMessage()]
    # Each disagreement is logged once for the three calls: the prompt limit and the credits. Not
    # the upload size: the sandbox states it in its own megabytes, which agrees with the manifest's
    # "10 MB" (it used to state 10 MiB in bytes, a disagreement at every start; issue 22).
    for topic in ("max_prompt_length", "base_credits"):
        assert sum(topic in d for d in disagreements) == 1, disagreements
    assert len(disagreements) == 2


async def test_without_any_stated_limit_a_megabyte_prompt_is_still_refused(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    key = "rvya_sk_test_a_megabyte_prompt"  # an account of its own: nothing else moves its ledger
    async with Client(build_server(settings_for(sandbox, tmp_path, key=key))) as client:
        before = _tasks_and_charges(sandbox, key)
        refused = await client.call_tool("generate_image", {"prompt": "a" * 1_000_000, "wait_seconds": 0})
        after = _tasks_and_charges(sandbox, key)
        at_cap = await client.call_tool("generate_image", {"prompt": "b" * HARD_PROMPT_CAP, "wait_seconds": 0})
    assert refused.is_error and f"at most {HARD_PROMPT_CAP}" in _text(refused)
    assert after == before
    assert not at_cap.is_error, _text(at_cap)


async def test_an_unreadable_catalog_is_never_fatal(
    sandbox: RunningSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with httpx2.AsyncClient(base_url=sandbox.base_url) as control:
        rule = {"path": "/api/v1/models", "status": 404}
        assert (await control.post("/_sandbox/faults", json={"rules": [rule]})).status_code == 200
    try:
        async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
            done = await client.call_tool("generate_image", {"prompt": "Still works", "wait_seconds": 10})
            capped = await client.call_tool("generate_image", {"prompt": "c" * (HARD_PROMPT_CAP + 1)})
    finally:
        await _clear_faults(sandbox)
    assert not done.is_error and (done.structured_content or {})["status"] == "succeeded"
    assert capped.is_error  # the hard cap holds without the catalog
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "catalog unavailable" in r.getMessage()]
    assert len(warnings) == 1  # tried once, not on every call


@pytest.fixture(scope="module")
def variant() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.3, profile="variant")) as running:
        yield running


@pytest.mark.parametrize("profile", ["default", "variant"])
async def test_both_profiles_catalogs_are_read_entry_by_entry_without_a_disagreement(
    profile: str, sandbox: RunningSandbox, variant: RunningSandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The variant lists a chat model (supported_modes: null), a model that is coming soon with its
    # prompt limit as a string, and one whose base_credits is "varies": an entry nobody can read.
    target = sandbox if profile == "default" else variant
    caplog.set_level(logging.WARNING)
    async with Client(build_server(settings_for(target, tmp_path))) as client:
        first = await client.call_tool("generate_image", {"prompt": f"A {profile} catalog", "wait_seconds": 5})
        second = await client.call_tool("get_credits", {})
    assert not first.is_error, _text(first)
    assert not second.is_error and "cost 8 credits" in _text(second)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "disagree" in m], messages  # MB vs MiB is not a disagreement
    unreadable = [m for m in messages if "cannot be read" in m]
    if profile == "variant":
        assert len(unreadable) == 1 and "sandbox-studio-video" in unreadable[0], messages  # logged once
    else:
        assert unreadable == [], messages


async def test_a_model_listed_but_not_callable_is_refused_before_any_upload_or_create(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    await _catalog_states(sandbox, api_status="coming_soon")
    image = "data:image/png;base64," + base64.b64encode(_png()).decode()
    try:
        async with Client(build_server(settings_for(sandbox, tmp_path))) as client:
            before = sandbox.state.snapshot()
            generate = await client.call_tool("generate_image", {"prompt": "Not yet", "wait_seconds": 0})
            edit = await client.call_tool("edit_image", {"prompt": "Not yet", "reference": image, "wait_seconds": 0})
            after = sandbox.state.snapshot()
    finally:
        await _clear_faults(sandbox)
    for result in (generate, edit):
        text = _text(result)
        assert result.is_error and "model_not_callable" in text and "coming_soon" in text, text
        assert "No request was sent and no credits were spent" in text
    # Nothing was sent: no task, no charge, no upload.
    assert (after["tasks"], after["ledger"], after["files"]) == (before["tasks"], before["ledger"], before["files"])
    # The same server with the model callable again works (a fresh catalog read).
    async with Client(build_server(settings_for(sandbox, tmp_path / "again"))) as client:
        done = await client.call_tool("generate_image", {"prompt": "Now", "wait_seconds": 5})
    assert not done.is_error, _text(done)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()
