"""``load_reference``: any accepted reference source → checked image bytes."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import anyio.to_thread
import httpx2

from rivya_mcp.manifest import UploadPolicy

from ._data_uri import decode_data_uri
from ._errors import ReferenceError
from ._fetch import fetch_url
from ._image import ImageInfo, inspect_image
from ._local import read_local_file, resolve_local_path
from ._sniff import EXTENSIONS
from ._source import classify_source

__all__ = ["LoadedReference", "load_reference"]

logger = logging.getLogger("rivya_mcp.references")

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\- ]+")
_MAX_NAME = 100


@dataclass(frozen=True)
class LoadedReference:
    """A reference image that passed every check.

    ``data`` always holds the exact bytes that were checked, and that is what should be uploaded.
    ``path`` (local files only) is the resolved path, for messages; re-opening it would reintroduce
    the race the check closed (the file could be swapped between check and upload).
    """

    data: bytes
    path: Path | None
    mime_type: str
    filename: str
    size: int
    width: int
    height: int
    source_kind: Literal["path", "url", "data_uri"]
    # Things the agent should know although the reference was accepted (e.g. a wrong declared type).
    notes: tuple[str, ...] = ()


async def load_reference(
    source: str,
    *,
    policy: UploadPolicy,
    allow_paths: bool = True,
    read_dirs: Sequence[Path] = (),
    allow_private_urls: bool = False,
    trusted_hosts: Collection[str] = (),
    http_client: httpx2.AsyncClient | None = None,
    timeout: float = 20.0,
) -> LoadedReference:
    """Read and check one reference: a local path, an http(s) URL or a data URI.

    ``file_…`` and ``task_…`` ids are the server's to resolve and are refused here. Raises
    ``ReferenceError`` (with ``.message`` for the agent) for anything that isn't an accepted,
    intact image within ``policy.max_bytes`` and ``MAX_PIXELS``. ``trusted_hosts`` entries are
    ``host`` (any port) or ``host:port``; URLs on them skip the address check.
    """
    kind = classify_source(source)
    notes: tuple[str, ...] = ()
    path: Path | None = None
    if kind == "path":
        if not allow_paths:
            raise ReferenceError(
                "local files can't be read over HTTP unless the operator sets RIVYA_READ_DIRS; pass the "
                "image as an http(s) URL or a data URI instead",
                reason="paths_disabled",
            )
        path, data = await anyio.to_thread.run_sync(
            partial(_read_path, source, read_dirs=read_dirs, max_bytes=policy.max_bytes)
        )
        name = os.path.basename(os.path.expanduser(source.strip()))
    elif kind == "url":
        fetched = await fetch_url(
            source.strip(),
            max_bytes=policy.max_bytes,
            allow_private_urls=allow_private_urls,
            trusted_hosts=trusted_hosts,
            http_client=http_client,
            timeout=timeout,
        )
        data = fetched.data
        name = posixpath.basename(fetched.path)
    elif kind == "data_uri":
        decoded = await anyio.to_thread.run_sync(partial(decode_data_uri, source, max_bytes=policy.max_bytes))
        data = decoded.data
        name = "reference"
    else:
        raise ReferenceError(
            f"{source.strip()!r} is an uploaded file or task id; the server resolves those, not the loader",
            reason="unresolved_id",
        )
    info: ImageInfo = await anyio.to_thread.run_sync(partial(inspect_image, data, mime_types=policy.mime_types))
    if kind == "data_uri" and decoded.declared_mime and decoded.declared_mime != info.mime_type:
        notes = (
            f"the data URI declared {decoded.declared_mime} but the bytes are {info.mime_type}; "
            f"sent as {info.mime_type}",
        )
        logger.info("data URI mime mismatch: declared %s, sniffed %s", decoded.declared_mime, info.mime_type)
    return LoadedReference(
        data=data,
        path=path,
        mime_type=info.mime_type,
        filename=_filename(name, info.mime_type),
        size=len(data),
        width=info.width,
        height=info.height,
        source_kind=kind,
        notes=notes,
    )


def _read_path(source: str, *, read_dirs: Sequence[Path], max_bytes: int) -> tuple[Path, bytes]:
    # Resolving and stat-ing touch the disk (maybe a network mount): keep them off the event loop.
    path = resolve_local_path(source, read_dirs=read_dirs)
    return path, read_local_file(path, max_bytes=max_bytes)


def _filename(name: str, mime_type: str) -> str:
    """A safe upload name whose extension matches the sniffed type (``photo.png`` → ``photo.jpg``)."""
    stem, ext = os.path.splitext(_UNSAFE_NAME_CHARS.sub("_", name).strip(" ._"))
    wanted = EXTENSIONS[mime_type]
    if ext.lower() in {wanted, ".jpeg" if wanted == ".jpg" else wanted}:
        wanted = ext
    stem = stem.strip(" ._")[: _MAX_NAME - len(wanted)] or "reference"
    return stem + wanted
