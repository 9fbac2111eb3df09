"""The Claude Desktop bundle started the way Claude Desktop starts it (issue 25 item 3).

The `.mcpb` is built by scripts/build_mcpb.py (the pinned mcpb CLI from npm), unpacked into a
folder whose name has a space (as "Claude Extensions" does), and its `server.mcp_config` is run
as the host runs it: `${__dirname}` and the user's settings substituted, a setting the user left
blank passed on as the literal placeholder (what Claude Desktop does, see scripts/mcpb_entry.py),
`uv` found on PATH, an empty HOME. The Rivya API is the sandbox, reached over loopback through
`RIVYA_BASE_URL` in the host's environment, so the generation is a real one through the bundle's
own server.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from rivya_mcp.sandbox import SandboxConfig, start_sandbox
from tests._release import TOOLS, check_stdio_server, install_dir, newcomer_env, tool_dir, uv_env
from tests._scripts import load_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

build_mcpb = load_script("build_mcpb")
KEY = "rvya_sk_bundle_test_key"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def substitute(value: str, *, dirname: Path, user_config: dict[str, str]) -> str:
    """What the host does to each argument and environment value: ``${__dirname}`` is the unpacked
    bundle, ``${user_config.X}`` the user's setting; a setting left blank stays as written."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "__dirname":
            return str(dirname)
        if name.startswith("user_config.") and name.removeprefix("user_config.") in user_config:
            return user_config[name.removeprefix("user_config.")]
        return match.group(0)

    return PLACEHOLDER.sub(one, value)


def test_substitute_follows_the_host() -> None:
    assert substitute("${__dirname}/x", dirname=Path("/b"), user_config={}) == "/b/x"
    assert substitute("${user_config.api_key}", dirname=Path("/b"), user_config={"api_key": "k"}) == "k"
    assert substitute("${user_config.output_dir}", dirname=Path("/b"), user_config={}) == "${user_config.output_dir}"


@pytest.fixture(scope="module")
def unpacked() -> Iterator[Path]:
    """The bundle, built and unpacked once (uv's .venv in the bundle folder is what a host keeps
    between starts too)."""
    with install_dir("mcpb") as out:
        bundle = build_mcpb.build(out / "dist")  # npm/node missing: BuildError, a loud failure
        target = out / "Claude Extensions" / "rivya-mcp"
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(target)
        yield target


@pytest.mark.parametrize("output_dir", ["blank", "chosen"])
def test_the_unpacked_bundle_lists_its_tools_and_generates(unpacked: Path, tmp_path: Path, output_dir: str) -> None:
    manifest: dict[str, Any] = json.loads((unpacked / "manifest.json").read_text(encoding="utf-8"))
    assert {tool["name"] for tool in manifest["tools"]} == TOOLS
    config = manifest["server"]["mcp_config"]
    home = tmp_path / "home"
    home.mkdir()
    user_config = {"api_key": KEY}
    if output_dir == "chosen":
        user_config["output_dir"] = str(tmp_path / "My Images")
    args = [substitute(a, dirname=unpacked, user_config=user_config) for a in config["args"]]
    server_env = {k: substitute(v, dirname=unpacked, user_config=user_config) for k, v in config["env"].items()}
    assert server_env["RIVYA_API_KEY"] == KEY
    sandbox = start_sandbox(SandboxConfig(queued_seconds=0.2, processing_seconds=0.5))
    try:
        env = uv_env(newcomer_env(home, RIVYA_BASE_URL=sandbox.base_url, RIVYA_POLL_SCALE="0.1"))
        # The host finds `uv` on its PATH; only uv's own commands are added to a newcomer's PATH.
        env["PATH"] = f"{tool_dir(tmp_path / 'tools', 'uv', 'uvx')}:{env['PATH']}"
        saved = anyio.run(lambda: check_stdio_server(config["command"], args, env | server_env, generate=True))
    finally:
        sandbox.stop()
    assert saved is not None
    if output_dir == "chosen":
        assert saved.parent == tmp_path / "My Images"
    else:
        # The blank setting reached the server as "${user_config.output_dir}"; server/main.py dropped
        # it, so the server's own default (a folder in the empty HOME) applies, not a relative folder
        # named after the placeholder.
        assert saved.is_relative_to(home) and "${" not in str(saved)
