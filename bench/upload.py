"""Upload: a 10 MB reference through ``upload_reference`` vs a raw multipart upload of the same file.

Three references just under the 10 MiB limit, a PNG, a JPEG and a (lossless) WebP of random
pixels (noise compresses badly, so the files are big for their size in pixels). The sandbox runs
in its own process and is reset between rounds, so stored uploads don't pile up in it. For each
file:

- raw: ``httpx2.AsyncClient.post("/api/v1/files", files={"file": <open file>})``, the floor;
- the tool: ``upload_reference``'s own body (``build_tool_bodies``) called with the file's path:
  argument check, path resolution, the cheap checks (size, signature, type, header dimensions),
  then the file streamed from its open descriptor, every piece checked as it goes out (PNG: each
  chunk's CRC; JPEG: marker structure to EOI; WebP: the RIFF chunk structure to its end; an
  upload that fails is never completed), and the result built. The throughput target is judged
  here;
- through MCP: the same tool called through an in-memory ``mcp.Client``, which adds the MCP call
  around it (JSON-RPC, the SDK's session on both ends, the result's validation). That fixed cost
  is the call-overhead target's to judge (``call_overhead.py``); it is printed here, with this
  path's throughput, and its memory growth is judged.

Timing runs in one child process, round after round after a warm-up (medians), the three paths
in a rotating order (each goes first equally often, forwards and backwards); the median of each
round's MCP − tool difference is what the MCP call around the upload costs.
Throughput = file size / median time. Memory is measured for the raw and the MCP path alone in a
fresh child process: peak RSS growth (VmHWM at the end − VmRSS after a small warm-up upload), so
C allocations count too, unlike with tracemalloc. One more diagnostic row, from a separate child
so it doesn't disturb the timing: the streaming check alone on the bytes in memory (its CPU cost).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, cast

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, SANDBOX_KEY, median, print_report, table, verdict

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_MEMORY_FACTOR = 2.0
# Sides that put random-pixel files just under the manifest's 10 MiB limit.
T = TypeVar("T")
FORMATS = {
    "PNG": ("png", 1810, {"compress_level": 1}),
    "JPEG": ("jpg", 2950, {"quality": 95}),
    "WebP": ("webp", 1800, {"lossless": True, "method": 0}),
}
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


def make_reference(path: Path, fmt: str, side: int, options: dict[str, int]) -> int:
    from PIL import Image

    pixels = random.Random(0).randbytes(side * side * 3)
    Image.frombytes("RGB", (side, side), pixels).save(path, format=fmt, **options)
    return path.stat().st_size


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


async def child(variant: str, base_url: str, path: Path, small: Path, repeats: int, workdir: Path) -> dict[str, float]:
    """``time``: raw, the tool, via MCP, rotating; ``check``: the check's CPU; ``mem-raw``/``mem-mcp``."""
    import httpx2
    from mcp import Client
    from mcp.server.mcpserver import Context

    from rivya_mcp.references import check_jpeg, check_png, check_webp
    from rivya_mcp.server import CallState, build_server, build_tool_bodies
    from rivya_mcp.settings import Secret, Settings

    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    settings = Settings(
        api_key=Secret(SANDBOX_KEY),
        base_url=base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        log_level="WARNING",
    )
    mime = MIME[path.suffix]
    bodies = build_tool_bodies(settings)
    async with (
        httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http,
        httpx2.AsyncClient(base_url=base_url, timeout=60) as control,
        bodies.runtime.session(),
        Client(build_server(settings)) as session,
    ):

        async def raw(source: Path) -> None:
            with source.open("rb") as handle:
                response = await http.post(
                    "/api/v1/files", data={"kind": "image"}, files={"file": (source.name, handle, mime)}
                )
            response.raise_for_status()

        async def via_mcp(source: Path) -> None:
            result = await session.call_tool("upload_reference", {"source": str(source)})
            assert not result.is_error, result.content

        async def tool_work(source: Path) -> None:
            # The tool body the MCP layer calls; upload_reference never reads its context.
            result = await bodies.upload_reference({"source": str(source)}, cast(Context, None), CallState())
            assert not result.is_error, result.content

        data = path.read_bytes() if variant == "check" else b""
        check = {"image/png": check_png, "image/jpeg": check_jpeg, "image/webp": check_webp}[mime]

        async def check_only(_: Path) -> None:
            check(data)

        async def reset() -> None:
            (await control.post("/_sandbox/reset", json={})).raise_for_status()

        if variant.startswith("mem-"):
            upload = raw if variant == "mem-raw" else via_mcp
            await upload(small)
            baseline = _status("VmRSS")
            for _ in range(repeats):
                await upload(path)
            return {"growth_mb": _status("VmHWM") - baseline}
        paths: dict[str, Callable[[Path], Awaitable[None]]] = (
            {"raw": raw, "tool": tool_work, "mcp": via_mcp} if variant == "time" else {"check": check_only}
        )
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for upload in paths.values():
            await upload(small)
            await upload(path)
        for round_ in range(repeats):
            await reset()
            order = rotation(list(paths.items()), round_)
            for name, upload in order:
                started = time.perf_counter()
                await upload(path)
                samples[name].append(time.perf_counter() - started)
        result = {name: median(values) for name, values in samples.items()}
        if variant == "time":
            # Paired: each round's two timings are taken moments apart, so the machine's drifts cancel.
            result["mcp_cost"] = median([m - t for m, t in zip(samples["mcp"], samples["tool"], strict=True)])
        return result


