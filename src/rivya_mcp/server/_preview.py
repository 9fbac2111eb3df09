"""A small preview of a finished image, sized for any host's context window, remembered.

The rendering itself (the budget, the sizes, the encoding) is ``rivya_mcp.imaging``'s; this module
keeps recent previews by the digest of the image bytes and by what one stat says of a saved file,
and bounds how many decodes run at once.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from rivya_mcp.imaging import (
    MAX_PREVIEW_ENCODED_BYTES,
    PREVIEW_LONGEST_SIDE,
    TARGET_PREVIEW_ENCODED_BYTES,
    ContactSheet,
    Preview,
    base64_text,
    make_contact_sheet,
    render_preview,
)

__all__ = [
    "MAX_PREVIEW_ENCODED_BYTES",
    "PREVIEW_CACHE_ENTRIES",
    "PREVIEW_LONGEST_SIDE",
    "RACY_NS",
    "TARGET_PREVIEW_ENCODED_BYTES",
    "FileKey",
    "Preview",
    "base64_text",
    "cached_file_preview",
    "file_key",
    "make_preview",
    "make_sheet",
    "now_ns",
    "remember_file_preview",
    "trusted",
]

# get_task on a finished task would otherwise render the same preview again on every call (~30 ms
# of a ~33 ms call, docs/benchmarks.md). Keyed by a digest of the image bytes; an entry is at most
# ~110 KB plus, once sent, its base64 text (4/3 of that), so the cache stays under 9 MB.
PREVIEW_CACHE_ENTRIES = 32
# A decode holds a few MB per megapixel. anyio runs up to 40 worker threads, so 100 concurrent
# finishes could decode 40 images at once; one decode per core is as fast and keeps memory flat.
_DECODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)
_cache: OrderedDict[bytes, Preview] = OrderedDict()
_cache_lock = threading.Lock()


def make_sheet(images: Sequence[bytes], *, numbers: Sequence[int]) -> ContactSheet:
    """One contact sheet of several results (labelled ``numbers``), under the preview's budget.

    Blocking (run it in a worker thread); it takes one of the decode slots, as a preview does.
    """
    with _DECODE_SLOTS:
        return make_contact_sheet(images, numbers=numbers)


def make_preview(
    data: bytes,
    *,
    budget: int = TARGET_PREVIEW_ENCODED_BYTES,
    longest_side: int = PREVIEW_LONGEST_SIDE,
    opaque: bool = False,
) -> Preview:
    """Scale the image down (longest side ≤ ``longest_side``, 768 px by default) and encode it under
    ``budget`` base64 bytes.

    Tries lower JPEG qualities, then smaller sizes, until the encoded text fits. Blocking (run it
    in a worker thread). Recent previews are remembered by the digest of ``data``.
    """
    key = (
        hashlib.blake2b(data, digest_size=16).digest()
        + budget.to_bytes(8, "big")
        + longest_side.to_bytes(4, "big")
        + bytes([opaque])
    )
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    with _DECODE_SLOTS:
        preview = render_preview(data, budget=budget, longest_side=longest_side, opaque=opaque)
    with _cache_lock:
        _cache[key] = preview
        while len(_cache) > PREVIEW_CACHE_ENTRIES:
            _cache.popitem(last=False)
    return preview


# The preview of a saved file, by what one stat says of it: get_task on a finished task then needs
# neither to read the file nor to hash it. We save files by an atomic rename (a new inode), but a
# user or another program may rewrite one in place: same inode, maybe the same size, and the
# modification time can be set back (os.utime) or fall in the same tick of a coarse file-system
# clock. The change time (ctime) can't be set back, so it is part of the key; and an entry made
# within RACY_NS of the file's last change is not kept, since a rewrite in that same tick would
# leave every field of the key as it was (git's "racily clean" index entries, the same problem).
FileKey = tuple[str, int, int, int, int, int]
_file_cache: OrderedDict[FileKey, tuple[Preview, str | None]] = OrderedDict()
# Coarser than any file-system clock we know of (Linux: a few ms; FAT: 2 s for mtime).
RACY_NS = 2_000_000_000


def file_key(info: os.stat_result, path: str) -> FileKey:
    return (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def now_ns() -> int:
    """The clock file change times are read against (the same wall clock the kernel stamps)."""
    return time.time_ns()


def trusted(changed_ns: int, remembered_ns: int) -> bool:
    """Whether a preview made at ``remembered_ns`` of a file last changed at ``changed_ns`` may be kept."""
    return remembered_ns - changed_ns >= RACY_NS


def cached_file_preview(key: FileKey) -> tuple[Preview, str | None] | None:
    """The remembered (preview, MIME type) of the file with ``key``, if any. Non-blocking."""
    with _cache_lock:
        cached = _file_cache.get(key)
        if cached is not None:
            _file_cache.move_to_end(key)
        return cached


def remember_file_preview(key: FileKey, preview: Preview, mime_type: str | None) -> None:
    if not trusted(key[-1], now_ns()):
        return  # changed too recently to be sure a later change would show in the key
    with _cache_lock:
        _file_cache[key] = (preview, mime_type)
        while len(_file_cache) > PREVIEW_CACHE_ENTRIES:
            _file_cache.popitem(last=False)
