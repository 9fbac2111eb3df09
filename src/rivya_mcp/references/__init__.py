"""Turn an agent-supplied reference image source into checked bytes, safely.

Sources: an absolute local path (``~`` expanded), an http(s) URL, a data URI. Bytes are judged by
their signature, sizes by reading no further than the limit, pixels against decompression bombs,
and URLs by the address they really connect to.

Decisions: symlinks are resolved and the *target* must lie under ``read_dirs``, and the file is
then opened folder by folder without following a link (a folder swapped for one after the check
fails the open); a path is used exactly as given, white space included; relative paths
are refused (the server's cwd means nothing to the agent); only http(s) URLs are fetched, each
redirect hop re-checked, from public addresses only unless the host is trusted or the operator
allows private URLs (cloud metadata addresses stay refused even then); the checked bytes are
returned, so the upload sends exactly what was checked.
"""

from __future__ import annotations

from rivya_mcp.references._jpeg import JpegChecker, check_jpeg
from rivya_mcp.references._limits import format_size
from rivya_mcp.references._png import PNG_SIGNATURE, PngChecker, check_png, crc32_function
from rivya_mcp.references._streamed import CheckedFile
from rivya_mcp.references._webp import WebpChecker, check_webp

from ._address import METADATA_ADDRESSES, forbidden_address_reason
from ._errors import ReferenceError
from ._fetch import FetchedURL, Route, checked_route, fetch_url
from ._limits import MAX_PIXELS, MAX_REDIRECTS
from ._load import LoadedReference, load_reference, verify_reference
from ._sniff import EXTENSIONS, sniff_image_type
from ._source import SourceKind, classify_source, could_be_id

__all__ = [
    "EXTENSIONS",
    "MAX_PIXELS",
    "MAX_REDIRECTS",
    "METADATA_ADDRESSES",
    "PNG_SIGNATURE",
    "CheckedFile",
    "FetchedURL",
    "JpegChecker",
    "LoadedReference",
    "PngChecker",
    "ReferenceError",
    "Route",
    "SourceKind",
    "WebpChecker",
    "check_jpeg",
    "check_png",
    "check_webp",
    "checked_route",
    "classify_source",
    "could_be_id",
    "crc32_function",
    "fetch_url",
    "forbidden_address_reason",
    "format_size",
    "load_reference",
    "sniff_image_type",
    "verify_reference",
]
