"""Every snippet in the README and the docs runs as written, on a checkout after the Quick start.

A fenced block is run by its language: ``bash``/``sh`` blocks in one shell per document, in order
(a later block may use a sandbox an earlier one started in the background), ``python`` blocks with
the Quick start's ``.venv/bin/python``, ``json`` blocks are parsed. The shell has the Quick start's
result (``.venv``) but is *not* activated, and has a fresh ``HOME`` and no ``RIVYA_*`` variables,
as a newcomer's would. A block that cannot run here says why right above it:

    <!-- snippet: not-run: the reason -->

and the sandbox, curl and client snippets may not say so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "manifests" / "README.md"]
FENCE = re.compile(
    r"^(?:<!-- snippet: (?P<directive>[^\n]*?) -->\n)?```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
SHELL_LANGS = {"bash", "sh", "shell"}
RUNNABLE_LANGS = SHELL_LANGS | {"python", "json"}
# What marks a snippet as one the issue says must run: the sandbox, curl, the client.
MUST_RUN = re.compile(r"\bcurl\b|rivya-mcp sandbox|rivya_mcp\.sandbox|rivya_mcp\.client|AsyncRivyaClient")
SECONDS_PER_DOCUMENT = 120


@dataclass(frozen=True)
class Snippet:
    document: Path
    line: int
    lang: str
    body: str
    not_run: str | None

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def snippets(document: Path) -> list[Snippet]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        directive = match.group("directive")
        reason = None
        if directive is not None:
            kind, _, reason = directive.partition(":")
            assert kind.strip() == "not-run" and reason.strip(), f"{document}: bad snippet directive {directive!r}"
            reason = reason.strip()
        line = text.count("\n", 0, match.start("body"))
        found.append(Snippet(document, line, match.group("lang").lower(), match.group("body"), reason))
    return found


ALL = [s for d in DOCUMENTS for s in snippets(d)]


def _newcomer_env(home: Path) -> dict[str, str]:
    venv_bin = str(REPO / ".venv" / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIVYA_", "VIRTUAL_ENV", "PYTHON"))}
    return env | {"HOME": str(home), "PATH": path}


def _script(document: Path) -> str:
    parts = [
        "set -euo pipefail",
        # Whatever a snippet started in the background ends with the document.
        "trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT",
    ]
    for snippet in snippets(document):
        if snippet.not_run is not None:
            continue
        parts.append(f"echo '>>> {snippet.where}' >&2")
        if snippet.lang in SHELL_LANGS:
            parts.append(snippet.body)
        elif snippet.lang == "python":
            parts.append(f".venv/bin/python - <<'SNIPPET_END'\n{snippet.body}SNIPPET_END")
    return "\n".join(parts) + "\n"


def test_the_quick_start_venv_is_there() -> None:
    # The snippets run "after the Quick start": scripts/test made this venv before pytest started.
    assert (REPO / ".venv" / "bin" / "python").is_file(), "run the suite with `bash scripts/test`"


def test_every_snippet_says_how_it_is_checked() -> None:
    assert ALL, "no snippets found: the fence pattern no longer matches the docs"
    for snippet in ALL:
        if snippet.not_run is not None:
            assert snippet.lang in RUNNABLE_LANGS, f"{snippet.where}: a not-run mark on a {snippet.lang!r} block"
            assert not MUST_RUN.search(snippet.body), f"{snippet.where}: sandbox/curl/client snippets must run"


@pytest.mark.parametrize("snippet", [s for s in ALL if s.lang == "json"], ids=lambda s: s.where)
def test_json_snippets_parse(snippet: Snippet) -> None:
    json.loads(snippet.body)


RUN_DOCUMENTS = [
    d for d in DOCUMENTS if any(s.lang in SHELL_LANGS | {"python"} and s.not_run is None for s in snippets(d))
]


@pytest.mark.slow
@pytest.mark.parametrize("document", RUN_DOCUMENTS, ids=lambda d: str(d.relative_to(REPO)))
def test_the_snippets_of_a_document_run_as_written(document: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", "-c", _script(document)],
        cwd=REPO,
        env=_newcomer_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=SECONDS_PER_DOCUMENT,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )


def test_a_bare_command_fails_here_as_it_would_for_a_newcomer(tmp_path: Path) -> None:
    # The check above would be worthless if the shell found the venv's commands anyway.
    done = subprocess.run(
        ["bash", "-c", "command -v rivya-mcp"],
        cwd=REPO,
        env=_newcomer_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode != 0 or not done.stdout.startswith(str(REPO)), done.stdout


# --- Host configurations: started as the host would start them -----------------------------------

CLONE_PLACEHOLDER = "/absolute/path/to/rivya-mcp/"
# The snippets' placeholder key, and VS Code's input, become a key the sandbox accepts (any
# well-formed rvya_sk_ key is an account there).
PLACEHOLDER_KEY = "rvya_sk_..."
SANDBOX_KEY = "rvya_sk_host_config_test"


@dataclass(frozen=True)
class HostServer:
    """One stdio server entry of a host config snippet (``mcpServers`` or VS Code's ``servers``)."""

    snippet: Snippet
    name: str
    command: str
    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return f"{self.snippet.where}:{self.name}"


def host_servers() -> list[HostServer]:
    found = []
    for snippet in ALL:
        if snippet.lang != "json":
            continue
        config = json.loads(snippet.body)
        servers = config.get("mcpServers", config.get("servers", {})) if isinstance(config, dict) else {}
        for name, entry in servers.items():
            if "command" in entry:
                env = tuple(sorted(entry.get("env", {}).items()))
                found.append(HostServer(snippet, name, entry["command"], tuple(entry.get("args", [])), env))
    return found


HOST_SERVERS = host_servers()


def test_the_readme_leads_with_host_configs_that_work_today() -> None:
    readme = [s for s in HOST_SERVERS if s.snippet.document.name == "README.md"]
    assert readme, "no host configuration found in the README"
    # The first configuration a newcomer meets is the checkout's, and it runs the sandbox (no key).
    assert readme[0].command.startswith(CLONE_PLACEHOLDER) and "--sandbox" in readme[0].args
    kinds = {(s.command == "uvx", "--sandbox" in s.args) for s in readme}
    assert kinds == {(False, False), (False, True), (True, False), (True, True)}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("server", HOST_SERVERS, ids=lambda s: s.id)
def test_a_host_config_starts_lists_its_tools_and_generates(
    server: HostServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each configuration as written, with only the clone's path filled in and ``uvx`` given the
    locally built wheel (``uvx --from <wheel>``: the release is not on PyPI yet). The keyed forms
    reach the sandbox through ``RIVYA_BASE_URL`` in the host's environment; nothing else is added."""
    import anyio

    from rivya_mcp.sandbox import SandboxConfig, start_sandbox
    from tests._release import check_stdio_server, newcomer_env, uv_env, uvx_bin

    args = list(server.args)
    if server.command.startswith(CLONE_PLACEHOLDER):
        command = str(REPO / server.command.removeprefix(CLONE_PLACEHOLDER))
        assert Path(command).is_file(), f"{server.id}: {command} does not exist after the Quick start"
    elif server.command == "uvx":
        assert args[:1] == ["rivya-mcp"], f"{server.id}: uvx runs something else: {args}"
        command, args = str(uvx_bin()), ["--from", str(request.getfixturevalue("dist").wheel), *args]
    else:
        raise AssertionError(f"{server.id}: a host command this test cannot run: {server.command!r}")
    server_env = {k: SANDBOX_KEY if v == PLACEHOLDER_KEY or v.startswith("${input:") else v for k, v in server.env}
    home = tmp_path / "home"
    home.mkdir()
    sandbox = None if "--sandbox" in args else start_sandbox(SandboxConfig(queued_seconds=0.2, processing_seconds=0.5))
    try:
        extra = {"RIVYA_POLL_SCALE": "0.1"} | ({"RIVYA_BASE_URL": sandbox.base_url} if sandbox else {})
        env = uv_env(newcomer_env(home, **extra)) | server_env
        saved = anyio.run(lambda: check_stdio_server(command, args, env, generate=True))
    finally:
        if sandbox is not None:
            sandbox.stop()
    assert saved is not None and saved.is_relative_to(home)
