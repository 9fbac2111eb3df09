"""Upstream text made safe to log and to show: the API is not trusted to send printable text only.

A task id, a status or an error message comes from the upstream (or from a webhook), and may
carry a line break (a forged log line, a forged line in an agent's text), terminal escape
sequences (a restyled or cleared terminal), or bidirectional overrides (text that reads otherwise
than it is). Three pure functions, tested as a table:

- ``printable(value)``: for a log line. Control characters are escaped as a Python repr writes
  them (``\\n``, ``\\x1b``, ``\\u202e``), so one record stays one line and says what was sent.
  The CLI's log filter applies it to every record; code that logs an upstream value may apply it
  too (a library user's logging has no such filter).
- ``shown(text)``: for text an agent or a person reads. Escape sequences are removed, other control
  characters (line breaks included) become a space, bidirectional controls are dropped.
- ``shown_token(value)``: for a value that should be one short word (a status, an error code):
  the value when it is one, else a description that does not repeat it (no HTML, no escapes).
"""

from __future__ import annotations

import re

__all__ = ["printable", "shown", "shown_token"]

# C0 and C1 controls and DEL (NEL among them), the line and paragraph separators, and the
# bidirectional formatting characters (embeddings, overrides, isolates, marks).
_UNSAFE = "\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_CHAR = re.compile(f"[{_UNSAFE}]")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# ECMA-48 sequences: CSI (ESC [ … final), OSC (ESC ] … BEL or ST), and two-character escapes.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window titles, hyperlinks
    r"|\x1b[@-_]"  # any other two-character escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI as its one-byte C1 form
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# A token: what a status or an error code looks like (letters, digits, _ . -), within reason.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
MAX_LOGGED = 500
MAX_SHOWN = 2000


def _escape(char: str) -> str:
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: object, *, limit: int | None = MAX_LOGGED) -> str:
    """``str(value)`` for a log line: control and bidi characters escaped, cut after ``limit`` characters."""
    text = value if isinstance(value, str) else str(value)
    if _UNSAFE_CHAR.search(text):
        text = _UNSAFE_CHAR.sub(lambda match: _escape(match.group()), text)
    if limit is not None and len(text) > limit:
        text = f"{text[:limit]}… ({len(text)} characters)"
    return text


def shown(text: str, *, limit: int | None = MAX_SHOWN) -> str:
    """``text`` for an agent or a person to read: escape sequences removed, control characters as spaces."""
    if _UNSAFE_CHAR.search(text):
        text = _ESCAPE_SEQUENCE.sub("", text)
        text = _BIDI.sub("", text)
        text = _UNSAFE_CHAR.sub(" ", text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text


def shown_token(value: str, *, what: str = "value") -> str:
    """``value`` when it is a plain short word; else a description that does not repeat it."""
    if _TOKEN.fullmatch(value):
        return value
    return f"an unreadable {what} ({len(value)} characters, not shown)"
