"""Put an XMP packet into a JPEG, PNG or WebP file without touching its pixels.

The container is rewritten, never the image data: a JPEG gets an APP1 segment, a PNG an iTXt
chunk, a WebP an ``XMP `` chunk (and a VP8X header if it had none); every other byte is copied
as it was. A file that carries a C2PA manifest is not changed at all: its signature covers the
file's bytes, so any insertion would break it. Its XMP goes to a sidecar (``<name>.xmp``) instead,
and so does a file this module cannot parse or doesn't embed into.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ._xmp import Provenance, xmp_packet

__all__ = ["Placement", "Stamped", "carries_c2pa", "embed_provenance", "sidecar_path"]

Placement = Literal["jpeg_app1", "png_itxt", "webp_xmp", "sidecar"]

JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_JPEG_EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
# A JPEG segment's length field counts itself: at most 65535 - 2 bytes of payload.
_JPEG_MAX_PAYLOAD = 65533
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEYWORD = b"XML:com.adobe.xmp"
_APP0, _APP1, _APP11, _SOS = 0xE0, 0xE1, 0xEB, 0xDA
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_EXIF_HEADER = b"Exif\x00"
_VP8X_XMP, _VP8X_ALPHA = 0x04, 0x10
# The largest XMP text read back from an existing compressed PNG chunk (to look for a C2PA link).
_MAX_INFLATED = 1_000_000


class _Unparsable(Exception):
    """The container isn't what its signature claims; the caller writes a sidecar instead."""


@dataclass(frozen=True)
class Stamped:
    """The file to save and, when the XMP could not go inside, the sidecar text to save beside it.

    ``data`` is the file with the XMP embedded, or the original bytes untouched when
    ``placement == "sidecar"``; ``sidecar`` is then the XMP text for ``sidecar_path(path)`` and
    ``reason`` says why (for a log line or the result).
    """

    data: bytes
    placement: Placement
    sidecar: str | None = None
    reason: str = ""


def sidecar_path(path: Path) -> Path:
    """Where a sidecar goes: the image's name with ``.xmp`` for its extension (``a.png`` → ``a.xmp``),
    as Adobe's XMP specification (part 3) names it and Lightroom, Bridge and ExifTool read it."""
    return path.with_suffix(".xmp")


def embed_provenance(data: bytes, provenance: Provenance) -> Stamped:
    """``data`` with ``provenance`` as XMP inside, or untouched plus a sidecar text (see ``Stamped``).

    Any earlier XMP packet of the file is replaced (a file holds one). Pure and fast: no decoding.
    """
    try:
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data, provenance)
        if data.startswith(PNG_SIGNATURE):
            return _png(data, provenance)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data, provenance)
    except _Unparsable as exc:
        return _sidecar(data, provenance, f"its container could not be parsed ({exc}), so it was left as it is")
    return _sidecar(data, provenance, "XMP is embedded only in JPEG, PNG and WebP files")


def carries_c2pa(data: bytes) -> bool:
    """Whether ``data`` holds a C2PA manifest (or a link to a remote one) that a change would break."""
    try:
        if data.startswith(b"\xff\xd8"):
            return _jpeg_c2pa(_jpeg_segments(data)[0]) is not None
        if data.startswith(PNG_SIGNATURE):
            return _png_c2pa(_png_chunks(data)) is not None
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_c2pa(_webp_chunks(data)) is not None
    except _Unparsable:
        return False
    return False


def _sidecar(data: bytes, provenance: Provenance, reason: str) -> Stamped:
    return Stamped(data=data, placement="sidecar", sidecar=xmp_packet(provenance), reason=reason)


def _c2pa_sidecar(data: bytes, provenance: Provenance, where: str) -> Stamped:
    return _sidecar(
        data,
        provenance,
        f"the file carries a C2PA manifest ({where}) whose signature covers its bytes, so it was kept as it is",
    )


def _links_remote_manifest(xmp: bytes) -> bool:
    # C2PA's remote manifests are linked from the XMP as dcterms:provenance; its hash still binds the file.
    return b"http://purl.org/dc/terms/" in xmp and b"provenance" in xmp


# --- JPEG ---


