"""The server half of the MCP Apps viewer (``ui://rivya/viewer``): tool ``_meta``, the resource, and
results with and without the client's ``io.modelcontextprotocol/ui`` extension.

The browser half (the view itself, rendered) is tests/browser/test_viewer.py.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import CallToolResult

from rivya_mcp.journal import JournalEntry
from rivya_mcp.manifest import DEFAULT_MODEL, get_manifest
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import (
    META_KEY,
    VIEWER_TOOLS,
    VIEWER_URI,
    _app,
    arguments_from_params,
    build_server,
    changed_from_defaults,
    choices,
    edit_arguments,
    elapsed_seconds,
    viewer_html,
)
from rivya_mcp.settings import Settings
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

MANIFEST = get_manifest(DEFAULT_MODEL)
APPS_HOST = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
# SEP-1865 / mcp.server.apps: a bare {} is not support (no MIME type the host can render).
BARE_AD = advertise(EXTENSION_ID, {})
MAX_VIEWER_BYTES = 60_000


# --- pure functions, as tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "arguments", "changed"),
    [
        ("generate", {}, {}),
        ("generate", {"aspectRatio": "16:9", "outputFormat": "jpeg"}, {}),  # the documented defaults
        ("generate", {"aspectRatio": "1:1"}, {"aspectRatio": "1:1"}),
        ("generate", {"enableTranslation": False}, {"enableTranslation": False}),
        ("generate", {"enableTranslation": True}, {}),
        ("generate", {"safetyTolerance": 2.0}, {}),  # 2 is the default, whatever its number type
        ("generate", {"safetyTolerance": 5}, {"safetyTolerance": 5}),
        ("generate", {"watermark": "rivya"}, {"watermark": "rivya"}),  # no default: any value is a choice
        ("generate", {"unknown": 1}, {}),  # not a manifest parameter: not a setting
    ],
)
def test_changed_from_defaults(mode: Any, arguments: dict[str, Any], changed: dict[str, Any]) -> None:
    assert changed_from_defaults(MANIFEST, mode, arguments) == changed


@pytest.mark.parametrize(
    ("params", "arguments"),
    [
        ({"aspectRatio": "1:1", "enableTranslation": "false"}, {"aspectRatio": "1:1", "enableTranslation": False}),
        ({"enableTranslation": "true", "referenceMediaItems": [{"id": "file_1"}]}, {"enableTranslation": True}),
        ({"safetyTolerance": 2, "watermark": None}, {"safetyTolerance": 2}),
    ],
)
def test_arguments_from_recorded_wire_params(params: dict[str, Any], arguments: dict[str, Any]) -> None:
    assert arguments_from_params(MANIFEST, "generate", params) == arguments


def test_edit_keeps_only_settings_edit_mode_allows() -> None:
    # safetyTolerance narrows to 0-2 for edits (manifest): a 5 from a generation is dropped, not sent.
    narrowed = MANIFEST.param("safetyTolerance").for_mode("edit")
    assert narrowed.max is not None
    kept = edit_arguments(MANIFEST, {"aspectRatio": "1:1", "safetyTolerance": narrowed.max + 1, "outputFormat": "png"})
    assert kept == {"aspectRatio": "1:1", "outputFormat": "png"}
    assert edit_arguments(MANIFEST, {"safetyTolerance": narrowed.max}) == {"safetyTolerance": narrowed.max}


def test_choices_are_the_manifest_selects_except_booleans() -> None:
    offered = {c["key"]: c["options"] for c in choices(MANIFEST, "generate")}
    expected = {
        p.key: list(p.options or ())
        for p in MANIFEST.params_for("generate")
        if p.type == "select" and not p.is_boolean and p.options
    }
    assert offered == expected
    assert "aspectRatio" in offered and "enableTranslation" not in offered


def _entry(created: datetime, updated: datetime, status: str) -> JournalEntry:
    return JournalEntry(
        idempotency_key="k", task_id="task_1", model=DEFAULT_MODEL, mode="generate", prompt="p", params={},
        reference=None, status=status, reserved_credits=8, final_credits=None, result_urls=(), saved_paths=(),
        error_code=None, error_message=None, created_at=created, submitted_at=created, updated_at=updated,
        remote_created_at=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "updated_after", "now_after", "elapsed"),
    [
        ("succeeded", 12.34, 99.0, 12.3),  # a finished task took until its last update
        ("processing", 3.0, 20.06, 20.1),  # a running one is still counting, up to now
        ("queued", 0.0, 0.0, 0.0),
    ],
)
def test_elapsed_seconds(status: str, updated_after: float, now_after: float, elapsed: float) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entry = _entry(start, start + timedelta(seconds=updated_after), status)
    assert elapsed_seconds(entry, done=entry.is_terminal, now=start + timedelta(seconds=now_after)) == elapsed


# --- the resource and the tools' _meta -----------------------------------------------------------


def test_viewer_html_is_self_contained_and_small() -> None:
    html = viewer_html()
    assert len(html.encode("utf-8")) < MAX_VIEWER_BYTES
    # Nothing fetched from anywhere: no URL with a network scheme, no external script/style/font.
    assert not re.search(r"(?i)\b(?:https?|wss?):|//cdn|<link\b|@import|\bsrc=\"(?!data:)", html)
    assert "<script>" in html and "<style>" in html


async def test_tools_name_the_viewer_and_the_resource_is_an_app(tmp_path: Path) -> None:
    async with Client(build_server(Settings(output_dir=tmp_path / "o", data_dir=tmp_path / "d"))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        read = await client.read_resource(VIEWER_URI)
        discovered = client.server_capabilities
    for name, tool in tools.items():
        if name in VIEWER_TOOLS:
            assert tool.meta == {"ui": {"resourceUri": VIEWER_URI}}
        else:
            assert not (tool.meta or {}).get("ui")
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE
    assert content.meta is not None
    ui = content.meta["ui"]
    # Every CSP list is empty: the view may reach no domain; images come through the bridge.
    assert ui["csp"] == {"connectDomains": [], "resourceDomains": [], "frameDomains": [], "baseUriDomains": []}
    assert ui["permissions"] == {"clipboardWrite": {}}
    assert getattr(content, "text", "") == viewer_html()
    assert discovered.extensions is not None and EXTENSION_ID in discovered.extensions


# --- results with and without the client's extension ---------------------------------------------


def _without_viewer(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Any:
    """The server as it was before the viewer: no _meta.ui on the tools, results untouched."""
    with monkeypatch.context() as patched:
        patched.setattr(_app, "with_viewer", lambda _name, body, _bodies: body)
        patched.setattr(_app, "viewer_meta", lambda _name: None)
        return build_server(settings)


def _wire(result: CallToolResult, *, drop_viewer: bool = False) -> str:
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    meta = data.get("_meta") or {}
    meta.pop("io.modelcontextprotocol/serverInfo", None)  # stamped by the SDK on every modern result
    if drop_viewer:
        meta.pop(META_KEY, None)
    data["_meta"] = meta
    return json.dumps(data, sort_keys=True)


async def test_results_are_unchanged_for_hosts_without_the_extension(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings)) as client:
        made = await client.call_tool("generate_image", {"prompt": "a kite", "aspectRatio": "1:1"})
    assert not made.is_error
    task_id = made.structured_content["task_id"]
    assert META_KEY not in (made.meta or {})

    # The same free call (get_task of the saved image) through three hosts.
    baseline_server = _without_viewer(monkeypatch, settings)
    async with Client(baseline_server) as plain_before:
        before = await plain_before.call_tool("get_task", {"task_id": task_id})
        tools_before = (await plain_before.list_tools()).tools
    async with Client(build_server(settings)) as plain:
        now_plain = await plain.call_tool("get_task", {"task_id": task_id})
        tools_now = (await plain.list_tools()).tools
    async with Client(build_server(settings), extensions=[BARE_AD]) as bare:
        now_bare = await bare.call_tool("get_task", {"task_id": task_id})
    async with Client(build_server(settings), extensions=[APPS_HOST]) as apps:
        now_apps = await apps.call_tool("get_task", {"task_id": task_id})

    assert _wire(now_plain) == _wire(before)
    assert _wire(now_bare) == _wire(before)
    assert META_KEY not in (now_plain.meta or {}) and META_KEY not in (now_bare.meta or {})
    # A host that renders apps gets the same result plus one additive _meta entry.
    assert META_KEY in (now_apps.meta or {})
    assert _wire(now_apps, drop_viewer=True) == _wire(before)
    # tools/list: only the spec's _meta.ui is new, on the viewer's tools.
    for old, new in zip(tools_before, tools_now, strict=True):
        new_dump = new.model_dump(mode="json", by_alias=True, exclude_none=True)
        if new.name in VIEWER_TOOLS:
            assert new_dump.pop("_meta") == {"ui": {"resourceUri": VIEWER_URI}}
        assert new_dump == old.model_dump(mode="json", by_alias=True, exclude_none=True)


async def test_an_apps_host_gets_what_the_view_shows(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings), extensions=[APPS_HOST]) as client:
        made = await client.call_tool("generate_image", {"prompt": "a kite", "aspectRatio": "1:1"})
        task_id = made.structured_content["task_id"]
        edited = await client.call_tool("edit_image", {"prompt": "at night", "reference": task_id})
        checked = await client.call_tool("get_task", {"task_id": task_id})
    data = (made.meta or {})[META_KEY]
    assert data["prompt"] == "a kite"
    assert data["mode"] == "generate" and data["run_again_tool"] == "generate_image"
    assert data["changed"] == {"aspectRatio": "1:1"}
    assert data["arguments"]["aspectRatio"] == "1:1"
    assert data["credits_per_image"] == MANIFEST.base_credits
    assert data["model_name"] == MANIFEST.display_name
    assert data["can_run_again"] is True
    assert isinstance(data["elapsed_seconds"], float) and data["elapsed_seconds"] >= 0
    # An edit: its reference is the earlier task, and running it again repeats that edit.
    edit = (edited.meta or {})[META_KEY]
    assert edit["mode"] == "edit" and edit["run_again_tool"] == "edit_image"
    assert edit["reference"] == task_id and edit["prompt"] == "at night"
    # get_task has no prompt argument: the journal supplies it.
    assert (checked.meta or {})[META_KEY]["prompt"] == "a kite"


async def test_without_structured_output_the_view_still_gets_the_task(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, structured_output=False)
    async with Client(build_server(settings), extensions=[APPS_HOST]) as client:
        made = await client.call_tool("generate_image", {"prompt": "a kite"})
    assert made.structured_content is None
    task = (made.meta or {})[META_KEY]["task"]
    assert task["status"] == "succeeded" and task["task_id"].startswith("task_")
    assert task["saved_path"] and Path(task["saved_path"]).is_file()


async def test_an_apps_host_gets_the_grid_of_several_images_and_the_gallery(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    async with Client(build_server(settings), extensions=[APPS_HOST]) as client:
        several = await client.call_tool("generate_image", {"prompt": "two kites", "count": 2})
        listed = await client.call_tool("list_tasks", {"status": "succeeded", "limit": 5})
    grid = (several.meta or {})[META_KEY]
    assert grid["count"] == 2
    assert [c["number"] for c in grid["candidates"]] == [1, 2]
    assert all(c["thumbnail_uri"].startswith("rivya://thumbnails/") for c in grid["candidates"])
    assert grid["prompt"] == "two kites" and grid["credits_per_image"] == MANIFEST.base_credits
    gallery = (listed.meta or {})[META_KEY]
    assert gallery == {
        "view": "gallery",
        "model_name": MANIFEST.display_name,
        "credits_per_image": MANIFEST.base_credits,
    }


async def test_without_structured_output_the_grid_and_the_gallery_still_reach_the_view(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, structured_output=False)
    async with Client(build_server(settings), extensions=[APPS_HOST]) as client:
        several = await client.call_tool("generate_image", {"prompt": "two kites", "count": 2})
        listed = await client.call_tool("list_tasks", {"status": "succeeded", "limit": 5})
    assert several.structured_content is None and listed.structured_content is None
    assert len((several.meta or {})[META_KEY]["candidates"]) == 2
    listing = (listed.meta or {})[META_KEY]["listing"]
    assert listing["count"] == 2 and all(t["thumbnail_uri"] for t in listing["tasks"])
