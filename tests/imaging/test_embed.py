"""XMP into JPEG, PNG and WebP files: the image data stays byte for byte, readers find the packet."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from rivya_mcp.imaging import (
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    carries_c2pa,
    embed_provenance,
    sidecar_path,
    xmp_packet,
)
from tests.imaging._images import encode, noise
from tests.imaging._xmp_read import properties

PROVENANCE = Provenance(
    task_id="gen_01J", created_at=datetime(2026, 5, 11, 9, 30, tzinfo=UTC), model_id="flux-kontext-max", prompt="a fox"
)
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


# --- independent readers of the containers (not the module's own) ---


def jpeg_parts(data: bytes) -> tuple[list[bytes], bytes]:
    """(the marker segments before the first scan, everything from SOS to the end)."""
    segments, at = [], 2
    while data[at + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        segments.append(data[at : at + 2 + length])
        at += 2 + length
    return segments, data[at:]


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    return chunks


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, at = [], 12
    while at < len(data):
        (length,) = struct.unpack("<I", data[at + 4 : at + 8])
        chunks.append((data[at : at + 4], data[at + 8 : at + 8 + length]))
        at += 8 + length + length % 2
    return chunks


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def xmp_of(data: bytes) -> dict[str, str]:
    """The XMP properties as Pillow finds the packet (JPEG and WebP: info["xmp"]; PNG: the iTXt)."""
    with Image.open(io.BytesIO(data)) as image:
        packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    assert packet, "Pillow found no XMP"
    return properties(packet)


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Test Camera"
    return exif.tobytes()


def _old_xmp(task: str) -> bytes:
    return xmp_packet(Provenance(task_id=task, created_at=PROVENANCE.created_at, model_id="old")).encode()


# --- JPEG ---

JPEGS = {
    "baseline": lambda: encode(noise((333, 217)), "JPEG", quality=90),
    "progressive": lambda: encode(noise((217, 333)), "JPEG", progressive=True),
    "with-exif": lambda: encode(noise((120, 80)), "JPEG", exif=_exif()),
    "greyscale": lambda: encode(noise((64, 64), "L"), "JPEG"),
    "cmyk": lambda: encode(noise((64, 48), "CMYK"), "JPEG"),
    "with-old-xmp": lambda: encode(noise((80, 60)), "JPEG", xmp=_old_xmp("old_task")),
}


@pytest.mark.parametrize("name", JPEGS)
def test_a_jpeg_gets_an_app1_packet_and_keeps_its_scan(name: str) -> None:
    original = JPEGS[name]()
    stamped = embed_provenance(original, PROVENANCE)
    assert stamped.placement == "jpeg_app1" and stamped.sidecar is None
    before, scan_before = jpeg_parts(original)
    after, scan_after = jpeg_parts(stamped.data)
    assert scan_after == scan_before  # the entropy-coded image data, byte for byte
    xmp_segments = [s for s in after if s[1] == 0xE1 and s[4:].startswith(XMP_HEADER)]
    assert len(xmp_segments) == 1  # one packet: an earlier one is replaced
    others_before = [s for s in before if not (s[1] == 0xE1 and s[4:].startswith(XMP_HEADER))]
    assert [s for s in after if s not in xmp_segments] == others_before  # every other segment, in order
    # After the JFIF and Exif headers, before everything else.
    position = after.index(xmp_segments[0])
    assert all(s[1] == 0xE0 or s[4:].startswith(b"Exif\x00") for s in after[:position])
    assert decoded(stamped.data) == decoded(original)
    found = xmp_of(stamped.data)
    assert found["Iptc4xmpExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert found["photoshop:TransmissionReference"] == "gen_01J"
    assert found["Iptc4xmpExt:AIPromptInformation"] == "a fox"


def test_stamping_twice_leaves_one_packet_with_the_last_values() -> None:
    once = embed_provenance(JPEGS["baseline"](), PROVENANCE).data
    later = Provenance(task_id="gen_02", created_at=PROVENANCE.created_at, model_id="flux-kontext-max")
    twice = embed_provenance(once, later).data
    segments, _ = jpeg_parts(twice)
    assert sum(1 for s in segments if s[4:].startswith(XMP_HEADER)) == 1
    assert xmp_of(twice)["photoshop:TransmissionReference"] == "gen_02"
    assert "Iptc4xmpExt:AIPromptInformation" not in xmp_of(twice)


def test_a_very_long_prompt_still_fits_a_jpeg_segment() -> None:
    long = Provenance(
        task_id="t", created_at=PROVENANCE.created_at, model_id="flux-kontext-max", prompt="여우 " * 20_000
    )
    stamped = embed_provenance(JPEGS["baseline"](), long)
    assert stamped.placement == "jpeg_app1"
    assert xmp_of(stamped.data)["Iptc4xmpExt:AIPromptInformation"].endswith("…")
    assert decoded(stamped.data) == decoded(JPEGS["baseline"]())


# --- PNG ---


def _png_with_old_xmp() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", _old_xmp("old_task").decode())
    info.add_text("Comment", "kept")
    return encode(noise((90, 70)), "PNG", pnginfo=info)


PNGS = {
    "rgb": lambda: encode(noise((333, 217)), "PNG"),
    "rgba": lambda: encode(noise((64, 65), "RGBA"), "PNG"),
    "paletted": lambda: encode(noise((50, 40)).quantize(16), "PNG"),
    "greyscale": lambda: encode(noise((33, 17), "L"), "PNG"),
    "sixteen-bit": lambda: encode(noise((40, 30), "L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
    "many-idat": lambda: encode(noise((300, 300)), "PNG", compress_level=0),  # Pillow splits IDAT at 64 KB
    "with-old-xmp": _png_with_old_xmp,
}


@pytest.mark.parametrize("name", PNGS)
def test_a_png_gets_an_itxt_chunk_before_its_image_data(name: str) -> None:
    original = PNGS[name]()
    stamped = embed_provenance(original, PROVENANCE)
    assert stamped.placement == "png_itxt" and stamped.sidecar is None
    before, after = png_chunks(original), png_chunks(stamped.data)
    assert b"".join(d for k, d in after if k == b"IDAT") == b"".join(d for k, d in before if k == b"IDAT")
    xmp = [d for k, d in after if k == b"iTXt" and d.startswith(b"XML:com.adobe.xmp\x00")]
    assert len(xmp) == 1
    kinds = [k for k, _ in after]
    assert kinds.index(b"iTXt") < kinds.index(b"IDAT")
    assert [c for c in after if c[1] not in xmp] == [
        c for c in before if not (c[0] == b"iTXt" and c[1].startswith(b"XML:com.adobe.xmp\x00"))
    ]
    with Image.open(io.BytesIO(stamped.data)) as image:
        image.verify()  # every chunk's CRC
    assert decoded(stamped.data) == decoded(original)
    found = xmp_of(stamped.data)
    assert found["Iptc4xmpExt:AISystemUsed"] == "Rivya flux-kontext-max"
    assert found["xmp:CreateDate"] == "2026-05-11T09:30:00Z"
    if name == "with-old-xmp":
        with Image.open(io.BytesIO(stamped.data)) as image:
            assert image.info["Comment"] == "kept"


def test_bytes_after_a_pngs_end_are_kept() -> None:
    original = PNGS["rgb"]() + b"trailing"
    assert embed_provenance(original, PROVENANCE).data.endswith(b"IEND\xaeB`\x82trailing")


# --- WebP ---

WEBPS = {
    "lossy": lambda: encode(noise((333, 217)), "WEBP", quality=80),
    "lossless": lambda: encode(noise((64, 48)), "WEBP", lossless=True),
    "lossless-alpha": lambda: encode(noise((64, 48), "RGBA"), "WEBP", lossless=True),
    "lossy-alpha": lambda: encode(noise((64, 48), "RGBA"), "WEBP", quality=80),  # VP8X + ALPH
    "extended-exif": lambda: encode(noise((50, 50)), "WEBP", exif=_exif()),
    "with-old-xmp": lambda: encode(noise((50, 50)), "WEBP", xmp=_old_xmp("old_task")),
}


@pytest.mark.parametrize("name", WEBPS)
def test_a_webp_gets_an_xmp_chunk_and_keeps_its_bitstream(name: str) -> None:
    original = WEBPS[name]()
    stamped = embed_provenance(original, PROVENANCE)
    assert stamped.placement == "webp_xmp"
    data = stamped.data
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == len(data) - 8
    before, after = webp_chunks(original), webp_chunks(data)
    image_kinds = (b"VP8 ", b"VP8L", b"ALPH", b"EXIF", b"ICCP")
    assert [c for c in after if c[0] in image_kinds] == [c for c in before if c[0] in image_kinds]
    assert after[0][0] == b"VP8X" and after[0][1][0] & 0x04  # the XMP flag
    assert sum(1 for kind, _ in after if kind == b"XMP ") == 1
    assert decoded(data) == decoded(original)
    assert xmp_of(data)["photoshop:TransmissionReference"] == "gen_01J"


# --- everything else: a sidecar ---


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (encode(noise((20, 20)), "GIF"), "only in JPEG, PNG and WebP"),
        (encode(noise((20, 20)), "BMP"), "only in JPEG, PNG and WebP"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "could not be parsed"),  # a JPEG cut inside its header
        (encode(noise((20, 20)), "PNG")[:60], "could not be parsed"),  # a PNG cut before IEND
        (b"RIFF\xff\xff\xff\x00WEBPVP8 ", "could not be parsed"),
        (b"", "only in JPEG, PNG and WebP"),
    ],
    ids=["gif", "bmp", "cut-jpeg", "cut-png", "cut-webp", "empty"],
)
def test_a_file_that_cannot_take_xmp_is_left_alone_with_a_sidecar(data: bytes, why: str) -> None:
    stamped = embed_provenance(data, PROVENANCE)
    assert stamped.placement == "sidecar"
    assert stamped.data == data
    assert why in stamped.reason
    assert stamped.sidecar is not None
    assert properties(stamped.sidecar)["Iptc4xmpExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA


def test_a_remote_manifest_link_in_the_xmp_counts_as_c2pa() -> None:
    # C2PA links a remote manifest from the XMP (dcterms:provenance); its hash still binds the file.
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dcterms="http://purl.org/dc/terms/" '
        b'dcterms:provenance="https://example.invalid/manifest.c2pa"/></rdf:RDF></x:xmpmeta>'
    )
    for data in (
        encode(noise((40, 30)), "JPEG", xmp=xmp),
        encode(noise((40, 30)), "WEBP", xmp=xmp),
        encode(noise((40, 30)), "PNG", pnginfo=_png_info_with(xmp)),
    ):
        assert carries_c2pa(data)
        stamped = embed_provenance(data, PROVENANCE)
        assert stamped.placement == "sidecar" and stamped.data == data
        assert "remote manifest" in stamped.reason


def _png_info_with(xmp: bytes) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=True)  # compressed: still read
    return info


@pytest.mark.parametrize("name", ["jpeg", "png", "webp"])
def test_a_plain_file_carries_no_c2pa(name: str) -> None:
    maker = {"jpeg": JPEGS["with-exif"], "png": PNGS["with-old-xmp"], "webp": WEBPS["lossy"]}[name]
    assert not carries_c2pa(maker())


@pytest.mark.parametrize(
    ("path", "sidecar"),
    [("/out/fox-01.png", "/out/fox-01.xmp"), ("/out/a.b.jpeg", "/out/a.b.xmp"), ("/out/noext", "/out/noext.xmp")],
)
def test_the_sidecar_is_named_after_the_image(path: str, sidecar: str) -> None:
    assert sidecar_path(Path(path)) == Path(sidecar)
