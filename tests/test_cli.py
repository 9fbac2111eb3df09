"""The command line: --version, python -m, and the demo end to end (the README's first command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rivya_mcp import __version__
from rivya_mcp.sandbox import SandboxConfig, start_sandbox


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rivya_mcp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env["HOME"] = str(home)
    env["RIVYA_DATA_DIR"] = str(home / "data")
    env["RIVYA_OUTPUT_DIR"] = str(home / "out")
    env["RIVYA_POLL_SCALE"] = "0.3"
    return env


def test_version_is_the_one_defined_in_the_package(tmp_path: Path) -> None:
    done = _run(["--version"], _clean_env(tmp_path), timeout=30)
    assert done.returncode == 0
    assert done.stdout.strip() == f"rivya-mcp {__version__}"


def _saved_paths(stdout: str) -> list[Path]:
    return [Path(line.split("→ ", 1)[1].strip()) for line in stdout.splitlines() if "succeeded → " in line]


@pytest.mark.slow
def test_demo_runs_against_the_embedded_sandbox(tmp_path: Path) -> None:
    done = _run(["demo"], _clean_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "embedded Rivya sandbox" in out
    assert "upload_reference" in out and "edit_image" in out and "get_task" in out
    assert "  … generate: " in out  # plain progress lines when stdout is not a terminal
    assert "Credits used: 24." in out
    saved = _saved_paths(out)
    assert len(saved) == 3
    for path in saved:
        # Sandbox images (placeholders) and its journal stay apart from real use.
        assert path.is_file() and path.parent == tmp_path / "out" / "sandbox"
    assert (tmp_path / "data" / "sandbox" / "journal.sqlite3").is_file()
    assert not (tmp_path / "data" / "journal.sqlite3").exists()


@pytest.mark.slow
def test_demo_with_a_key_says_it_uses_the_real_api_first(tmp_path: Path) -> None:
    # The "real API" here is a sandbox the test owns: what matters is that the demo switches to
    # RIVYA_API_KEY / RIVYA_BASE_URL, says so before spending, and works through them.
    with start_sandbox(SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)) as sandbox:
        env = _clean_env(tmp_path) | {"RIVYA_API_KEY": "rvya_sk_demo_test_key", "RIVYA_BASE_URL": sandbox.base_url}
        done = _run(["demo"], env)
        charges = [e for e in sandbox.state.snapshot()["ledger"] if e["delta"] < 0]
    assert done.returncode == 0, done.stdout + done.stderr
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("RIVYA_API_KEY is set: this demo runs against the real Rivya API")
    assert sandbox.base_url in first_line
    assert len(charges) == 3
    assert "rvya_sk_demo_test_key" not in done.stdout + done.stderr


@pytest.mark.slow
def test_demo_with_an_unreachable_api_says_why_and_exits_1(tmp_path: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    env = _clean_env(tmp_path) | {
        "RIVYA_API_KEY": "rvya_sk_demo_test_key",
        "RIVYA_BASE_URL": "http://127.0.0.1:9",
        "RIVYA_MAX_RETRIES": "0",
    }
    done = _run(["demo"], env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "get_credits failed" in done.stdout
    assert "Could not reach Rivya" in done.stdout
    assert "Check RIVYA_API_KEY" in done.stdout
    assert "Balance: ?" not in done.stdout
    assert "ExceptionGroup" not in done.stdout + done.stderr
    assert "rvya_sk_demo_test_key" not in done.stdout + done.stderr


@pytest.mark.slow
def test_demo_with_an_empty_wallet_says_so_and_exits_1(tmp_path: Path) -> None:
    with start_sandbox(SandboxConfig(starting_balance=0, queued_seconds=0.05, processing_seconds=0.3)) as sandbox:
        env = _clean_env(tmp_path) | {"RIVYA_API_KEY": "rvya_sk_demo_test_key", "RIVYA_BASE_URL": sandbox.base_url}
        done = _run(["demo"], env)
        charges = [e for e in sandbox.state.snapshot()["ledger"] if e["delta"] < 0]
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Balance: 0 credits" in done.stdout
    assert "generate_image failed" in done.stdout
    assert "insufficient_credits" in done.stdout
    assert "ExceptionGroup" not in done.stdout + done.stderr
    assert charges == []


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([], None),
        (["--sandbox"], ["serve", "--sandbox"]),  # a host config's args: ["--sandbox"] (issue 23 item 12)
        (["--transport", "http", "--port", "9000"], ["serve", "--transport", "http", "--port", "9000"]),
        (["--transport=sse"], ["serve", "--transport=sse"]),
        (["serve", "--sandbox"], ["serve", "--sandbox"]),
        (["sandbox", "--port", "1"], ["sandbox", "--port", "1"]),
        (["--version"], ["--version"]),
        (["--help"], ["--help"]),
        (["-h"], ["-h"]),
    ],
)
def test_serves_options_work_without_the_word_serve(argv: list[str], command: list[str] | None) -> None:
    from rivya_mcp.cli import with_default_command

    assert with_default_command(argv) == (command if command is not None else [])


def test_an_unknown_option_is_still_refused(tmp_path: Path) -> None:
    done = _run(["--sandbx"], _clean_env(tmp_path), timeout=30)
    assert done.returncode == 2 and "unrecognized arguments: --sandbx" in done.stderr


@pytest.mark.slow
def test_rivya_mcp_with_serves_flag_is_the_stdio_server(tmp_path: Path) -> None:
    # The README's first host config: command rivya-mcp, args ["--sandbox"]. It was an argparse error.
    import anyio

    from tests._release import check_stdio_server

    env = _clean_env(tmp_path)
    saved = anyio.run(lambda: check_stdio_server(sys.executable, ["-m", "rivya_mcp", "--sandbox"], env, generate=True))
    assert saved is not None and saved.parent == tmp_path / "out" / "sandbox"


def test_serve_help_explains_the_transport_and_names_every_environment_variable(tmp_path: Path) -> None:
    """Issue 23 item 16: ``--transport`` had no text and no variable was named anywhere in the help."""
    from rivya_mcp.sandbox import PROFILE_ENV, WEBHOOK_SIGNING_ENV
    from tests._scripts import load_script

    done = _run(["serve", "--help"], _clean_env(tmp_path), timeout=30)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())  # argparse wraps option help at the terminal's width
    assert "--transport {stdio,sse,http} how clients reach the server: stdio" in text
    read = {*load_script("gen_docs").settings_env_vars(), PROFILE_ENV, WEBHOOK_SIGNING_ENV}
    read.add("RIVYA_SANDBOX_WEBHOOKS_ALLOW_LOOPBACK")  # read by cli._start_embedded_sandbox
    named = {word.strip(",") for word in text.split() if word.startswith("RIVYA_")}
    assert read <= named, f"serve --help does not name {sorted(read - named)}"


@pytest.mark.parametrize("command", [["serve", "--transport", "http", "--port", "0"], ["doctor"]])
def test_a_relative_read_dir_stops_the_command_with_a_clear_error(tmp_path: Path, command: list[str]) -> None:
    """Issue 23 item 11: a relative RIVYA_READ_DIRS entry was resolved against the working directory."""
    done = _run(command, _clean_env(tmp_path) | {"RIVYA_READ_DIRS": "images"}, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "RIVYA_READ_DIRS must be absolute folder paths" in done.stderr and "not 'images'" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_sandbox_with_a_shared_database_warns_at_start_and_keeps_no_state(tmp_path: Path) -> None:
    """Issue 23 item 15: replicas each with ``--sandbox`` on one database each had a sandbox of their
    own, so a task made through one was "no record" on the others; nothing said so."""
    # Port 9 (discard): the database is never reached; the warning comes first, then the refusal.
    shared = _clean_env(tmp_path) | {"RIVYA_DATABASE_URL": "postgresql://rivya@127.0.0.1:9/rivya"}
    done = _run(["serve", "--sandbox"], shared, timeout=60)
    assert "--sandbox with RIVYA_DATABASE_URL: this replica gets a sandbox of its own" in done.stderr
    assert "rivya-mcp sandbox --port 8765" in done.stderr and "RIVYA_BASE_URL" in done.stderr
    assert not (tmp_path / "data" / "sandbox" / "embedded").exists()  # one fixed account would mix replicas
    alone = _run(["serve", "--sandbox"], _clean_env(tmp_path), timeout=60)
    assert alone.returncode == 0, alone.stderr
    assert "RIVYA_DATABASE_URL" not in alone.stderr
    assert (tmp_path / "data" / "sandbox" / "embedded" / "lock").is_file()  # alone, it keeps its state
