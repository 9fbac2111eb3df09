"""Named limits. Policy numbers live here so that they are visible and testable."""

from __future__ import annotations

# Pixels an image may claim before we refuse it unread. 50 MP covers any camera photo and keeps
# a decoded RGBA frame near 200 MB; a larger claim in a ≤10 MB file is a decompression bomb.
MAX_PIXELS = 50_000_000

# Redirects followed by hand, each hop checked against the address policy like the first.
MAX_REDIRECTS = 3

# Per-operation network timeouts (seconds), each capped by the total deadline of the call.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0

# A data URI's header ("data:image/png;base64") never needs more than this.
MAX_DATA_URI_HEADER = 256

MIB = 1024 * 1024


def format_size(size: int) -> str:
    """``10485760`` → ``"10 MB"``; ``12897485`` → ``"12.3 MB"`` (binary megabytes, as the docs)."""
    if size < MIB:
        return f"{max(size, 0) / 1024:.1f} KB".replace(".0 KB", " KB")
    return f"{size / MIB:.1f} MB".replace(".0 MB", " MB")
