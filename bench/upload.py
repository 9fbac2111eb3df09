"""Upload: a 10 MB reference through ``upload_reference`` vs a raw multipart upload of the same file.

The sandbox runs in its own process. Each variant runs in a fresh child process (so its memory
is its own), warms up with one small upload, then uploads the 10 MB file ``--repeats`` times:

- raw: ``httpx2.AsyncClient.post("/api/v1/files", files={"file": <open file>})`` — the floor;
- ours: the ``upload_reference`` tool with the file's path, through an in-memory MCP client (it
  reads the file once, checks its signature and pixels, then uploads the checked bytes).

Time is the median of the repeats; throughput = file size / time. Memory is the child's peak RSS
growth (VmHWM at the end − VmRSS after the warm-up), so Pillow's and httpx2's C allocations count
too, unlike with tracemalloc.
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
    import httpx2
    from mcp import Client

    from rivya_mcp.server import build_server
    from rivya_mcp.settings import Secret, Settings

    headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
    times: list[float] = []
    if variant == "raw":
        async with httpx2.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http:

            async def upload(source: Path) -> None:
                with source.open("rb") as handle:
                    response = await http.post(
                        "/api/v1/files", data={"kind": "image"}, files={"file": (source.name, handle, "image/png")}
                    )
                response.raise_for_status()

            await upload(small)
            baseline = _status("VmRSS")
            for _ in range(repeats):
                started = time.perf_counter()
                await upload(path)
                times.append(time.perf_counter() - started)
    else:
        settings = Settings(
            api_key=Secret(SANDBOX_KEY),
            base_url=base_url,
            output_dir=workdir / "out",
            data_dir=workdir / "data",
            log_level="WARNING",
        )
        async with Client(build_server(settings)) as session:

            async def upload(source: Path) -> None:
                result = await session.call_tool("upload_reference", {"source": str(source)})
                assert not result.is_error, result.content

            await upload(small)
            baseline = _status("VmRSS")
            for _ in range(repeats):
                started = time.perf_counter()
                await upload(path)
                times.append(time.perf_counter() - started)
    return {"seconds": median(times), "growth_mb": _status("VmHWM") - baseline, "baseline_mb": baseline}


def run_child(variant: str, base_url: str, path: Path, small: Path, repeats: int, workdir: Path) -> dict[str, float]:
    out = subprocess.run(
        [PYTHON, __file__, "--child", variant, "--base-url", base_url, "--file", str(path), "--small", str(small),
         "--repeats", str(repeats), "--workdir", str(workdir)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> tuple[str, bool]:
    repeats = 2 if quick else 5
    with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        workdir = Path(tmp)
        path = workdir / "reference.png"
        small = workdir / "small.png"
        size = make_reference(path, SIDE)
        make_reference(small, 64)
        results = {}
        for variant in ("raw", "ours", "raw", "ours"):  # twice each, alternating; the second pair is reported
            results[variant] = run_child(variant, sandbox.base_url, path, small, repeats, workdir)
    size_mb = size / 1_000_000
    raw, ours = results["raw"], results["ours"]
    ratio = raw["seconds"] / ours["seconds"]
    growth_factor = ours["growth_mb"] / (size / 1024 / 1024)
    speed_ok = ratio >= TARGET_THROUGHPUT_RATIO
    memory_ok = growth_factor <= TARGET_MEMORY_FACTOR
    rows = [
        ["raw multipart (floor)", f"{raw['seconds'] * 1000:.0f}", f"{size_mb / raw['seconds']:.0f}",
         "1.00×", f"{raw['growth_mb']:.1f}", "", "", ""],
        ["upload_reference (MCP in-memory)", f"{ours['seconds'] * 1000:.0f}", f"{size_mb / ours['seconds']:.0f}",
         f"{ratio:.2f}×", f"{ours['growth_mb']:.1f}", f"{growth_factor:.2f}×",
         f"≥ {TARGET_THROUGHPUT_RATIO}× raw throughput; growth ≤ {TARGET_MEMORY_FACTOR:g}× file",
         verdict(speed_ok and memory_ok)],
    ]  # fmt: skip
    body = table(
        ["path", "median ms", "MB/s", "throughput vs raw", "peak RSS growth MB", "growth / file size", "target",
         "result"],
        rows,
    )  # fmt: skip
    return body + f"\n\nFile: {size:,} bytes ({size / 1024 / 1024:.2f} MiB) PNG, {SIDE}×{SIDE} random pixels.", (
        speed_ok and memory_ok
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats instead of 5")
    parser.add_argument("--child", choices=["raw", "ours"])
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
            "Each variant runs in a fresh process, twice, alternating; the later run of each is reported.",
            "Peak RSS growth = VmHWM after the uploads − VmRSS after a small warm-up upload (C allocations included).",
        ],
    )


if __name__ == "__main__":
    main()
