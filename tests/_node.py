"""Node for the tests that drive JavaScript we did not write (the Tasks extension's client and the
conformance suite, oidc-provider and the TypeScript MCP client): find a Node binary, install a
folder's locked packages once, and speak JSON lines with a long-lived script.

No Node means a loud failure, never a skip. CI installs the packages with scripts/ci/node.sh; a
fresh clone gets ``npm ci`` on first use.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytest

NPM_CI_TIMEOUT_SECONDS = 300


def node_major(node: str) -> int:
    """The major version of the Node binary at ``node``, 0 when it does not run."""
    try:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
        return int(version.strip().lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0


def npm_ci(js_dir: Path, installed: Sequence[Path]) -> None:
    """``npm ci`` in ``js_dir`` from its committed lock file unless every path of ``installed`` exists."""
    if all(path.exists() for path in installed):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"{js_dir}/node_modules is missing and npm was not found: run `npm ci` there (or scripts/ci/node.sh).",
            pytrace=False,
        )
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=js_dir,
        capture_output=True,
        text=True,
        timeout=NPM_CI_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed in {js_dir}:\n{done.stdout}\n{done.stderr}", pytrace=False)


class JsonLines:
    """One long-lived ``node <script>``: a JSON command in, one JSON answer out, each answer awaited
    for a bounded time (a hung script fails the test, never hangs it)."""

    def __init__(self, command: Sequence[str], *, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> None:
        self.timeout = timeout
        self._process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the script's own errors and warnings go to the test's stderr
            text=True,
            env={**os.environ, **(env or {})},
        )

    def answer(self, what: str, timeout: float | None = None) -> dict[str, Any]:
        """The script's next line, which must say ``ok``."""
        _, stdout = self._pipes()
        wait = self.timeout if timeout is None else timeout
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(wait):
                pytest.fail(f"node {what}: no answer within {wait:g} s")
        line = stdout.readline()
        if not line:
            pytest.fail(f"node exited (code {self._process.wait(10)}) on {what}")
        answer: dict[str, Any] = json.loads(line)
        assert answer.pop("ok"), answer.get("error")
        return answer

    def send(self, timeout: float | None = None, **command: Any) -> dict[str, Any]:
        stdin, _ = self._pipes()
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self.answer(str(command.get("op")), timeout)

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
