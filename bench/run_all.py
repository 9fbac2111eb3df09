"""Run every benchmark and write the combined tables into docs/benchmarks.md.

``python bench/run_all.py [--quick] [--no-write]``. Each script runs in its own process, one after
another (cold start first, while the machine is quiet). The tables replace the part of
docs/benchmarks.md between the ``bench:begin`` and ``bench:end`` markers; the text around them is
kept. ``--quick`` runs the short variants and never writes the file.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BENCH_DIR, PYTHON, REPO_DIR, machine_info

SCRIPTS = ("cold_start", "call_overhead", "context_cost", "upload", "concurrency", "completion_lag")
DOC = REPO_DIR / "docs" / "benchmarks.md"
BEGIN = "<!-- bench:begin (written by bench/run_all.py) -->"
END = "<!-- bench:end -->"


def run_script(name: str, quick: bool) -> tuple[str, float]:
    command = [PYTHON, str(BENCH_DIR / f"{name}.py"), *(["--quick"] if quick else [])]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_DIR)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        return f"### {name}\n\n`{name}.py` failed (exit {done.returncode}):\n\n```\n{tail}\n```\n", elapsed
    return done.stdout.strip() + "\n", elapsed


def render(sections: list[str], info: dict[str, str], total: float) -> str:
    machine = "\n".join(f"| {key} | {value} |" for key, value in info.items())
    return (
        f"{BEGIN}\n\n"
        f"Latest run: {info['date']}, {total:.0f} s in all.\n\n"
        f"| machine | |\n| --- | --- |\n{machine}\n\n" + "\n".join(sections) + f"\n{END}"
    )


def write(block: str) -> None:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(head + block + tail, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short variants; docs/benchmarks.md is not written")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="run these scripts only (implies --no-write)")
    args = parser.parse_args()
    scripts = args.only or SCRIPTS
    info = machine_info()
    sections = []
    started = time.monotonic()
    for name in scripts:
        output, elapsed = run_script(name, args.quick)
        print(output, flush=True)
        print(f"({name}: {elapsed:.0f} s)\n", file=sys.stderr, flush=True)
        sections.append(output)
    total = time.monotonic() - started
    block = render(sections, info, total)
    if not (args.quick or args.no_write or args.only):
        write(block)
        print(f"wrote {DOC.relative_to(REPO_DIR)}", file=sys.stderr)
    failed = sum(section.count("**FAIL**") + section.count("failed (exit") for section in sections)
    print(f"{len(scripts)} benchmarks, {failed} failing row(s), {total:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
