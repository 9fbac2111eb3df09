"""Decode a ``data:`` URI reference, refusing oversized ones before decoding them."""

from __future__ import annotations

import base64
import binascii
import re
import urllib.parse
from dataclasses import dataclass

from ._errors import ReferenceError
from ._limits import MAX_DATA_URI_HEADER, format_size

__all__ = ["DecodedDataURI", "decode_data_uri", "max_data_uri_length"]

_WHITESPACE = re.compile(rb"\s+")


@dataclass(frozen=True)
class DecodedDataURI:
    data: bytes
    declared_mime: str  # lower-case, "" when the URI names none


def max_data_uri_length(max_bytes: int, *, base64_encoded: bool = True) -> int:
    """The longest data URI that could decode to ``max_bytes`` (header and line breaks allowed)."""
    if base64_encoded:
        encoded = 4 * -(-max_bytes // 3)
        return MAX_DATA_URI_HEADER + encoded + 2 * (encoded // 76 + 1)
    return MAX_DATA_URI_HEADER + 3 * max_bytes  # every byte as %XX


def decode_data_uri(source: str, *, max_bytes: int) -> DecodedDataURI:
    """Decode an RFC 2397 data URI (base64 or percent-encoded). Blocking for large input."""
    text = source.strip()
    header, comma, payload = text[: MAX_DATA_URI_HEADER + 1].partition(",")
    if not comma:
        raise ReferenceError("the data URI is malformed (expected data:image/png;base64,<data>)", reason="bad_data_uri")
    params = [p.strip().lower() for p in header[len("data:") :].split(";")]
    is_base64 = params[-1] == "base64"
    declared = params[0] if params and "/" in params[0] else ""
    # Check the encoded length first: decoding a huge string would cost the memory we refuse.
    if len(text) > max_data_uri_length(max_bytes, base64_encoded=is_base64):
        estimate = len(text) - len(header) - 1
        if is_base64:
            estimate = estimate * 3 // 4
        raise ReferenceError(
            f"the data URI holds about {format_size(estimate)}; the limit is {format_size(max_bytes)}. "
            "Resize or recompress the image, or pass it as a path or URL",
            reason="too_large",
        )
    payload = text[len(header) + 1 :]
    data = _decode_base64(payload) if is_base64 else urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise ReferenceError(
            f"reference is {format_size(len(data))}; the limit is {format_size(max_bytes)}. "
            "Resize or recompress it and try again",
            reason="too_large",
        )
    return DecodedDataURI(data=data, declared_mime=declared)


def _decode_base64(payload: str) -> bytes:
    try:
        raw = _WHITESPACE.sub(b"", payload.encode("ascii"))
        if b"%" in raw:  # some encoders percent-escape "+", "/" and "="
            raw = urllib.parse.unquote_to_bytes(raw)
        if b"-" in raw or b"_" in raw:  # the URL-safe alphabet
            raw = raw.translate(bytes.maketrans(b"-_", b"+/"))
        raw += b"=" * (-len(raw) % 4)
        return base64.b64decode(raw, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ReferenceError(
            "the data URI's base64 data is corrupt; re-encode the image (data:image/png;base64,<data>)",
            reason="bad_data_uri",
        ) from None
