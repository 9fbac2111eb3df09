#!/usr/bin/env python3
"""Build the MCP Bundle (``.mcpb``, for Claude Desktop) into ``dist/``.

    python scripts/build_mcpb.py [--out DIR]

The bundle uses the MCPB ``uv`` server type (manifest_version 0.4): it carries the project source
and ``pyproject.toml``, and the host installs Python and the dependencies with uv on first start.
The classic ``python`` type would have to ship every dependency in ``server/lib``, which cannot be
done portably for compiled wheels (pydantic-core, Pillow) — see manifests/README.md.

Steps: stage manifest.json, pyproject.toml, README.md, LICENSE, hatch_build.py (the build hook
pyproject.toml names: without it uv cannot build the project), src/rivya_mcp, manifests/models and the
entry point (scripts/mcpb_entry.py as server/main.py) in a temporary directory; ``mcpb validate``;
``mcpb pack`` into ``dist/rivya-mcp-<version>.mcpb``. The mcpb CLI is the pinned npm package,
installed once into ``.cache/npm`` (git-ignored) and reused; tests/test_packaging.py uses the same one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MCPB_PACKAGE = "@anthropic-ai/mcpb"
# Pinned: the manifest is checked against this release's schema. 2.x is the first line with
# manifest_version 0.4 and the "uv" server type.
MCPB_VERSION = "2.1.2"
NPM_PREFIX = REPO / ".cache" / "npm"
MANIFEST = REPO / "manifests" / "manifest.json"
ENTRY_SOURCE = REPO / "scripts" / "mcpb_entry.py"

# What goes into the bundle, relative to the repository: enough for uv to build and run the project.
STAGED_FILES = ("pyproject.toml", "README.md", "LICENSE", "hatch_build.py")
STAGED_TREES = ("src/rivya_mcp", "manifests/models")
IGNORED = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".DS_Store")


class BuildError(RuntimeError):
    """The bundle could not be built; the message says why."""


def mcpb_package_dir(prefix: Path = NPM_PREFIX) -> Path:
    return prefix / "node_modules" / "@anthropic-ai" / "mcpb"


def installed_mcpb_version(prefix: Path = NPM_PREFIX) -> str | None:
    package_json = mcpb_package_dir(prefix) / "package.json"
    if not package_json.is_file():
        return None
    version = json.loads(package_json.read_text(encoding="utf-8")).get("version")
    return version if isinstance(version, str) else None


def ensure_mcpb(prefix: Path = NPM_PREFIX) -> Path:
    """The pinned mcpb package directory, installed with npm on first use and reused afterwards."""
    if installed_mcpb_version(prefix) != MCPB_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            raise BuildError("npm is not on PATH: install Node.js (npm) to build or validate the bundle")
        prefix.mkdir(parents=True, exist_ok=True)
        command = [
            npm,
            "install",
            "--prefix",
            str(prefix),
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"{MCPB_PACKAGE}@{MCPB_VERSION}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or installed_mcpb_version(prefix) != MCPB_VERSION:
            raise BuildError(f"`{' '.join(command[1:])}` failed:\n{result.stdout}{result.stderr}")
    return mcpb_package_dir(prefix)


def mcpb_command(package_dir: Path, *args: str) -> list[str]:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not on PATH: install Node.js to run the mcpb CLI")
    return [node, str(package_dir / "dist" / "cli" / "cli.js"), *args]


def run_mcpb(package_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the mcpb CLI; the result carries its exit code and output."""
    return subprocess.run(mcpb_command(package_dir, *args), capture_output=True, text=True, check=False)


def project_version() -> str:
    from rivya_mcp import __version__

    return __version__


def stage(target: Path) -> Path:
    """Lay the bundle out in ``target`` (which must not exist yet); return it."""
    target.mkdir(parents=True)
    shutil.copy2(MANIFEST, target / "manifest.json")
    for name in STAGED_FILES:
        shutil.copy2(REPO / name, target / name)
    for tree in STAGED_TREES:
        shutil.copytree(REPO / tree, target / tree, ignore=IGNORED)
    entry = json.loads(MANIFEST.read_text(encoding="utf-8"))["server"]["entry_point"]
    (target / entry).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ENTRY_SOURCE, target / entry)
    return target


def build(out_dir: Path, *, package_dir: Path | None = None) -> Path:
    """Stage, validate and pack the bundle; return the path of the .mcpb file."""
    version = project_version()
    manifest_version = json.loads(MANIFEST.read_text(encoding="utf-8"))["version"]
    if manifest_version != version:
        raise BuildError(
            f"manifests/manifest.json says version {manifest_version}, the package is {version}: "
            "run `python scripts/gen_docs.py` first"
        )
    package_dir = package_dir or ensure_mcpb()
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = out_dir / f"rivya-mcp-{version}.mcpb"
    with tempfile.TemporaryDirectory(prefix="rivya-mcpb-") as tmp:
        staged = stage(Path(tmp) / "rivya-mcp")
        for args in (("validate", str(staged / "manifest.json")), ("pack", str(staged), str(bundle))):
            result = run_mcpb(package_dir, *args)
            if result.returncode != 0:
                raise BuildError(f"mcpb {args[0]} failed:\n{result.stdout}{result.stderr}")
    return bundle


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the rivya-mcp MCP Bundle (.mcpb).")
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="output directory (default: dist/)")
    args = parser.parse_args(argv)
    try:
        bundle = build(args.out)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    print(f"built {bundle} ({bundle.stat().st_size:,} bytes, mcpb {MCPB_VERSION})")
    print(f"sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
