"""Context cost: bytes of the ``generate_image`` result for every aspect ratio and output format.

Each (aspectRatio, outputFormat) pair of the manifest is generated once through an in-memory MCP
client against the sandbox process. The figure is the tool result as it travels on the wire (the
JSON-RPC ``result`` object: text, preview image, resource link and structured content). The floor
is the saved file itself, which must be the full-resolution image: byte-identical to what the
sandbox serves at the task's result URL.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult, ImageContent
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SANDBOX_KEY, print_report, sandbox_process, table, verdict

from rivya_mcp.manifest import get_manifest
from rivya_mcp.server import build_server
from rivya_mcp.settings import Secret, Settings

MODEL = "flux-kontext-max"
TARGET_BYTES = 300_000  # 300 KB, KB = 1000 bytes
# Latency is not measured here, so the poll schedule is shrunk to keep the run short.
POLL_SCALE = 0.05


def wire_bytes(result: CallToolResult) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode())


async def one(session: Client, ratio: str, fmt: str, out: dict[tuple[str, str], tuple[CallToolResult, Any]]) -> None:
    result = await session.call_tool(
        "generate_image",
        {"prompt": f"Context cost {ratio} {fmt} [sandbox:seconds=0]", "aspectRatio": ratio, "outputFormat": fmt},
    )
    out[(ratio, fmt)] = (result, result.structured_content or {})


async def measure(quick: bool) -> tuple[str, bool]:
    manifest = get_manifest(MODEL)
    params = {p.key: p for p in manifest.params}
    ratios = list(params["aspectRatio"].options or ())
    formats = list(params["outputFormat"].options or ())
    if quick:
        ratios = ratios[:2]
    results: dict[tuple[str, str], tuple[CallToolResult, Any]] = {}
    with sandbox_process() as sandbox, tempfile.TemporaryDirectory(prefix="rivya-bench-") as tmp:
        settings = Settings(
            api_key=Secret(SANDBOX_KEY),
            base_url=sandbox.base_url,
            output_dir=Path(tmp) / "out",
            data_dir=Path(tmp) / "data",
            poll_scale=POLL_SCALE,
            log_level="WARNING",
        )
        async with Client(build_server(settings)) as session, anyio.create_task_group() as group:
            for ratio in ratios:
                for fmt in formats:
                    group.start_soon(one, session, ratio, fmt, results)
        urls = {t["id"]: t["result_url"] for t in sandbox.state()["tasks"]}
        rows: list[list[object]] = []
        ok_all = True
        for ratio in ratios:
            for fmt in formats:
                result, data = results[(ratio, fmt)]
                assert not result.is_error, result.content
                saved = Path(data["saved_path"])
                with urllib.request.urlopen(urls[data["task_id"]]) as response:
                    served = response.read()
                identical = saved.read_bytes() == served
                with Image.open(saved) as full:
                    full_size = f"{full.width}×{full.height} {full.format}"
                preview = next(c for c in result.content if isinstance(c, ImageContent))
                with Image.open(io.BytesIO(base64.b64decode(preview.data))) as small:
                    preview_size = f"{small.width}×{small.height} {small.format}"
                size = wire_bytes(result)
                ok = size <= TARGET_BYTES and identical
                ok_all &= ok
                rows.append(
                    [
                        ratio,
                        fmt,
                        f"{size / 1000:.1f}",
                        f"{len(preview.data) / 1000:.1f}",
                        preview_size,
                        f"{saved.stat().st_size / 1000:.1f}",
                        full_size,
                        "yes" if identical else "NO",
                        "≤ 300 KB, file full-res",
                        verdict(ok),
                    ]
                )
    rows.append(noise_row())
    body = table(
        [
            "aspectRatio",
            "format",
            "result KB",
            "preview base64 KB",
            "preview",
            "saved file KB (floor)",
            "saved file",
            "file = served bytes",
            "target",
            "result",
        ],
        rows,
    )
    return body, ok_all


def noise_row() -> list[object]:
    """The hard case the sandbox's smooth renders never hit: incompressible noise at full size."""
    from rivya_mcp.server import base64_text, make_preview

    buffer = io.BytesIO()
    Image.effect_noise((1376, 768), 100).convert("RGB").save(buffer, format="PNG")
    preview = make_preview(buffer.getvalue())
    encoded = len(base64_text(preview.data))
    ok = encoded <= TARGET_BYTES
    return [
        "16:9 noise (stress)",
        "png",
        "-",
        f"{encoded / 1000:.1f}",
        f"{preview.width}×{preview.height} {preview.mime_type.split('/')[1].upper()}",
        f"{len(buffer.getvalue()) / 1000:.1f}",
        "1376×768 PNG",
        "-",
        "preview ≤ 300 KB",
        verdict(ok),
    ]


def run(quick: bool) -> tuple[str, bool]:
    return anyio.run(measure, quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two aspect ratios instead of all")
    args = parser.parse_args()
    body, _ = run(args.quick)
    print_report(
        "Context cost (bytes of one generate_image result)",
        body,
        [
            "result KB = the CallToolResult serialized as sent (by alias, no nulls); KB = 1000 bytes.",
            "Structured content is on (the default). The saved file is compared byte for byte with the "
            "sandbox's result URL.",
        ],
    )


if __name__ == "__main__":
    main()
