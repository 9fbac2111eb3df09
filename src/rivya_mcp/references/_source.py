"""Tell what kind of reference source a string is, and refuse schemes we never read."""

from __future__ import annotations

import os
import re
from typing import Literal

from ._errors import ReferenceError

__all__ = ["SourceKind", "classify_source"]

SourceKind = Literal["path", "url", "data_uri", "file_id", "task_id"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_FILE_ID = re.compile(r"^file_[A-Za-z0-9_\-]+$")
_TASK_ID = re.compile(r"^task_[A-Za-z0-9_\-]+$")


def classify_source(source: str) -> SourceKind:
    """``"path"``, ``"url"``, ``"data_uri"``, ``"file_id"`` or ``"task_id"``.

    Raises ``ReferenceError`` for an empty source and for any scheme other than http(s)/data. A
    relative path still classifies as ``"path"``; ``load_reference`` explains why it is refused.
    """
    text = source.strip()
    if not text:
        raise ReferenceError(
            "the reference is empty; give an absolute path, an http(s) URL, a data URI, a file id or a task id",
            reason="empty",
        )
    if _FILE_ID.match(text):
        return "file_id"
    if _TASK_ID.match(text):
        return "task_id"
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
        "an uploaded file id (file_…) or a previous task id (task_…)"
    )
