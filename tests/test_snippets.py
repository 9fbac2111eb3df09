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
