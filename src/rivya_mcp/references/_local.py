"""Read a local reference file: absolute paths only, regular files only, never past the limit."""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ._errors import ReferenceError
from ._limits import format_size

__all__ = ["open_local_file", "read_local_file", "read_open_file", "resolve_local_path"]

# O_NONBLOCK: opening a FIFO for reading would otherwise block until a writer appears (the stat
# check below should already have refused it; this covers a swap between stat and open).
# O_NOFOLLOW: the path is already resolved, so a symlink here means it was swapped in meanwhile.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
)
# The folders on the way to the file: opened one by one, never through a symlink. O_PATH (Linux)
# or O_SEARCH opens a folder the user may pass through but not list, as a plain open of the path would.
_DIR_FLAGS = (
    (getattr(os, "O_PATH", 0) or getattr(os, "O_SEARCH", 0) or os.O_RDONLY)
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
)
# Where ``openat`` is missing (Windows), the path is opened whole (see ``_open_resolved``).
_WALK = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW")
_CHUNK = 1024 * 1024


def resolve_local_path(source: str, *, read_dirs: Sequence[Path]) -> Path:
    """The real path of ``source`` (``~`` expanded, symlinks resolved), checked against ``read_dirs``.

    Symlinks are followed and the *target* must lie under a read dir, so a link inside an
    allowed folder can't expose a file outside it.

    With ``read_dirs`` (a server others may call, e.g. over HTTP), every path outside them gets
    one and the same refusal, byte for byte: whether it exists, is a folder, is a link and where
    to, or what ``~`` expands to, is nothing a caller may learn. So the folders are checked on
    the path as written *before* the file system is asked anything about it, and again on the
    real path after symlinks.
    """
    # Taken exactly as given: white space may be part of a name, and stripping it would look up
    # another file (issue 23 item 11). Errors point it out instead (``_white_space_note``).
    text = source
    if "\x00" in text:
        # The OS can't take such a path at all (Python raises ValueError, not OSError).
        raise ReferenceError(
            "the reference path contains a NUL character; give the path of an image file", reason="bad_path"
        )
    roots = _roots(read_dirs) if read_dirs else ()
    expanded = os.path.expanduser(text)
    if expanded.startswith("~"):
        if roots:
            raise _outside(roots)  # whether that user exists is not the caller's to learn
        raise ReferenceError(f"couldn't expand {text!r}: no such user or home directory", reason="bad_path")
    path = Path(expanded)
    if not path.is_absolute():
        raise ReferenceError(
            f"reference path must be absolute or start with ~/ (got {text!r}); the server's working "
            f"directory is not yours, so relative paths are ambiguous{_white_space_note(text)}",
            reason="relative_path",
        )
    if roots and not _inside(Path(os.path.normpath(path)), roots):
        raise _outside(roots)
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        if roots and not _inside(_resolve_loosely(path), roots):
            raise _outside(roots) from None  # a dangling link out of the folders
        if _white_space_note(text):
            raise ReferenceError(f"no file at {text!r}{_white_space_note(text)}", reason="not_found") from None
        raise ReferenceError(f"no file at {path}; check the path", reason="not_found") from None
    except RuntimeError:  # a symlink loop, on Python 3.11/3.12
        raise ReferenceError(f"{path} is a symlink loop", reason="bad_path") from None
    except OSError as exc:
        if roots and not _inside(_resolve_loosely(path), roots):
            raise _outside(roots) from None
        raise ReferenceError(f"can't read {path}: {exc.strerror or exc}", reason="unreadable") from None
    if roots and not _inside(resolved, roots):
        raise _outside(roots)
    return resolved


def _white_space_note(text: str) -> str:
    """Point out white space at either end of a path, which is kept as part of the name."""
    ends = [where for where, edge in (("begins", text[:1]), ("ends", text[-1:])) if edge.isspace()]
    if not ends:
        return ""
    return (
        f"; the path {' and '.join(ends)} with white space, which is taken as part of the name: remove it if it is not"
    )


def _roots(read_dirs: Sequence[Path]) -> tuple[Path, ...]:
    """Each read dir as written (normalised), then as resolved: a path may use either spelling."""
    roots: list[Path] = []
    for folder in read_dirs:
        written = Path(os.path.normpath(os.path.abspath(os.path.expanduser(folder))))
        roots += [written, _resolve_loosely(written)]
    return tuple(roots)


