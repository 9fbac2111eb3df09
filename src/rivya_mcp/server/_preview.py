"""A small preview of a finished image, sized for any host's context window.

Hosts choke on large base64 blocks (Claude Desktop near 1 MiB, some at ~400 KB), and base64
inflates bytes by 4/3, so the budget is on the *encoded* size.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Hard ceiling on the base64 text of a preview; the target below keeps well under it.
MAX_PREVIEW_ENCODED_BYTES = 300_000
TARGET_PREVIEW_ENCODED_BYTES = 150_000
PREVIEW_LONGEST_SIDE = 768
JPEG_QUALITIES = (80, 70, 60, 50)
MIN_LONGEST_SIDE = 128
# get_task on a finished task would otherwise render the same preview again on every call (~30 ms
# of a ~33 ms call, docs/benchmarks.md). Keyed by a digest of the image bytes; an entry is at most
# ~110 KB plus, once sent, its base64 text (4/3 of that), so the cache stays under 9 MB.
PREVIEW_CACHE_ENTRIES = 32
# A decode holds a few MB per megapixel. anyio runs up to 40 worker threads, so 100 concurrent
# finishes could decode 40 images at once; one decode per core is as fast and keeps memory flat.
_DECODE_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)
_cache: OrderedDict[bytes, Preview] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Preview:
    """An encoded preview image and where it came from."""

    data: bytes
    mime_type: str
    width: int
    height: int
    source_width: int
    source_height: int

    @cached_property
    def base64(self) -> str:
        """``data`` as base64 text, encoded once: a cached preview goes out with every get_task."""
        return base64_text(self.data)

    @property
    def encoded_size(self) -> int:
        return len(self.base64)


def base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _has_transparency(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        extrema = alpha.getextrema()
        low = extrema[0] if isinstance(extrema, tuple) else extrema
        return bool(isinstance(low, int | float) and low < 255)
    return False


def _encode(image: Image.Image, *, transparent: bool, quality: int) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    if transparent:
        # Transparency is part of what the agent should see; PNG keeps it, at a smaller size.
        image.convert("RGBA").save(buffer, format="PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue(), "image/jpeg"


def make_preview(data: bytes, *, budget: int = TARGET_PREVIEW_ENCODED_BYTES) -> Preview:
    """Scale the image down (longest side ≤ 768 px) and encode it under ``budget`` base64 bytes.

    Tries lower JPEG qualities, then smaller sizes, until the encoded text fits. Blocking (run it
    in a worker thread). Recent previews are remembered by the digest of ``data``.
    """
    key = hashlib.blake2b(data, digest_size=16).digest() + budget.to_bytes(8, "big")
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    with _DECODE_SLOTS:
        preview = render_preview(data, budget)
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


def render_preview(data: bytes, budget: int) -> Preview:
    from PIL import Image, ImageOps

    budget = min(budget, MAX_PREVIEW_ENCODED_BYTES)
    with Image.open(io.BytesIO(data)) as opened:
        opened.load()
        # In place: exif_transpose otherwise copies the whole decoded image even when upright.
        source = ImageOps.exif_transpose(opened, in_place=True) or opened
        source_width, source_height = source.size
        transparent = _has_transparency(source)
        side = PREVIEW_LONGEST_SIDE
        while True:
            # BICUBIC: a ≤2× reduction looks the same as with LANCZOS at two thirds of the cost.
            scaled = source.resize(_fit(source.size, side), Image.Resampling.BICUBIC, reducing_gap=2.0)
            qualities = (0,) if transparent else JPEG_QUALITIES
            for quality in qualities:
                encoded, mime = _encode(scaled, transparent=transparent, quality=quality)
                if len(base64_text(encoded)) <= budget or side <= MIN_LONGEST_SIDE:
                    return Preview(encoded, mime, scaled.width, scaled.height, source_width, source_height)
            side = max(MIN_LONGEST_SIDE, int(side * 0.75))


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """``size`` scaled to fit in a ``side``×``side`` box, never enlarged (as Image.thumbnail does)."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))
