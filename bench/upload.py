"""Upload: a 10 MB reference through ``upload_reference`` vs a raw multipart upload of the same file.

The sandbox runs in its own process. Timing runs in one child process that uploads the file
through every path in turn, round after round (medians); memory is measured for each variant
alone in a fresh child process. The paths:

- raw: ``httpx2.AsyncClient.post("/api/v1/files", files={"file": <open file>})`` — the floor;
- ours: the ``upload_reference`` tool with the file's path, through an in-memory MCP client (it
  reads the file once, checks its signature and pixels, then uploads the checked bytes).

Throughput = file size / median time. Memory is the child's peak RSS growth (VmHWM at the end −
VmRSS after a small warm-up upload), so Pillow's and httpx2's C allocations count too, unlike
with tracemalloc. Two more rows split ours: ``load_reference`` alone and
``client.upload_file(bytes)`` alone.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYTHON, SANDBOX_KEY, median, print_report, sandbox_process, table, verdict

TARGET_THROUGHPUT_RATIO = 0.9
TARGET_MEMORY_FACTOR = 2.0
# Just under the manifest's 10 MiB limit: random RGB pixels, so PNG cannot compress them.
SIDE = 1810


def make_reference(path: Path, side: int) -> int:
    from PIL import Image

    pixels = random.Random(0).randbytes(side * side * 3)
    Image.frombytes("RGB", (side, side), pixels).save(path, format="PNG", compress_level=1)
    return path.stat().st_size


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


async def child(variant: str, base_url: str, path: Path, small: Path, repeats: int, workdir: Path) -> dict[str, float]:
    """``mem-raw`` / ``mem-ours``: peak RSS growth of one variant alone; ``time``: all paths interleaved."""
    import httpx2
    from mcp import Client

    from rivya_mcp.client import AsyncRivyaClient
    from rivya_mcp.manifest import get_manifest
    from rivya_mcp.references import load_reference
    from rivya_mcp.server import build_server
    from rivya_mcp.settings import Secret, Settings

    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    settings = Settings(
        api_key=Secret(SANDBOX_KEY),
        base_url=base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        log_level="WARNING",
    )
    policy = get_manifest(settings.model).upload
    async with (
        httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http,
        AsyncRivyaClient(api_key=SANDBOX_KEY, base_url=base_url) as client,
        Client(build_server(settings)) as session,
    ):

        async def raw(source: Path) -> None:
            with source.open("rb") as handle:
                response = await http.post(
                    "/api/v1/files", data={"kind": "image"}, files={"file": (source.name, handle, "image/png")}
                )
            response.raise_for_status()

        async def ours(source: Path) -> None:
            result = await session.call_tool("upload_reference", {"source": str(source)})
            assert not result.is_error, result.content

        async def load_only(source: Path) -> None:
            await load_reference(str(source), policy=policy)

        async def client_bytes(source: Path) -> None:
            await client.upload_file(data, kind="image", filename=source.name, mime_type="image/png")

        data = path.read_bytes() if variant == "time" else b""
        paths = {"raw": raw, "ours": ours, "load": load_only, "client": client_bytes}
        if variant.startswith("mem-"):
            upload = paths[variant.removeprefix("mem-")]
            await upload(small)
            baseline = _status("VmRSS")
            for _ in range(repeats):
                await upload(path)
            return {"growth_mb": _status("VmHWM") - baseline}
        samples: dict[str, list[float]] = {name: [] for name in paths}
        for upload in paths.values():
            await upload(small)
            await upload(path)
        for _ in range(repeats):
            for name, upload in paths.items():
                started = time.perf_counter()
                await upload(path)
                samples[name].append(time.perf_counter() - started)
        return {name: median(values) for name, values in samples.items()}


def run_child(variant: str, base_url: str, path: Path, small: Path, repeats: int, workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        [PYTHON, __file__, "--child", variant, "--base-url", base_url, "--file", str(path), "--small", str(small),
         "--repeats", str(repeats), "--workdir", str(workdir)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> tuple[str, bool]:
    repeats = 5 if quick else 15
    with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "reference.png"
        small = workdir / "small.png"
        size = make_reference(path, SIDE)
        make_reference(small, 64)
        times = run_child("time", sandbox.base_url, path, small, repeats, workdir)
        memory = {
            v: run_child(f"mem-{v}", sandbox.base_url, path, small, 2, workdir)["growth_mb"] for v in ("raw", "ours")
        }
    size_mb = size / 1_000_000
    ratio = times["raw"] / times["ours"]
    growth_factor = memory["ours"] / (size / 1024 / 1024)
    speed_ok = ratio >= TARGET_THROUGHPUT_RATIO
    memory_ok = growth_factor <= TARGET_MEMORY_FACTOR
    rows = [
        ["raw multipart, streamed from disk (floor)", f"{times['raw'] * 1000:.0f}", f"{size_mb / times['raw']:.0f}",
         "1.00×", f"{memory['raw']:.1f}", "", "", ""],
        ["upload_reference (MCP in-memory)", f"{times['ours'] * 1000:.0f}", f"{size_mb / times['ours']:.0f}",
         f"{ratio:.2f}×", f"{memory['ours']:.1f}", f"{growth_factor:.2f}×",
         f"≥ {TARGET_THROUGHPUT_RATIO}× raw throughput; growth ≤ {TARGET_MEMORY_FACTOR:g}× file",
         verdict(speed_ok and memory_ok)],
        ["… of which load_reference (read + check)", f"{times['load'] * 1000:.0f}", "", "", "", "", "", ""],
        ["… client.upload_file(bytes) alone", f"{times['client'] * 1000:.0f}", f"{size_mb / times['client']:.0f}",
         f"{times['raw'] / times['client']:.2f}×", "", "", "", ""],
    ]  # fmt: skip
    body = table(
        ["path", "median ms", "MB/s", "throughput vs raw", "peak RSS growth MB", "growth / file size", "target",
         "result"],
        rows,
    )  # fmt: skip
    note = f"\n\nFile: {size:,} bytes ({size / 1024 / 1024:.2f} MiB) PNG, {SIDE}×{SIDE} random pixels; "
    note += f"{repeats} uploads per path."
    return body + note, speed_ok and memory_ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--child", choices=["time", "mem-raw", "mem-ours"])
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
            "Times: one process runs every path in turn, round after round (after a warm-up); medians.",
            "Memory: each variant alone in a fresh process; peak RSS growth = VmHWM after two uploads − VmRSS "
            "after a small warm-up upload (C allocations included, unlike tracemalloc).",
        ],
    )


if __name__ == "__main__":
    main()