def _jpeg(data: bytes, provenance: Provenance) -> Stamped:
    segments, scan = _jpeg_segments(data)
    c2pa = _jpeg_c2pa(segments)
    if c2pa is not None:
        return _c2pa_sidecar(data, provenance, c2pa)
    packet = xmp_packet(provenance, max_bytes=_JPEG_MAX_PAYLOAD - len(JPEG_XMP_HEADER)).encode()
    payload = JPEG_XMP_HEADER + packet
    segment = b"\xff" + bytes([_APP1]) + struct.pack(">H", len(payload) + 2) + payload
    kept = [raw for marker, raw in segments if not _is_xmp_segment(marker, raw)]
    # After the JFIF (APP0) and Exif (APP1) headers, which readers expect first.
    at = 0
    while at < len(kept) and _leading_header(kept[at]):
        at += 1
    parts = [b"\xff\xd8", *kept[:at], segment, *kept[at:], data[scan:]]
    return Stamped(data=b"".join(parts), placement="jpeg_app1")


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, bytes]], int]:
    """The marker segments between SOI and the first scan, as (marker, raw bytes); and where SOS starts."""
    segments: list[tuple[int, bytes]] = []
    at = 2
    while True:
        if at + 2 > len(data) or data[at] != 0xFF:
            raise _Unparsable(f"no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == _SOS:
            return segments, at
        if marker in _STANDALONE:
            segments.append((marker, data[at : at + 2]))
            at += 2
            continue
        if at + 4 > len(data):
            raise _Unparsable("it ends inside a segment header")
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        end = at + 2 + length
        if length < 2 or end > len(data):
            raise _Unparsable(f"the segment at byte {at} claims {length} bytes")
        segments.append((marker, data[at:end]))
        at = end


def _jpeg_c2pa(segments: list[tuple[int, bytes]]) -> str | None:
    for marker, raw in segments:
        # C2PA stores its manifest store as JUMBF in APP11 (JPEG XT boxes: common identifier "JP").
        if marker == _APP11 and raw[4:6] == b"JP":
            return "JUMBF in APP11"
        if marker == _APP1 and raw[4:].startswith(JPEG_XMP_HEADER) and _links_remote_manifest(raw):
            return "a remote manifest linked from its XMP"
    return None


def _is_xmp_segment(marker: int, raw: bytes) -> bool:
    return marker == _APP1 and (raw[4:].startswith(JPEG_XMP_HEADER) or raw[4:].startswith(_JPEG_EXTENDED_XMP_HEADER))


def _leading_header(raw: bytes) -> bool:
    marker = raw[1]
    return marker == _APP0 or (marker == _APP1 and raw[4:].startswith(_EXIF_HEADER))


# --- PNG ---


def _png(data: bytes, provenance: Provenance) -> Stamped:
    chunks = _png_chunks(data)
    c2pa = _png_c2pa(chunks)
    if c2pa is not None:
        return _c2pa_sidecar(data, provenance, c2pa)
    packet = xmp_packet(provenance).encode()
    # iTXt: keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword.
    body = PNG_XMP_KEYWORD + b"\x00\x00\x00" + b"\x00" + b"\x00" + packet
    itxt = _png_chunk(b"iTXt", body)
    parts = [PNG_SIGNATURE]
    inserted = False
    for kind, raw in chunks:
        if kind == b"iTXt" and raw[8:].startswith(PNG_XMP_KEYWORD + b"\x00"):
            continue  # the earlier XMP: a file holds one packet
        if kind == b"IDAT" and not inserted:
            parts.append(itxt)
            inserted = True
        parts.append(raw)
    if not inserted:
        raise _Unparsable("no IDAT chunk")
    end = sum(len(raw) for _, raw in chunks) + len(PNG_SIGNATURE)
    parts.append(data[end:])  # whatever follows IEND, as it was
    return Stamped(data=b"".join(parts), placement="png_itxt")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk up to and including IEND, as (type, raw bytes with length and CRC)."""
    chunks: list[tuple[bytes, bytes]] = []
    at = len(PNG_SIGNATURE)
    while True:
        if at + 12 > len(data):
            raise _Unparsable("it ends before IEND")
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        end = at + 12 + length
        if end > len(data) or not kind.isalpha():
            raise _Unparsable(f"the chunk at byte {at} is damaged")
        chunks.append((kind, data[at:end]))
        at = end
        if kind == b"IEND":
            return chunks


def _png_c2pa(chunks: list[tuple[bytes, bytes]]) -> str | None:
    for kind, raw in chunks:
        if kind == b"caBX":
            return "a caBX chunk"
        if kind == b"iTXt" and raw[8:].startswith(PNG_XMP_KEYWORD + b"\x00"):
            if _links_remote_manifest(_itxt_text(raw[8:-4])):
                return "a remote manifest linked from its XMP"
    return None


def _itxt_text(body: bytes) -> bytes:
    keyword_end = body.find(b"\x00")
    compressed = body[keyword_end + 1 : keyword_end + 2] == b"\x01"
    rest = body[keyword_end + 3 :]
    language_end = rest.find(b"\x00")
    translated_end = rest.find(b"\x00", language_end + 1)
    text = rest[translated_end + 1 :]
    if not compressed:
        return text
    try:
        return zlib.decompressobj().decompress(text, _MAX_INFLATED)
    except zlib.error:
        return b""


# --- WebP ---


def _webp(data: bytes, provenance: Provenance) -> Stamped:
    chunks = _webp_chunks(data)
    c2pa = _webp_c2pa(chunks)
    if c2pa is not None:
        return _c2pa_sidecar(data, provenance, c2pa)
    kept = [(kind, raw) for kind, raw in chunks if kind != b"XMP "]
    first_kind, first_raw = kept[0]
    if first_kind == b"VP8X":
        flags = first_raw[8] | _VP8X_XMP
        header = first_raw[:8] + bytes([flags]) + first_raw[9:]
        body = [header] + [raw for _, raw in kept[1:]]
    elif first_kind in (b"VP8 ", b"VP8L"):
        width, height, alpha = _bitstream_size(first_kind, first_raw[8:])
        flags = _VP8X_XMP | (_VP8X_ALPHA if alpha else 0)
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body = [_webp_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)] + [raw for _, raw in kept]
    else:
        raise _Unparsable(f"its first chunk is {first_kind!r}")
    body.append(_webp_chunk(b"XMP ", xmp_packet(provenance).encode()))
    payload = b"WEBP" + b"".join(body)
    return Stamped(data=b"RIFF" + struct.pack("<I", len(payload)) + payload, placement="webp_xmp")


def _webp_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def _webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of the RIFF container, as (FourCC, raw bytes with header and pad byte)."""
    (size,) = struct.unpack("<I", data[4:8])
    end = 8 + size
    if end > len(data) or size < 4:
        raise _Unparsable("its RIFF size is wrong")
    chunks: list[tuple[bytes, bytes]] = []
    at = 12
    while at < end:
        if at + 8 > end:
            raise _Unparsable(f"the chunk at byte {at} is cut off")
        kind = data[at : at + 4]
        (length,) = struct.unpack("<I", data[at + 4 : at + 8])
        stop = at + 8 + length + (length % 2)
        if stop > end + (length % 2):  # some writers leave off the last pad byte
            raise _Unparsable(f"the chunk at byte {at} claims {length} bytes")
        raw = data[at:stop]
        chunks.append((kind, raw + b"\x00" * (len(raw) % 2)))  # restore a missing last pad byte
        at = stop
    if not chunks:
        raise _Unparsable("it has no chunks")
    return chunks


def _webp_c2pa(chunks: list[tuple[bytes, bytes]]) -> str | None:
    for kind, raw in chunks:
        if kind == b"C2PA":
            return "a C2PA chunk"
        if kind == b"XMP " and _links_remote_manifest(raw[8:]):
            return "a remote manifest linked from its XMP"
    return None


def _bitstream_size(kind: bytes, payload: bytes) -> tuple[int, int, bool]:
    """(width, height, has alpha) of a simple WebP's VP8 or VP8L bitstream."""
    if kind == b"VP8 ":
        if len(payload) < 10 or payload[3:6] != b"\x9d\x01\x2a":
            raise _Unparsable("its VP8 frame header is damaged")
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if len(payload) < 5 or payload[0] != 0x2F:
        raise _Unparsable("its VP8L header is damaged")
    (bits,) = struct.unpack("<I", payload[1:5])
    return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
