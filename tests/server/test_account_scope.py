"""list_tasks over a journal that holds rows of no known account (schema v1): shown, and marked.

That recovery never re-sends them is tested in tests/test_journal_scope.py (they are not among
``unsubmitted()``) and, end to end, in tests/faults/test_account_scope.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextContent

from rivya_mcp.journal import MIGRATIONS, SqliteStore
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import UNOWNED_NOTE, build_server
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

OLD_KEY = "rivya-mcp-old-intent-from-v1"


def _old_journal(data_dir: Path) -> None:
    """A journal written by a rivya-mcp that did not record upstream or account: one unanswered create."""
    data_dir.mkdir(parents=True)
    store = SqliteStore(data_dir / "journal.sqlite3")
    store.migrate(MIGRATIONS[:1])  # schema version 1: no owner columns yet
    store.close()
    with sqlite3.connect(data_dir / "journal.sqlite3") as conn:
        conn.execute(
            "INSERT INTO tasks (idempotency_key, model, mode, prompt, params, status, created_at, updated_at) "
            "VALUES (?, 'flux-kontext-max', 'generate', 'an old request', '{\"aspectRatio\": \"1:1\"}', "
            "'unsubmitted', '2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00')",
            (OLD_KEY,),
        )


async def test_rows_of_no_known_account_are_listed_marked_and_never_resent(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    _old_journal(settings.data_dir)
    async with Client(build_server(settings)) as client:
        created = await client.call_tool("generate_image", {"prompt": "A new lighthouse", "wait_seconds": 0})
        assert not created.is_error
        listing = await client.call_tool("list_tasks", {})
    assert listing.structured_content is not None
    tasks = {t["idempotency_key"]: t for t in listing.structured_content["tasks"]}
    assert len(tasks) == 2 and OLD_KEY in tasks
    assert tasks[OLD_KEY]["status"] == "unsubmitted" and tasks[OLD_KEY]["task_id"] is None
    [text] = [c.text for c in listing.content if isinstance(c, TextContent)]
    [old_line] = [line for line in text.splitlines() if "an old request" in line]
    [new_line] = [line for line in text.splitlines() if "A new lighthouse" in line]
    assert old_line.endswith(UNOWNED_NOTE) and not new_line.endswith(UNOWNED_NOTE)
