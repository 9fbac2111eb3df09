"""``load_reference``: any accepted reference source → checked image bytes."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Callable, Collection, Sequence
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
from ._image import ImageInfo, inspect_image, verify_image
from ._jpeg import JpegChecker
from ._local import open_local_file, read_local_file, read_open_file, resolve_local_path, unreadable
from ._png import PngChecker
from ._sniff import EXTENSIONS, sniff_image_type
from ._source import classify_source
from ._streamed import CheckedFile, StreamCheck
from ._webp import WebpChecker

__all__ = ["LoadedReference", "load_reference", "verify_reference"]

logger = logging.getLogger("rivya_mcp.references")

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\- ]+")
_MAX_NAME = 100
# How much of a local image is read (and its header checked) before it may be streamed: a PNG's
# or JPEG's header parse (Pillow's) reads up to the image data, which follows any metadata (ICC
# profiles, text, EXIF); a WebP declares its size in its first 30 bytes.
_HEADER_PREFIX = 256 * 1024


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
    # False when loaded with ``verify=False``: the header passed, but ``verify_reference`` must
    # pass before the reference may be used (it may be uploaded meanwhile).
    verified: bool = True
    # A local image loaded with ``verify=False`` comes open instead of read (``data`` is
    # empty): the upload reads it, and it checks every byte as it is read (``CheckedFile``).
    # Close it after.
    stream: CheckedFile | None = None


async def verify_reference(loaded: LoadedReference) -> None:
    """The truncation/corruption check a ``verify=False`` load skipped; raises ``ReferenceError``.

    Nothing to do for a ``stream``: it checks itself as it is read.
    """
    if loaded.verified or loaded.stream is not None:
        return
    info = ImageInfo(mime_type=loaded.mime_type, width=loaded.width, height=loaded.height)
    await anyio.to_thread.run_sync(verify_image, loaded.data, info)


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
    verify: bool = True,
) -> LoadedReference:
    """Read and check one reference: a local path, an http(s) URL or a data URI.

    File and task ids are the server's to resolve (``could_be_id``) before calling this. Raises
    ``ReferenceError`` (with ``.message`` for the agent) for anything that isn't an accepted,
    intact image within ``policy.max_bytes`` and ``MAX_PIXELS``. ``trusted_hosts`` entries are
    ``host`` (any port) or ``host:port``; URLs on them skip the address check.

    ``verify=False`` stops after the cheap checks (size, signature, type, header dimensions): the
    result has ``verified=False`` and ``verify_reference`` must pass before it is used. A local
    image is then not even read: it comes back open as ``stream``, checked as it is read.
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
        name = os.path.basename(os.path.expanduser(source))
        path, data, streamed = await anyio.to_thread.run_sync(
            partial(_open_path, source, read_dirs=read_dirs, policy=policy, stream=not verify)
        )
        if streamed is not None:
            file, header = streamed
            return LoadedReference(
                data=b"",
                path=path,
                mime_type=header.mime_type,
                filename=_filename(name, header.mime_type),
                size=file.size,
                width=header.width,
                height=header.height,
                source_kind="path",
                verified=False,
                stream=file,
            )
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
    else:  # a data URI
        decoded = await anyio.to_thread.run_sync(partial(decode_data_uri, source, max_bytes=policy.max_bytes))
        data = decoded.data
        name = "reference"
    info: ImageInfo = await anyio.to_thread.run_sync(
        partial(inspect_image, data, mime_types=policy.mime_types, verify=verify)
    )
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
        verified=verify,
    )


def _open_path(
    source: str, *, read_dirs: Sequence[Path], policy: UploadPolicy, stream: bool
) -> tuple[Path, bytes, tuple[CheckedFile, ImageInfo] | None]:
    """Resolve, open and read a local file: ``(path, data, None)``, or an image to stream.

    Blocking (resolving and reading touch the disk, maybe a network mount): run it in a thread.
    With ``stream``, an image whose header passes from the first ``_HEADER_PREFIX`` bytes comes
    back open as ``(path, b"", (file, header))``; one whose header goes on past them is read
    whole from the same descriptor.
    """
    path = resolve_local_path(source, read_dirs=read_dirs)
    if not stream:
        return path, read_local_file(path, max_bytes=policy.max_bytes), None
    fd, info = open_local_file(path, max_bytes=policy.max_bytes)
    owned = True
    try:
        try:
            prefix = os.pread(fd, min(info.st_size, _HEADER_PREFIX), 0)
        except OSError as exc:
            raise unreadable(path, exc) from None
        checks = _STREAM_CHECKS.get(sniff_image_type(prefix[:16]) or "")
        header = _header(prefix, policy, whole=len(prefix) >= info.st_size) if checks else None
        if checks is not None and header is not None:
            dimensions = (header.width, header.height)
            file = CheckedFile(fd, path, size=info.st_size, new_check=lambda: checks(size=dimensions))
            owned = False
            return path, b"", (file, header)
        owned = False
        with os.fdopen(fd, "rb", buffering=0) as whole:
            return path, read_open_file(whole, path, max_bytes=policy.max_bytes), None
    finally:
        if owned:
            os.close(fd)


# The deep checks that run on an image as it streams past: every accepted type has one.
_STREAM_CHECKS: dict[str, Callable[..., StreamCheck]] = {
    "image/png": PngChecker,
    "image/jpeg": JpegChecker,
    "image/webp": WebpChecker,
}


def _header(prefix: bytes, policy: UploadPolicy, *, whole: bool) -> ImageInfo | None:
    """The cheap checks on an image's first bytes; None if its header may go on past them."""
    try:
        return inspect_image(prefix, mime_types=policy.mime_types, verify=False)
    except ReferenceError as exc:
        if exc.reason == "corrupt" and not whole:
            return None  # large metadata can push the header past the prefix: read it whole
        raise


def _filename(name: str, mime_type: str) -> str:
    """A safe upload name whose extension matches the sniffed type (``photo.png`` → ``photo.jpg``)."""
    stem, ext = os.path.splitext(_UNSAFE_NAME_CHARS.sub("_", name).strip(" ._"))
    wanted = EXTENSIONS[mime_type]
    if ext.lower() in {wanted, ".jpeg" if wanted == ".jpg" else wanted}:
        wanted = ext
    stem = stem.strip(" ._")[: _MAX_NAME - len(wanted)] or "reference"
    return stem + wanted