def rotation(items: list[T], round_: int) -> list[T]:
    """The order for one round: rotated by the round, reversed every other round.

    Over 2n rounds each of n paths runs first, and after each other, equally often, so no path
    always profits from (or pays for) what ran just before it.
    """
    shift = (round_ // 2) % len(items)
    rotated = items[shift:] + items[:shift]
    return rotated if round_ % 2 == 0 else rotated[::-1]


def run_child(variant: str, base_url: str, path: Path, small: Path, repeats: int, workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        [PYTHON, __file__, "--child", variant, "--base-url", base_url, "--file", str(path), "--small", str(small),
         "--repeats", str(repeats), "--workdir", str(workdir)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(fmt: str, base_url: str, workdir: Path, repeats: int) -> tuple[list[list[str]], bool, str]:
    suffix, side, options = FORMATS[fmt]
    path = workdir / f"reference.{suffix}"
    small = workdir / f"small.{suffix}"
    size = make_reference(path, fmt, side, options)
    make_reference(small, fmt, 64, options)
    times = run_child("time", base_url, path, small, repeats, workdir)
    check = run_child("check", base_url, path, small, repeats, workdir)
    memory = {v: run_child(f"mem-{v}", base_url, path, small, 2, workdir)["growth_mb"] for v in ("raw", "mcp")}
    size_mb = size / 1_000_000
    tool_ratio = times["raw"] / times["tool"]
    mcp_ratio = times["raw"] / times["mcp"]
    growth_factor = memory["mcp"] / (size / 1024 / 1024)
    fast_enough = tool_ratio >= TARGET_THROUGHPUT_RATIO
    small_enough = growth_factor <= TARGET_MEMORY_FACTOR
    rows = [
        [f"{fmt}: raw multipart, streamed from disk (floor)", f"{times['raw'] * 1000:.1f}",
         f"{size_mb / times['raw']:.0f}", "1.00×", f"{memory['raw']:.1f}", "", "", ""],
        [f"{fmt}: upload_reference, the tool (path → checked streaming upload → result)",
         f"{times['tool'] * 1000:.1f}", f"{size_mb / times['tool']:.0f}", f"{tool_ratio:.2f}×", "", "",
         f"≥ {TARGET_THROUGHPUT_RATIO}× raw throughput", verdict(fast_enough)],
        [f"{fmt}: upload_reference through MCP in-memory (throughput not judged)", f"{times['mcp'] * 1000:.1f}",
         f"{size_mb / times['mcp']:.0f}", f"{mcp_ratio:.2f}×", f"{memory['mcp']:.1f}", f"{growth_factor:.2f}×",
         f"growth ≤ {TARGET_MEMORY_FACTOR:g}× file", verdict(small_enough)],
        [f"{fmt}: … so the MCP call around the tool costs (median of each round's difference)",
         f"{times['mcp_cost'] * 1000:+.1f}", "", "", "", "", "", ""],
        [f"{fmt}: … the streaming check alone, on the bytes in memory (CPU)", f"{check['check'] * 1000:.1f}",
         "", "", "", "", "", ""],
    ]  # fmt: skip
    ok = fast_enough and small_enough
    note = f"{fmt}: {size:,} bytes ({size / 1024 / 1024:.2f} MiB), {side}×{side} random pixels"
    return rows, ok, note


def run(quick: bool) -> tuple[str, bool]:
    from _common import sandbox_process

    repeats = 6 if quick else 200
    rows: list[list[str]] = []
    notes: list[str] = []
    all_ok = True
    with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        for fmt in FORMATS:
            fmt_rows, ok, note = measure(fmt, sandbox.base_url, Path(tmp), repeats)
            rows += fmt_rows
            notes.append(note)
            all_ok = all_ok and ok
    body = table(
        ["path", "median ms", "MB/s", "throughput vs raw", "peak RSS growth MB", "growth / file size", "target",
         "result"],
        rows,
    )  # fmt: skip
    body += "\n\nFiles: " + "; ".join(notes) + f". {repeats} uploads per path and file, in rotating order."
    return body, all_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 rounds instead of 200")
    parser.add_argument("--child", choices=["time", "check", "mem-raw", "mem-mcp"])
    parser.add_argument("--base-url")
    parser.add_argument("--file", type=Path)
    parser.add_argument("--small", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    if args.child:
        result = anyio.run(child, args.child, args.base_url, args.file, args.small, args.repeats, args.workdir)
        print(json.dumps(result))
        return
    body, _ = run(args.quick)
    print_report(
        "Upload (10 MB reference)",
        body,
        [
            "Times: one process runs raw, the tool and the tool through MCP round after round, after a warm-up, "
            "in a rotating order (each first equally often, forwards and backwards); the sandbox is reset before "
            "each round; medians.",
            "Judged: throughput on the tool (everything this server does for an upload: argument check, path, "
            "cheap checks, the checked streaming upload, the result), memory growth through MCP. The MCP call "
            "around the tool is a fixed cost per call, judged by call_overhead.py: see docs/benchmarks.md.",
            "Memory: each path alone in a fresh process; peak RSS growth = VmHWM after two uploads − VmRSS after a "
            "small warm-up upload (C allocations included, unlike tracemalloc).",
            "The WebP is lossless (noise at lossy quality 100 either exceeds the limit or is far smaller in pixels); "
            "its check walks the RIFF chunks, which for a lossless and a lossy file alike is skipping bytes.",
        ],
    )


if __name__ == "__main__":
    main()
