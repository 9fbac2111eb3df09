"""What the repository itself must never hold: merge-conflict markers left in a committed file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^(?:<{7} |>{7} |={7}$)", re.MULTILINE)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".json", ".yaml", ".yml", ".sh", ".html", ".mjs", ".js", ".cfg", ".txt"}


def test_no_file_holds_merge_conflict_markers() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    names = [name for name in listed.decode().split("\0") if name]
    assert names, "git ls-files listed nothing: run the tests from a git checkout"
    marked = []
    for name in names:
        path = ROOT / name
        if path.suffix not in TEXT_SUFFIXES and path.name not in ("Dockerfile", ".gitignore"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if MARKER.search(text):
            marked.append(name)
    assert not marked, f"merge-conflict markers in: {marked}"
