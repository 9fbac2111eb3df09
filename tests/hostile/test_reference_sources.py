"""Hostile reference sources through the tools (edit_image and upload_reference), in memory.

Each is refused as an isError result whose message says what is wrong, before anything is
uploaded or charged: the sandbox sees no request at all.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent
from PIL import Image

from rivya_mcp.references import _local
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from tests.hostile.conftest import Upstream, billable, data_uri, hostile_settings, image_bytes, recording_client

pytestmark = pytest.mark.anyio

TOOLS = ("edit_image", "upload_reference")
LIMIT = 10_000_000  # the docs' "10 MB", read the stricter way
ANSWER_WITHIN = 10.0


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@dataclass
class Tools:
    client: Client
    upstream: Upstream
    sandbox: RunningSandbox
    workdir: Path

    async def call(self, tool: str, source: str) -> CallToolResult:
        arguments: dict[str, Any] = {"source": source}
        if tool == "edit_image":
            arguments = {"prompt": "make it night", "reference": source, "wait_seconds": 0}
        with anyio.fail_after(ANSWER_WITHIN):
            return await self.client.call_tool(tool, arguments)

    async def refused(self, tool: str, source: str, *expected: str) -> str:
        before = billable(self.sandbox)
        sent = len(self.upstream.sent)
        result = await self.call(tool, source)
        text = _text(result)
        assert result.is_error, text
        for phrase in expected:
            assert phrase.lower() in text.lower(), text
        assert "Next step" in text or "next step" in text.lower(), text
        assert billable(self.sandbox) == before, "a refused reference was uploaded or charged"
        assert self.upstream.sent[sent:] == [], "a refused reference reached the API"
        return text


@pytest.fixture
async def tools(sandbox: RunningSandbox, tmp_path: Path) -> AsyncIterator[Tools]:
    settings = hostile_settings(sandbox, tmp_path)
    upstream = Upstream()
    api = recording_client(settings, upstream)
    try:
        async with Client(build_server(settings, client=api)) as client:
            yield Tools(client, upstream, sandbox, tmp_path)
    finally:
        assert upstream.http is not None
        await upstream.http.aclose()


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as file:
        file.write(image_bytes("PNG")[:64])
        file.truncate(size)  # sparse: the size is claimed without writing the bytes
    return path


def _fifo(tmp: Path) -> str:
    if not hasattr(os, "mkfifo"):
        pytest.skip("POSIX only")
    os.mkfifo(tmp / "pipe.png")
    return str(tmp / "pipe.png")


def _symlink_to_dev_zero(tmp: Path) -> str:
    (tmp / "zero.png").symlink_to("/dev/zero")
    return str(tmp / "zero.png")


def _text_file(tmp: Path) -> str:
    (tmp / "notes.png").write_text("not an image at all\n")
    return str(tmp / "notes.png")


def _gif(tmp: Path) -> str:
    (tmp / "anim.png").write_bytes(b"GIF89a" + b"\0" * 64)
    return str(tmp / "anim.png")


def _truncated_jpeg(tmp: Path) -> str:
    (tmp / "cut.jpg").write_bytes(image_bytes("JPEG", (300, 200))[:400])
    return str(tmp / "cut.jpg")


def _bomb_file(tmp: Path) -> str:
    (tmp / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    return str(tmp / "bomb.png")


def _oversized(tmp: Path) -> str:
    # Between 10,000,000 and 10 MiB: refused locally, since upstream may read "10 MB" as 10**7.
    return str(_sparse(tmp / "big.png", 10_200_000))


def _empty(tmp: Path) -> str:
    (tmp / "empty.png").write_bytes(b"")
    return str(tmp / "empty.png")


Source = Callable[[Path], str]

CASES: dict[str, tuple[Source, tuple[str, ...]]] = {
    "dev zero": (lambda _: "/dev/zero", ("not a regular file",)),
    "fifo": (_fifo, ("not a regular file",)),
    "directory": (lambda tmp: str(tmp), ("is a directory",)),
    "symlink to /dev/zero": (_symlink_to_dev_zero, ("not a regular file",)),
    "missing file": (lambda tmp: str(tmp / "nope.png"), ("no file at",)),
    "text named .png": (_text_file, ("not a JPEG, PNG or WebP image", "text")),
    "gif named .png": (_gif, ("GIF",)),
    "empty file": (_empty, ("empty",)),
    "truncated jpeg": (_truncated_jpeg, ("truncated or corrupt",)),
    "decompression bomb": (_bomb_file, ("decompression bomb",)),
    "10.2 MB file": (_oversized, ("10.2 MB", "limit is 10 MB")),
    "relative path": (lambda _: "images/cat.png", ("must be absolute",)),
    "dot-relative path": (lambda _: "./cat.png", ("must be absolute",)),
    "file URL": (lambda tmp: (tmp / "x.png").as_uri(), ("file: URLs aren't accepted",)),
    "ftp URL": (lambda _: "ftp://example.com/cat.png", ("ftp: references aren't supported",)),
    "javascript": (lambda _: "javascript:alert(1)", ("aren't supported",)),
    "gopher": (lambda _: "gopher://127.0.0.1:70/x", ("aren't supported",)),
    "corrupt base64": (lambda _: "data:image/png;base64,@@not*base64@@", ("base64 data is corrupt",)),
    "malformed data URI": (lambda _: "data:image/png;base64", ("malformed",)),
    "data URI of text": (lambda _: "data:text/plain,hello%20world", ("not a JPEG, PNG or WebP",)),
    "data URI bomb": (lambda _: data_uri(png_claiming(60_000, 60_000)), ("decompression bomb",)),
    "truncated PNG data URI": (lambda _: data_uri(image_bytes("PNG", (200, 200))[:200]), ("truncated or corrupt",)),
    "oversized data URI": (lambda _: "data:image/png;base64," + "A" * (15 * 1024 * 1024), ("limit is 10 MB",)),
    "empty": (lambda _: "   ", ("empty",)),
}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_source_is_refused_with_a_helpful_message(tools: Tools, tool: str, case: str) -> None:
    make, expected = CASES[case]
    await tools.refused(tool, make(tools.workdir), *expected)


@pytest.mark.parametrize("tool", TOOLS)
async def test_a_1_gb_sparse_file_is_refused_fast_without_reading_it(
    tools: Tools, tool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []
    real_read = _local._read_at_most

    def counting_read(file: Any, limit: int) -> bytes:
        data = real_read(file, limit)
        reads.append(len(data))
        return data

    monkeypatch.setattr(_local, "_read_at_most", counting_read)
    huge = _sparse(tools.workdir / "huge.png", 1024**3)
    started = time.monotonic()
    await tools.refused(tool, str(huge), "1073.7 MB", "limit is 10 MB")
    assert time.monotonic() - started < 2.0
    assert reads == []  # the size on record refused it: not one byte was read


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("head", ["PNG", "JPEG"])
async def test_a_file_at_the_limit_is_read_no_further(
    tools: Tools, tool: str, head: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that passes the size check is never read past the limit + 1 byte (telling "over").

    A PNG is streamed (positioned reads), anything else read whole with a cap: both are watched.
    """
    reach: list[int] = []  # the furthest byte each read could touch
    real_read, real_pread = _local._read_at_most, os.pread

    def capped_read(file: Any, limit: int) -> bytes:
        reach.append(file.tell() + limit)
        return real_read(file, limit)

    def watched_pread(fd: int, length: int, offset: int) -> bytes:
        reach.append(offset + length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(_local, "_read_at_most", capped_read)
    monkeypatch.setattr(os, "pread", watched_pread)
    # A real header, then zeros up to exactly the limit: corrupt.
    with (tools.workdir / "exact").open("wb") as file:
        file.write(image_bytes(head)[:64])
        file.truncate(LIMIT)
    await tools.refused(tool, str(tools.workdir / "exact"), "truncated or corrupt")
    assert reach and max(reach) <= LIMIT + 1


@pytest.mark.parametrize("tool", TOOLS)
async def test_symlink_to_a_real_image_is_followed(tools: Tools, tool: str) -> None:
    """Locally (stdio, in memory) symlinks are fine; the checked bytes are what gets uploaded."""
    target = tools.workdir / "real.png"
    target.write_bytes(image_bytes("PNG"))
    (tools.workdir / "link.png").symlink_to(target)
    result = await tools.call(tool, str(tools.workdir / "link.png"))
    assert not result.is_error, _text(result)


async def test_symlink_out_of_the_read_dirs_is_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(image_bytes("PNG"))
    (allowed / "innocent.png").symlink_to(outside)
    settings = hostile_settings(sandbox, tmp_path, read_dirs=(allowed,))
    before = billable(sandbox)
    async with Client(build_server(settings)) as client:
        for tool in TOOLS:
            result = await Tools(client, Upstream(), sandbox, tmp_path).call(tool, str(allowed / "innocent.png"))
            assert result.is_error and "outside the folders this server may read" in _text(result)
            assert str(outside) not in _text(result)  # nor where the link really goes (issue 14 item 9)
    assert billable(sandbox) == before


async def test_a_valid_data_uri_still_works_after_the_refusals(tools: Tools) -> None:
    """The same session, after a refused bomb, uploads a good image: the server is unharmed."""
    await tools.refused("upload_reference", data_uri(png_claiming(60_000, 60_000)), "decompression bomb")
    ok = await tools.call("upload_reference", data_uri(image_bytes("PNG")))
    assert not ok.is_error, _text(ok)


def _noise(fmt: str, side: int = 900) -> bytes:
    """A large image (noise compresses badly), so its upload spans many body chunks."""
    buffer = io.BytesIO()
    Image.effect_noise((side, side), 90).convert("RGB").save(buffer, format=fmt)
    return buffer.getvalue()


def _flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


DEEP_CASES: dict[str, Callable[[], bytes]] = {
    "PNG cut short": lambda: _noise("PNG")[:-5000],
    "PNG with a flipped byte (bad CRC)": lambda: _flip_middle_byte(_noise("PNG")),
    "JPEG cut short": lambda: _noise("JPEG")[: len(_noise("JPEG")) * 2 // 3],
    "WebP cut short": lambda: _noise("WEBP")[:-5000],
}
SUFFIXES = {"PNG": "png", "JPEG": "jpeg", "WebP": "webp"}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("form", ["path", "data URI"])
@pytest.mark.parametrize("case", list(DEEP_CASES))
async def test_an_image_failing_only_the_deep_check_is_abandoned_mid_upload(
    tools: Tools, tool: str, form: str, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Header fine, body broken: the upload starts while the image is checked, then is abandoned.

    A local file is checked piece by piece as it streams out; a data URI is checked in a worker
    thread while the last 128 KiB of the body wait. Either way the sandbox sees the client leave
    before the body was complete and stores no file; the agent gets the same refusal as if the
    check had run first.
    """
    data = DEEP_CASES[case]()
    assert len(data) > 300 * 1024  # larger than the held tail: bytes really flow before the verdict
    suffix = SUFFIXES[case.split()[0]]
    mime = f"image/{suffix}"
    path = tools.workdir / f"deep.{suffix}"
    path.write_bytes(data)
    source = str(path) if form == "path" else data_uri(data, mime)
    before = billable(tools.sandbox)
    with caplog.at_level(logging.INFO):
        await tools.refused(tool, source, "truncated or corrupt")
        with anyio.fail_after(5):
            while not any("left before the body was complete" in r.getMessage() for r in caplog.records):
                await anyio.sleep(0.01)
    assert billable(tools.sandbox) == before  # and still nothing once the sandbox has seen the client leave


@pytest.mark.parametrize(("fmt", "form"), [("PNG", "path"), ("JPEG", "path"), ("WEBP", "path"), ("PNG", "data URI")])
async def test_an_intact_reference_arrives_byte_for_byte(tools: Tools, fmt: str, form: str) -> None:
    """The other side of the checks: a good image passes every one and the API gets exactly its bytes.

    Paths are streamed through their checks; data URIs are held in memory and sent while their
    check runs, the tail waiting for its verdict.
    """
    data = _noise(fmt, side=500)
    path = tools.workdir / f"good.{fmt.lower()}"
    path.write_bytes(data)
    source = str(path) if form == "path" else data_uri(data, f"image/{fmt.lower()}")
    result = await tools.call("upload_reference", source)
    assert not result.is_error, _text(result)
    assert result.structured_content is not None
    url = result.structured_content["file"]["url"]
    assert tools.upstream.http is not None
    assert (await tools.upstream.http.get(url)).content == data
