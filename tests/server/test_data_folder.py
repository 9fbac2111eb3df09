"""A data folder that breaks after start-up: no create is sent without the journal, and the agent is told."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import TextContent

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from tests.server.conftest import TEST_KEY, settings_for

pytestmark = pytest.mark.anyio


async def test_without_its_journal_the_server_sends_no_create(sandbox: RunningSandbox, tmp_path: Path) -> None:
    blocker = tmp_path / "data-file"
    blocker.write_text("a file where the data folder should be\n")
    # Its own key: this test's account in the module's sandbox, so its task list is its own.
    key = TEST_KEY + "_data_folder"
    settings = settings_for(sandbox, tmp_path, key=key, data_dir=blocker / "data")
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("generate_image", {"prompt": "A lantern", "wait_seconds": 0})
        # The legitimate call works once the folder does.
        blocker.unlink()
        working = await client.call_tool("generate_image", {"prompt": "A lantern", "wait_seconds": 0})
    assert result.is_error
    [text] = [c.text for c in result.content if isinstance(c, TextContent)]
    assert text.startswith("Error (data_folder_unusable): The data folder ")
    assert "part of the path is a file, not a folder" in text and "no credits were spent" in text
    assert not working.is_error
    account = "acct_" + hashlib.sha256(key.encode()).hexdigest()[:12]  # how the sandbox names accounts
    mine = [t for t in sandbox.state.snapshot()["tasks"] if t["account"] == account]
    assert len(mine) == 1  # the one created after the fix; none while the journal was missing
