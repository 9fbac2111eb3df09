"""The API key as an answer might echo it: verbatim, encoded, or its first characters.

The client takes every echo out of what the API sends before anything else sees it
(``BaseClient._scrub``), and the CLI's log filter does the same for whatever is logged. An echo is:

- the key itself;
- its first characters: the documented prefix ``rvya_sk_`` (rivya-api.md §2) followed by at least
  ``MIN_PREFIX_AFTER_MARKER`` characters of the key, or at least ``MIN_BARE_PREFIX`` of them
  without the marker (``requestId: "req_3fa9c2d1e07b…"``). Fewer characters say too little
  (48 bits at 8 random characters) to be worth blanking every string that shares them;
- its hexadecimal spelling, in either case;
- its base64 spelling (standard or URL-safe alphabet), even inside a longer encoded text: a
  string's base64 depends on where it starts modulo 3, so the characters that depend only on the
  key are taken at each of the three alignments (the one or two characters at each end that also
  depend on its neighbours stay, and say nothing of it).

The encoded forms are those of the part after ``rvya_sk_`` (they are inside the encoding of the
whole key too), or of the whole key when that part is shorter than ``MIN_BARE_PREFIX``: a short
string's encoding could turn up by chance.
"""

from __future__ import annotations

import base64
import re
from typing import Any

__all__ = ["KEY_MARKER", "MIN_BARE_PREFIX", "MIN_PREFIX_AFTER_MARKER", "REDACTED", "KeyEchoes", "echo_forms"]

KEY_MARKER = "rvya_sk_"
MIN_PREFIX_AFTER_MARKER = 4
MIN_BARE_PREFIX = 8
REDACTED = "[redacted]"


def _aligned_base64(data: bytes, alphabet: bytes | None) -> list[str]:
    """The base64 characters determined by ``data`` alone, at each of the three byte alignments."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data, altchars=alphabet).decode("ascii").rstrip("=")
        first = -(-offset * 8 // 6)  # the first character whose 6 bits all come from ``data``
        last = (offset + len(data)) * 8 // 6  # one past the last such character
        cores.append(encoded[first:last])
    return cores


def echo_forms(key: str) -> list[str]:
    """Every encoded spelling of ``key`` to redact (the verbatim key and its prefixes are a pattern)."""
    secret = key.removeprefix(KEY_MARKER)
    data = (secret if len(secret) >= MIN_BARE_PREFIX else key).encode("utf-8")
    forms = {data.hex(), data.hex().upper()}
    for alphabet in (None, b"-_"):
        forms.update(_aligned_base64(data, alphabet))
    return sorted((form for form in forms if form), key=len, reverse=True)


def _prefix_pattern(text: str, minimum: int) -> str:
    """``text[:minimum]`` and then as many of the following characters as match: ``ab(?:c(?:d)?)?``."""
    tail = text[minimum:]
    return re.escape(text[:minimum]) + "".join(f"(?:{re.escape(c)}" for c in tail) + ")?" * len(tail)


class KeyEchoes:
    """Finds and blanks every echo of one API key. Its repr never shows the key."""

    __slots__ = ("_key", "_pattern")

    def __init__(self, key: str) -> None:
        self._key = key
        secret = key.removeprefix(KEY_MARKER)
        alternatives = [re.escape(key)]
        if key.startswith(KEY_MARKER) and len(secret) >= MIN_PREFIX_AFTER_MARKER:
            alternatives.append(re.escape(KEY_MARKER) + _prefix_pattern(secret, MIN_PREFIX_AFTER_MARKER))
        if len(secret) >= MIN_BARE_PREFIX:
            alternatives.append(_prefix_pattern(secret, MIN_BARE_PREFIX))
        alternatives += [re.escape(form) for form in echo_forms(key)]
        self._pattern = re.compile("|".join(alternatives))

    def __repr__(self) -> str:
        return "KeyEchoes('**********')"

    def scrub_text(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)

    def scrub(self, value: Any) -> Any:
        """``value`` (a string, or parsed JSON) with every echo replaced, dict keys included."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(item) for item in value]
        return value
