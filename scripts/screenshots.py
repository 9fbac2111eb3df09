#!/usr/bin/env python3
"""Regenerate the README's screenshots of the MCP Apps viewer: one image light and dark, the grid of
a call that made four, mask painting, and the gallery of earlier images.

They come from the same test host the browser tests drive (tests/browser: the real ext-apps
AppBridge in system Chromium, our server over Streamable HTTP, the sandbox behind it), so what the
README shows is what the code renders. Needs what ``scripts/ci/browser.sh`` installs.

Usage: ``python scripts/screenshots.py [--out docs/images]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/browser/_driver.py holds the harness the tests use

from tests.browser._driver import ensure_tools, run_host, viewer_stack  # noqa: E402

SHOTS = ("light", "dark", "grid", "mask", "gallery")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    node = ensure_tools()
    # A fixed, neutral work directory: the saved path shows in the pictures, and a random
    # temporary name would change them on every run.
    workdir = Path(tempfile.gettempdir()) / "rivya-mcp-screenshots"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    try:
        with viewer_stack(workdir) as (url, _settings):
            report = run_host(node, url, workdir / "shots", "screenshots")
        args.out.mkdir(parents=True, exist_ok=True)
        for shot in SHOTS:
            found = report["scenarios"][shot]
            if not found["ok"]:
                sys.stderr.write(f"{shot}: {found['error']}\n")
                return 1
            target = args.out / found["file"]
            shutil.copyfile(workdir / "shots" / found["file"], target)
            sys.stdout.write(
                f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
                f"{target.stat().st_size // 1024} KB\n"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
