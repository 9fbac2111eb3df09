"""An API that echoes the key in every string it sends: nothing of it reaches a result, a log or the journal.

The sandbox's fault rules put the account's own key into each field the API answers with: the
error code, message and ``requestId``, the ``x-request-id`` header, and a failed task's error
code and message. Each case is driven through a real MCP client; then the results (text and
structured content), every log record down to DEBUG (the client logs request ids) and every
file the test wrote (the sqlite journal and its WAL, saved images) are scanned for the key.
"""

from __future__ import annotations

import base64
import logging
import sys
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from rivya_mcp.server import build_server
from tests._leaks import decoded_key_parts, leaks_in_tree
from tests.faults._process import process_transport, server_env
from tests.faults.conftest import Account, set_faults, text_of

pytestmark = pytest.mark.anyio

CREATE = {"path": "/api/v1/generations", "method": "POST"}


def _seen(results: list[CallToolResult]) -> str:
    return "\n".join(text_of(r) + repr(r.structured_content) for r in results)


def _assert_scrubbed(account: Account, results: list[CallToolResult], caplog: pytest.LogCaptureFixture) -> None:
    key = account.key
    assert key not in _seen(results)
    assert all(key not in record.getMessage() for record in caplog.records)
    assert leaks_in_tree(account.workdir) == []
    # The scrubbing left a mark where the key was, so the test did put the key in those fields.
    assert "[redacted]" in _seen(results)


