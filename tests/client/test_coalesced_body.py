"""Multipart bodies go out with their small pieces joined (``client._coalesced``)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest

from rivya_mcp.client import SMALL_PIECE, CoalescedStream

from .conftest import ClientFactory
from .test_files import PNG_HEADER, StreamingTransport, _part, file_body
from .test_gated_upload import Chunks

pytestmark = pytest.mark.anyio

KIB = 1024


@pytest.mark.parametrize(
    ("sizes", "out"),
    [
        # httpx2's multipart body: boundary, headers, values and CRLFs one by one, then 64 KiB file pieces.
        ([40, 60, 5, 2, 40, 90, 64 * KIB, 64 * KIB, 10 * KIB, 2, 40], [237, 64 * KIB, 64 * KIB, 10 * KIB + 42]),
        # A small file: the whole body in one piece.
        ([40, 60, 5, 2, 40, 90, 3000, 2, 40], [3279]),
        # Large pieces pass alone, even back to back.
        ([64 * KIB, 64 * KIB], [64 * KIB, 64 * KIB]),
        # A run of small pieces is let go as soon as it is no longer small.
        ([10 * KIB, 10 * KIB, 10 * KIB], [20 * KIB, 10 * KIB]),
        ([SMALL_PIECE - 1, 1], [SMALL_PIECE]),
        ([SMALL_PIECE], [SMALL_PIECE]),
        # Empty pieces vanish.
        ([0, 5, 0], [5]),
        ([], []),
    ],
)  # fmt: skip
async def test_small_pieces_are_joined_and_nothing_else_changes(sizes: list[int], out: list[int]) -> None:
    inner = Chunks(sizes)
    pieces = [piece async for piece in CoalescedStream(inner)]
    assert [len(piece) for piece in pieces] == out
    assert b"".join(pieces) == b"".join(inner.chunks)
    large = [piece for piece in inner.chunks if len(piece) >= SMALL_PIECE]
    assert all(any(piece is sent for sent in pieces) for piece in large)  # passed on, not copied


async def test_it_can_be_sent_again_and_closes_what_it_wraps() -> None:
    inner = Chunks([10, 20, 64 * KIB])
    stream = CoalescedStream(inner)
    first = [piece async for piece in stream]
    assert [piece async for piece in stream] == first  # a retried request iterates the body again
    await stream.aclose()
    assert inner.closed


async def test_an_upload_sends_its_form_in_one_piece_before_the_file(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    path = tmp_path / "ref.png"
    data = PNG_HEADER + b"\xab" * (200 * KIB)
    path.write_bytes(data)
    transport = StreamingTransport(lambda n, request, body: httpx2.Response(201, json=file_body()), keep=True)

    await make_client(transport=transport).upload_file(
        path, kind="image", model="flux-kontext-max", client_request_id="trace-7"
    )

    # kind, model, client_request_id and the file part's header together; then the file as
    # httpx2 reads it (64 KiB); its small last piece with the closing boundary.
    head, *middle, tail = transport.chunk_sizes
    assert head < SMALL_PIECE and middle == [64 * KIB] * 3 and tail < SMALL_PIECE
    body = transport.bodies[0]
    assert _part(body, "kind") == b"image" and _part(body, "model") == b"flux-kontext-max"
    assert _part(body, "file") == data
    assert int(transport.requests[0].headers["Content-Length"]) == len(body)
