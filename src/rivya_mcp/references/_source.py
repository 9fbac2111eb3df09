"""Tell what kind of reference source a string is, and refuse schemes we never read."""

from __future__ import annotations

import os
import re
from typing import Literal

from ._errors import ReferenceError

__all__ = ["MAX_ID_LENGTH", "SourceKind", "classify_source", "could_be_id"]

SourceKind = Literal["path", "url", "data_uri"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# Longer than any id an API hands out; longer "ids" are not worth a lookup.
MAX_ID_LENGTH = 256


def could_be_id(source: str) -> bool:
    """Whether ``source`` might be an id the API returned (a file id or a task id).

    Ids are recognised by what they are not: not a URL or data URI (no scheme), not an absolute
    or home path, no path separator, no whitespace. Their shape is never assumed: the docs never
    show a file id, and the task ids they show (``task_…``) are examples (rivya-api.md §3.2, §3.6).
    The server then asks its journal and the API which, if any, it is; a bare name such as
    ``cat.png`` that neither knows is still refused as a relative path.
    """
    text = source.strip()
    if not text or len(text) > MAX_ID_LENGTH or _SCHEME.match(text):
        return False
    if text.startswith(("~", ".")) or any(sep in text for sep in ("/", "\\")):
        return False
    return not any(ch.isspace() for ch in text)


def classify_source(source: str) -> SourceKind:
    """``"path"``, ``"url"`` or ``"data_uri"``.

    Raises ``ReferenceError`` for an empty source and for any scheme other than http(s)/data. A
    relative path (or an unknown id) still classifies as ``"path"``; ``load_reference`` explains
    why it is refused. Ids are the server's to resolve first (``could_be_id``).
    """
    text = source.strip()
    if not text:
        raise ReferenceError(
            "the reference is empty; give an absolute path, an http(s) URL, a data URI, a file id or a task id",
            reason="empty",
        )
    match = _SCHEME.match(text)
    # "C:\\images\\cat.png" has a one-letter "scheme": a Windows drive, not a URL.
    if match and not (len(match.group(1)) == 1 and os.name == "nt"):
        scheme = match.group(1).lower()
        if scheme in ("http", "https"):
            return "url"
        if scheme == "data":
            return "data_uri"
        raise ReferenceError(_scheme_message(scheme), reason="unsupported_scheme")
    return "path"


def _scheme_message(scheme: str) -> str:
    if scheme == "file":
        return (
            "file: URLs aren't accepted; pass the local path itself (absolute, or starting with ~/), "
            "e.g. /home/me/photo.png"
        )
    return (
        f"{scheme}: references aren't supported; use an absolute local path, an http(s) URL, a data: URI, "
        "an uploaded file id or a previous task id"
    )