def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Our loggers at DEBUG; httpx2/httpcore2 stay quiet as the CLI sets them (cli.QUIET_LOGGERS:
    their DEBUG traces print raw headers, which no scrubbing of ours can reach)."""
    caplog.set_level(logging.DEBUG, logger="rivya_mcp")


def _echo(key: str) -> dict[str, Any]:
    """An error envelope with the key in its code, message and request id (body and header)."""
    return {"code": f"bad_{key}", "message": f"the key {key} is wrong", "request_id": f"req_{key}"}


async def test_a_refused_create_echoing_the_key_is_scrubbed_everywhere(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    _debug_logs(caplog)
    set_faults(account.sandbox, [{**CREATE, "status": 400, **_echo(account.key)}])
    async with Client(build_server(account.settings())) as client:
        refused = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
        listing = await client.call_tool("list_tasks", {})
    assert refused.is_error and "Error (" in text_of(refused)
    assert "rejected" in repr(listing.structured_content)  # the journal recorded the refusal with its code
    _assert_scrubbed(account, [refused, listing], caplog)
    assert account.tasks() == []


async def test_a_retried_server_error_echoing_the_key_is_scrubbed_everywhere(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    _debug_logs(caplog)  # each retry is logged with the request id
    set_faults(account.sandbox, [{**CREATE, "status": 503, "phase": "after", **_echo(account.key)}])
    async with Client(build_server(account.settings(max_retries=1))) as client:
        failed = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
        listing = await client.call_tool("list_tasks", {})
    assert failed.is_error and "unconfirmed" in repr(listing.structured_content)
    _assert_scrubbed(account, [failed, listing], caplog)


async def test_a_failed_task_echoing_the_key_is_scrubbed_everywhere(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    _debug_logs(caplog)
    key = account.key
    async with Client(build_server(account.settings())) as client:
        pending = await client.call_tool("generate_image", {"prompt": "A fox [sandbox:seconds=30]", "wait_seconds": 0})
        task_id = (pending.structured_content or {})["task_id"]
        failed_task = {
            "id": task_id,
            "status": "failed",
            "model": "flux-kontext-max",
            "reserved_credits": 8,
            "final_credits": 0,
            "error": {"code": f"failed_{key}", "message": f"upstream said {key}"},
        }
        set_faults(
            account.sandbox,
            [{"path": f"/api/v1/generations/{task_id}", "method": "GET", "body": failed_task, "request_id": key}],
        )
        # Waits for the task's next turn (the documented pace): then the failed answer arrives.
        failed = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10})
        listing = await client.call_tool("list_tasks", {"status": "failed"})
    assert failed.is_error and (failed.structured_content or {}).get("status") == "failed"
    assert [t["task_id"] for t in (listing.structured_content or {})["tasks"]] == [task_id]
    _assert_scrubbed(account, [failed, listing], caplog)


@pytest.mark.slow
async def test_over_stdio_the_echoed_key_reaches_neither_results_nor_stderr_nor_the_journal(account: Account) -> None:
    """The same echoes through the real stdio server (``python -m rivya_mcp serve``) at DEBUG.

    Its stderr has a second guard of its own (the CLI's log filter hides the key too); the
    results and the journal have only the client's scrubbing.
    """
    key = account.key
    settings = account.settings(max_retries=1)
    env = {**server_env(settings), "RIVYA_LOG_LEVEL": "DEBUG", "RIVYA_MAX_RETRIES": "1"}
    stderr_path = account.workdir / "server-stderr.log"
    results: list[CallToolResult] = []
    with stderr_path.open("w") as errlog:
        process = await anyio.open_process([sys.executable, "-m", "rivya_mcp", "serve"], env=env, stderr=errlog)
        try:
            async with Client(process_transport(process)) as client:
                set_faults(account.sandbox, [{**CREATE, "status": 503, "phase": "after", **_echo(key)}])
                results.append(await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0}))
                set_faults(account.sandbox, [])
                pending = await client.call_tool(
                    "generate_image", {"prompt": "An owl [sandbox:seconds=30]", "wait_seconds": 0}
                )
                task_id = (pending.structured_content or {})["task_id"]
                failed_task = {"id": task_id, "status": "failed", "error": {"code": key, "message": key}}
                rule = {"path": f"/api/v1/generations/{task_id}", "body": failed_task, "request_id": key}
                set_faults(account.sandbox, [rule])
                results.append(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0}))
                results.append(await client.call_tool("list_tasks", {}))
        finally:
            with anyio.CancelScope(shield=True):
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    stderr = stderr_path.read_text()
    assert "request" in stderr and task_id in stderr  # the DEBUG log did run
    assert key not in stderr
    assert key not in _seen(results) and "[redacted]" in _seen(results)
    assert leaks_in_tree(account.workdir) == []


# --- other spellings of the key (issue 23 item 8) ---------------------------------------------


def _spelled_echoes(key: str) -> dict[str, Any]:
    """An error envelope carrying the key base64- and hex-encoded, and its first characters as the
    request id (body and ``x-request-id`` header), as an upstream's debug output might."""
    encoded = base64.b64encode(f"Bearer {key}".encode()).decode()
    return {
        "code": f"bad_auth_{key.encode().hex()}",
        "message": f"token {encoded} (urlsafe {base64.urlsafe_b64encode(key.encode()).decode().rstrip('=')}) refused",
        "request_id": f"req_{key[:20]}",
    }


def _assert_no_spelling(key: str, seen: str) -> None:
    assert key[:16] not in seen and key.removeprefix("rvya_sk_")[:8] not in seen, seen
    assert decoded_key_parts(seen, key) == [], seen


async def test_an_error_echoing_the_key_in_other_spellings_is_scrubbed_everywhere(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    _debug_logs(caplog)
    set_faults(account.sandbox, [{**CREATE, "status": 400, **_spelled_echoes(account.key)}])
    async with Client(build_server(account.settings())) as client:
        refused = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
        listing = await client.call_tool("list_tasks", {})
    assert refused.is_error and "Error (" in text_of(refused)
    seen = _seen([refused, listing])
    assert "[redacted]" in seen  # the echoes were there, and were blanked
    _assert_no_spelling(account.key, seen)
    _assert_no_spelling(account.key, "\n".join(record.getMessage() for record in caplog.records))
    for path in account.workdir.rglob("*"):
        if path.is_file():
            _assert_no_spelling(account.key, path.read_bytes().decode("latin-1"))
    assert account.tasks() == []


@pytest.mark.slow
async def test_over_stdio_other_spellings_of_the_key_reach_neither_results_nor_stderr(account: Account) -> None:
    key = account.key
    settings = account.settings(max_retries=1)
    env = {**server_env(settings), "RIVYA_LOG_LEVEL": "DEBUG", "RIVYA_MAX_RETRIES": "1"}
    stderr_path = account.workdir / "server-stderr.log"
    with stderr_path.open("w") as errlog:
        process = await anyio.open_process([sys.executable, "-m", "rivya_mcp", "serve"], env=env, stderr=errlog)
        try:
            async with Client(process_transport(process)) as client:
                set_faults(account.sandbox, [{**CREATE, "status": 503, "phase": "after", **_spelled_echoes(key)}])
                failed = await client.call_tool("generate_image", {"prompt": "A fox", "wait_seconds": 0})
                listing = await client.call_tool("list_tasks", {})
        finally:
            with anyio.CancelScope(shield=True):
                assert process.stdin is not None
                await process.stdin.aclose()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    seen = _seen([failed, listing])
    assert failed.is_error and "[redacted]" in seen
    _assert_no_spelling(key, seen)
    stderr = stderr_path.read_text()
    assert "request" in stderr  # the DEBUG log did run (it names request ids)
    _assert_no_spelling(key, stderr)
    for path in (account.workdir / "data").rglob("*"):
        if path.is_file():
            _assert_no_spelling(key, path.read_bytes().decode("latin-1"))
