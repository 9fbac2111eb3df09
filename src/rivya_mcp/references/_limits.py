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

# The docs' "10 MB" is read as 10,000,000 bytes, the stricter of the two readings (the manifests
# hold that number): a file between 10,000,000 and 10,485,760 bytes could be refused upstream.
MB = 1_000_000
KB = 1_000


def format_size(size: int) -> str:
    """``10000000`` → ``"10 MB"``; ``12345678`` → ``"12.3 MB (12,345,678 bytes)"``.

    Decimal megabytes, as the limit; a size that does not round evenly also gives its bytes, so a
    file just over the limit never reads "10 MB; the limit is 10 MB".
    """
    if size < MB:
        return f"{max(size, 0) / KB:.1f} KB".replace(".0 KB", " KB")
    text = f"{size / MB:.1f} MB".replace(".0 MB", " MB")
    return text if size % (MB // 10) == 0 else f"{text} ({size:,} bytes)"
