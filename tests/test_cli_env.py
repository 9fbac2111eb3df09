"""A bad value in an environment variable stops each subcommand that reads the settings with one
line naming the variable, exit 2 and no traceback, through the real CLI (``python -m rivya_mcp``).

The table of every variable and value is tests/test_settings.py; here, one per subcommand, and a
legitimate start beside each refusal so that the refusal is the bad value's doing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVYA_")}
    env.update({"HOME": str(home), "RIVYA_DATA_DIR": str(home / "data"), "RIVYA_OUTPUT_DIR": str(home / "out")})
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rivya_mcp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "variable", "value", "shown"),
    [
        (["serve"], "RIVYA_WAIT_SECONDS", "abc", True),
        (["serve", "--transport", "http", "--port", "9"], "RIVYA_ALLOWED_HOSTS", "https://mcp.example.com", True),
        (["sandbox", "--port", "9"], "RIVYA_LOG_LEVEL", "verbose", True),
        (["demo"], "RIVYA_MODEL", "flux-pro", True),
        (["webhooks", "rotate-secret"], "RIVYA_DATABASE_URL", "mysql://rivya:pa55word@db/rivya", False),
        (["webhooks", "rotate-secret"], "RIVYA_API_KEY", "rvya_sk_two words", False),
    ],
)
def test_a_bad_value_stops_the_command_with_one_line(
    tmp_path: Path, args: list[str], variable: str, value: str, shown: bool
) -> None:
    done = _run(args, _env(tmp_path, **{variable: value}))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"rivya-mcp: {variable} must be ")
    assert "Traceback" not in done.stderr
    assert (value in lines[0]) is shown  # a secret's value is never printed
    assert "pa55word" not in done.stderr


def test_the_same_commands_start_with_good_values(tmp_path: Path) -> None:
    # The refusals above are the values' doing: with good ones, serve answers (stdio, EOF at once),
    # and webhooks gets past the settings to its own check of what it needs.
    done = _run(["serve"], _env(tmp_path, RIVYA_WAIT_SECONDS="30", RIVYA_MODEL="flux-kontext-pro"))
    assert done.returncode == 0, done.stderr
    done = _run(["webhooks", "rotate-secret"], _env(tmp_path, RIVYA_LOG_LEVEL="debug"))
    assert done.returncode == 2
    assert done.stderr.startswith("rivya-mcp webhooks rotate-secret needs RIVYA_API_KEY and --public-url")
