"""An unusable data folder: the server refuses to serve with a key, and says why and what to do.

Through the CLI as a subprocess. The folders are made unusable in ways that hold for root too
(CI runs as root, where a chmod'ed folder stays writable): a path under a regular file, and a
regular file where the folder should be.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import TextContent

KEY = "rvya_sk_data_dir_test_0123456789"

pytestmark = pytest.mark.anyio


def _env(tmp_path: Path, data_dir: Path, *, key: str | None = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update({"HOME": str(tmp_path), "RIVYA_DATA_DIR": str(data_dir), "RIVYA_OUTPUT_DIR": str(tmp_path / "out")})
    if key:
        env["RIVYA_API_KEY"] = key
        env["RIVYA_BASE_URL"] = "http://127.0.0.1:9"  # never reached: nothing is called
    return env


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # stdin at EOF: a server that starts ends its stdio session at once and exits 0.
    return subprocess.run(
        [sys.executable, "-m", "rivya_mcp", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _unusable(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A data folder that can't be created, and the words the refusal must use for it."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder\n")
    if how == "under_a_file":
        return blocker / "data", "part of the path is a file, not a folder"
    return blocker, "a file (not a folder) already has that name"


@pytest.mark.parametrize("how", ["under_a_file", "is_a_file"])
@pytest.mark.parametrize("sandbox", [False, True])
def test_with_a_key_an_unusable_data_folder_is_refused_at_start(tmp_path: Path, how: str, sandbox: bool) -> None:
    data_dir, reason = _unusable(tmp_path, how)
    done = _serve(_env(tmp_path, data_dir), *(["--sandbox"] if sandbox else []))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""  # stdout is the protocol: nothing but JSON-RPC may go there
    folder = data_dir / "sandbox" if sandbox else data_dir  # the sandbox keeps its journal apart
    if sandbox:
        reason = "part of the path is a file, not a folder"  # <file>/sandbox, whichever way
    assert f"The data folder {folder} cannot hold the task journal: {reason}." in done.stderr
    assert "RIVYA_DATA_DIR" in done.stderr and "restart" in done.stderr
    assert "Traceback" not in done.stderr and KEY not in done.stderr


def test_with_a_key_a_usable_data_folder_serves(tmp_path: Path) -> None:
    done = _serve(_env(tmp_path, tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "journal.sqlite3").is_file()


async def test_without_a_key_the_server_starts_lists_tools_and_list_tasks_says_why(tmp_path: Path) -> None:
    """No key: nothing can be paid for, so tools/list keeps working; the journal's absence is said."""
    data_dir, reason = _unusable(tmp_path, "under_a_file")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "rivya_mcp", "serve"], env=_env(tmp_path, data_dir, key=None)
    )
    with (tmp_path / "server.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            listing = await client.call_tool("list_tasks", {})
    assert {"generate_image", "list_tasks"} <= tools
    assert listing.is_error
    [text] = [c.text for c in listing.content if isinstance(c, TextContent)]
    assert text.startswith("Error (data_folder_unusable): ")
    assert f"The data folder {data_dir} cannot hold the task journal: {reason}." in text
    assert "RIVYA_DATA_DIR" in text


def _damage(journal: Path, how: str) -> None:
    """A real journal (the server made it), then damaged as a crash, a disk or a careless hand would."""
    if how == "truncated to 0 bytes":
        journal.write_bytes(b"")
    elif how == "a damaged page":
        data = bytearray(journal.read_bytes())
        data[4096:8192] = b"\xa5" * 4096  # page 2: the first b-tree page after the schema
        journal.write_bytes(bytes(data))
    else:
        journal.write_bytes(b"not a database, whatever it once was\n" * 200)


@pytest.mark.parametrize(
    ("how", "sandbox"),
    [
        ("truncated to 0 bytes", False),
        ("a damaged page", False),
        ("overwritten", False),
        ("truncated to 0 bytes", True),
    ],
)
def test_a_damaged_journal_stops_the_server_with_the_file_and_the_way_out(
    tmp_path: Path, how: str, sandbox: bool
) -> None:
    """Issue 23 item 7: an empty journal started afresh and a damaged one was used, silently."""
    data_dir = tmp_path / "data"
    flags = ["--sandbox"] if sandbox else []
    assert _serve(_env(tmp_path, data_dir), *flags).returncode == 0  # a brand-new journal is created
    journal = (data_dir / "sandbox" if sandbox else data_dir) / "journal.sqlite3"
    assert journal.stat().st_size > 0
    _damage(journal, how)
    damaged = journal.read_bytes()
    done = _serve(_env(tmp_path, data_dir), *flags)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert f"The task journal {journal} is damaged" in done.stderr
    assert f"mv '{journal}' '{journal}.damaged'" in done.stderr and "start the server again" in done.stderr
    assert "Traceback" not in done.stderr and KEY not in done.stderr
    assert journal.read_bytes() == damaged  # refused, not repaired or replaced behind the user's back
    # The documented way out: moved aside, the server starts on a new journal.
    journal.rename(journal.with_name("journal.sqlite3.damaged"))
    assert _serve(_env(tmp_path, data_dir), *flags).returncode == 0
    assert journal.stat().st_size > 0
