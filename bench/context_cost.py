"""Context cost: bytes of the ``generate_image`` result for every aspect ratio and output format.

Each (aspectRatio, outputFormat) pair of the manifest is generated once through an in-memory MCP
client against the sandbox process. The figure is the tool result as it travels on the wire (the
JSON-RPC ``result`` object: text, preview image, resource link and structured content). The floor
is the saved file itself, which must be the full-resolution image: what the sandbox serves at the
task's result URL, byte for byte, plus the one XMP packet of its provenance (docs/provenance.md),
which is the only difference once taken out again. One more row: a ``count: 4`` call, whose result
holds one contact sheet of the four images and a link to each.
"""

from __future__ import annotations

import argparse
import base64
import io
import struct
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


def without_xmp(data: bytes) -> bytes:
    """``data`` without its XMP packet (a JPEG APP1 ``http://ns.adobe.com/xap/1.0/`` segment, a PNG
    ``iTXt`` ``XML:com.adobe.xmp`` chunk): what was downloaded, if nothing else was changed."""
    if data.startswith(b"\xff\xd8"):
        out, at = [data[:2]], 2
        while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] != 0xDA:
            length = struct.unpack(">H", data[at + 2 : at + 4])[0]
            segment = data[at : at + 2 + length]
            if not (data[at + 1] == 0xE1 and segment[4:].startswith(b"http://ns.adobe.com/xap/1.0/\x00")):
                out.append(segment)
            at += 2 + length
        return b"".join(out) + data[at:]
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        out, at = [data[:8]], 8
        while at + 8 <= len(data):
            length = struct.unpack(">I", data[at : at + 4])[0]
            chunk = data[at : at + 12 + length]
            if not (chunk[4:8] == b"iTXt" and chunk[8:].startswith(b"XML:com.adobe.xmp\x00")):
                out.append(chunk)
            at += 12 + length
        return b"".join(out)
    return data


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
                stamped = saved.read_bytes()
                identical = stamped != served and without_xmp(stamped) == served
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
        async with Client(build_server(settings)) as session:
            row, ok = await count_row(session)
        rows.append(row)
        ok_all &= ok
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
            "file = served + XMP",
            "target",
            "result",
        ],
        rows,
    )
    return body, ok_all


async def count_row(session: Client) -> tuple[list[object], bool]:
    """``count: 4``: one result with a contact sheet of the four images and four links."""
    result = await session.call_tool(
        "generate_image", {"prompt": "Context cost, four variations [sandbox:seconds=0]", "count": 4}
    )
    assert not result.is_error, result.content
    sheets = [c for c in result.content if isinstance(c, ImageContent)]
    links = [c for c in result.content if c.type == "resource_link"]
    size = wire_bytes(result)
    ok = size <= TARGET_BYTES and len(sheets) == 1 and len(links) == 4
    with Image.open(io.BytesIO(base64.b64decode(sheets[0].data))) as sheet:
        sheet_size = f"{sheet.width}×{sheet.height} {sheet.format}"
    files = [Path(c["saved_path"]) for c in (result.structured_content or {}).get("candidates", [])]
    return [
        "count 4 (16:9)",
        "jpeg",
        f"{size / 1000:.1f}",
        f"{len(sheets[0].data) / 1000:.1f}",
        f"contact sheet {sheet_size}",
        f"{sum(f.stat().st_size for f in files) / 1000:.1f} (4 files)",
        f"{len(links)} links",
        "-",
        "≤ 300 KB, one sheet, 4 links",
        verdict(ok),
    ], ok


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
            "sandbox's result URL once its XMP packet (its provenance, docs/provenance.md) is taken out.",
        ],
    )


if __name__ == "__main__":
    main()
