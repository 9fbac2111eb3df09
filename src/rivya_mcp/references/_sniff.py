"""What a file is, judged by its first bytes (never by its name or declared type)."""

from __future__ import annotations

__all__ = ["EXTENSIONS", "describe_bytes", "sniff_image_type"]

# The extension we give an upload of each accepted type.
EXTENSIONS: dict[str, str] = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}

_PNG = b"\x89PNG\r\n\x1a\n"


def sniff_image_type(head: bytes) -> str | None:
    """The MIME type of a JPEG, PNG or WebP image from its first 12+ bytes, else ``None``."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def describe_bytes(head: bytes) -> str:
    """A short phrase for what non-accepted bytes look like, for the agent's error message."""
    if not head:
        return "the file is empty"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "it is a GIF image"
    if head.startswith(b"BM"):
        return "it is a BMP image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "it is a TIFF image"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "it is an AVIF image"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1"):
            return "it is a HEIC/HEIF image"
        return "it is an MP4/QuickTime-style container"
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "it is a ZIP archive"
    lowered = head[:512].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page"
    if lowered.startswith(b"<svg") or (lowered.startswith(b"<?xml") and b"<svg" in lowered):
        return "it is an SVG drawing"
    if _looks_like_text(head[:512]):
        return "the bytes look like text"
    return "the bytes are not a known image format"


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the sample's end still counts as text.
        try:
            text = sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
