"""The browser half of the viewer tests: our server over Streamable HTTP, the sandbox behind it, and
the Node test host (``run.mjs``) driving system Chromium. Shared by the tests and
``scripts/screenshots.py`` so the README shows what the tests check.

Nothing here skips: a missing node, npm package or chromium is a ``BrowserToolsMissing`` with the
command that fixes it, which the tests turn into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rivya_mcp.sandbox import SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import build_http_app
from tests.server._threaded import ThreadedServer

BROWSER_DIR = Path(__file__).resolve().parent
# Debian's package; the registry's own browser downloads are unreachable, so never a downloaded one.
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
# Short sandbox lifecycle: every task still goes queued → processing → succeeded|failed.
SANDBOX_CONFIG = SandboxConfig(queued_seconds=0.1, processing_seconds=0.4)
HOST_TIMEOUT_SECONDS = 240
SETUP_HINT = "run `bash scripts/ci/browser.sh` (apt-get install chromium, npm ci in tests/browser)"


class BrowserToolsMissing(RuntimeError):
    pass


def ensure_tools() -> str:
    """The node executable, once chromium and the host's npm packages are there (npm ci if not)."""
    node = shutil.which("node")
    if node is None:
        raise BrowserToolsMissing(f"node is not installed; {SETUP_HINT}")
    if not CHROMIUM.exists():
        raise BrowserToolsMissing(f"chromium not found at {CHROMIUM}; {SETUP_HINT}")
    if not (BROWSER_DIR / "node_modules" / "@modelcontextprotocol" / "ext-apps").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            raise BrowserToolsMissing(f"npm is not installed; {SETUP_HINT}")
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=BROWSER_DIR, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise BrowserToolsMissing(f"npm ci in tests/browser failed: {done.stderr[-2000:]}")
    return node


@contextmanager
def viewer_stack(workdir: Path) -> Iterator[tuple[str, Settings]]:
    """The sandbox, and our server in front of it over Streamable HTTP; yields the /mcp URL."""
    with start_sandbox(SANDBOX_CONFIG) as sandbox:
        settings = Settings(
            api_key=Secret("rvya_sk_test_viewer"),
            base_url=sandbox.base_url,
            output_dir=workdir / "out",
            data_dir=workdir / "data",
            poll_scale=0.1,
            # The host page runs on a port of its own: a token-less server accepts only its own
            # origin, so the host's backend (run.mjs's proxy) holds a bearer token, as a real one would.
            auth_token=Secret(HOST_TOKEN),
        )
        with ThreadedServer(build_http_app(settings, transport="http")) as server:
            yield f"{server.base_url}/mcp", settings


HOST_TOKEN = "viewer-test-host-token"


def run_host(node: str, mcp_url: str, out: Path, scenarios: str) -> dict[str, Any]:
    """Runs ``run.mjs`` once (one browser for all its scenarios) and returns its report."""
    done = subprocess.run(
        [node, str(BROWSER_DIR / "run.mjs"), "--mcp", mcp_url, "--out", str(out), "--scenarios", scenarios],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=HOST_TIMEOUT_SECONDS,
        env={**os.environ, "CHROMIUM": str(CHROMIUM), "MCP_TOKEN": HOST_TOKEN},
    )
    if done.returncode != 0:
        tail = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        raise RuntimeError(f"the browser host failed (exit {done.returncode}):\n{tail}")
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return report