def _resolve_loosely(path: Path) -> Path:
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError):
        return Path(os.path.normpath(path))


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _outside(roots: Sequence[Path]) -> ReferenceError:
    # The same words for every path outside: it names the allowed folders (as the operator wrote
    # them: ``_roots`` puts those first in each pair), never the path given or where it leads.
    shown = ", ".join(dict.fromkeys(str(r) for r in roots[::2]))
    return ReferenceError(
        f"that path is outside the folders this server may read ({shown}); move or copy the image into "
        "one of them, or pass it as a URL or data URI",
        reason="outside_read_dirs",
    )


def open_local_file(path: Path, *, max_bytes: int) -> tuple[int, os.stat_result]:
    """Open a resolved regular file within the limit, refusing anything else: ``(fd, fstat)``.

    The caller owns (and must close) the descriptor. Blocking, so run it in a thread.
    """
    try:
        before = os.stat(path)
    except OSError as exc:
        raise ReferenceError(f"can't read {path}: {exc.strerror or exc}", reason="unreadable") from None
    _check_regular(path, before, max_bytes)
    fd = _open_resolved(path)
    try:
        after = os.fstat(fd)
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise ReferenceError(f"{path} changed while it was being read; try again", reason="changed")
        _check_regular(path, after, max_bytes)
    except BaseException:
        os.close(fd)
        raise
    return fd, after


def _open_resolved(path: Path) -> int:
    """Open the resolved ``path`` so that what is opened is that very path: no symlink on the way.

    ``resolve_local_path`` checked the real path against the read dirs, but a folder on it can be
    swapped for a symlink before the open; a plain ``open`` would follow it out of the folders
    (issue 23 item 10: 6 of 300 tries). So each folder is opened relative to the one before it
    (``openat``) with O_NOFOLLOW, and so is the file: a link anywhere on the path fails the open
    instead of being followed, and the descriptor is of the file the check saw a path to.
    """
    try:
        if not _WALK:
            return os.open(path, _OPEN_FLAGS)
        folder = os.open(path.anchor, _DIR_FLAGS)
        try:
            for part in path.parts[1:-1]:
                inner = os.open(part, _DIR_FLAGS, dir_fd=folder)
                os.close(folder)
                folder = inner
            return os.open(path.name, _OPEN_FLAGS, dir_fd=folder)
        finally:
            os.close(folder)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
            # The path checked a moment ago no longer leads to a file the same way: a folder or the
            # file became a link, or went away. Where a link would have led is not said.
            raise ReferenceError(f"{path} changed while it was being opened; try again", reason="changed") from None
        raise ReferenceError(f"can't open {path}: {exc.strerror or exc}", reason="unreadable") from None


def read_local_file(path: Path, *, max_bytes: int) -> bytes:
    """Read a resolved regular file, refusing anything else; blocking, so run it in a thread."""
    fd, _ = open_local_file(path, max_bytes=max_bytes)
    with os.fdopen(fd, "rb", buffering=0) as file:
        return read_open_file(file, path, max_bytes=max_bytes)


def unreadable(path: Path, exc: OSError) -> ReferenceError:
    """A read that failed after the open (EIO from ``/proc/self/mem``, a dying disk or mount)."""
    return ReferenceError(f"can't read {path}: {exc.strerror or exc}", reason="unreadable")


def read_open_file(file: io.FileIO, path: Path, *, max_bytes: int) -> bytes:
    """The rest of an open file, refused if it holds more than ``max_bytes`` from where it stands."""
    try:
        data = _read_at_most(file, max_bytes + 1)  # +1 byte tells "exactly the limit" from "over"
    except OSError as exc:
        raise unreadable(path, exc) from None
    if len(data) > max_bytes:
        raise ReferenceError(
            f"reference {path} grew past the {format_size(max_bytes)} limit while being read", reason="too_large"
        )
    return data


def _check_regular(path: Path, info: os.stat_result, max_bytes: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise ReferenceError(f"{path} is a directory; give the path of an image file", reason="not_a_file")
    if not stat.S_ISREG(info.st_mode):
        raise ReferenceError(
            f"{path} is not a regular file (a device, FIFO or socket); give the path of an image file",
            reason="not_a_file",
        )
    if info.st_size > max_bytes:
        raise ReferenceError(
            f"reference is {format_size(info.st_size)}; the limit is {format_size(max_bytes)}. "
            "Resize or recompress it and try again",
            reason="too_large",
        )


def _read_at_most(file: io.FileIO, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = file.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
