"""HTTP-transport harness: a sandbox per module and the real server behind real uvicorn."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from rivya_mcp.settings import Secret, Settings

FAST = SandboxConfig(queued_seconds=0.05, processing_seconds=0.3)
HTTP_KEY = "rvya_sk_test_http_9a8b7c6d"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(FAST) as running:
        yield running


def http_settings(sandbox: RunningSandbox, workdir: Path, *, key: str = HTTP_KEY, **changes: Any) -> Settings:
    return Settings(
        api_key=Secret(key),
        base_url=sandbox.base_url,
        output_dir=workdir / "out",
        data_dir=workdir / "data",
        poll_scale=0.1,
    ).with_changes(**changes)


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def padded_png(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes: a small image plus a private ancillary chunk.

    Ancillary chunks (lower-case first letter) are skipped by decoders but checked by CRC, so this
    is an intact image of any size without compressing megabytes of noise.
    """
    png = small_png()
    overhead = 12  # length, type, CRC
    body = b"\0" * (total - len(png) - overhead)
    chunk = struct.pack(">I", len(body)) + b"ruSt" + body + struct.pack(">I", zlib.crc32(b"ruSt" + body))
    ihdr_end = 8 + 25  # signature + the IHDR chunk
    result = png[:ihdr_end] + chunk + png[ihdr_end:]
    assert len(result) == total
    return result
