"""Saving finished images: absolute paths, collision-safe names, atomic writes, safe lookups."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

from rivya_mcp.references import EXTENSIONS

# One table of image types for the whole package (the references' one): type → extension without
# the dot, and back (``jpeg`` too, as files named by others use it).
IMAGE_TYPES = {mime: extension.lstrip(".") for mime, extension in EXTENSIONS.items()}
MIME_BY_EXTENSION = {**{ext: mime for mime, ext in IMAGE_TYPES.items()}, "jpeg": "image/jpeg"}
SLUG_MAX_CHARS = 40
MAX_NAME_ATTEMPTS = 1000
# Names we hand out and serve: no separators, no leading dot, a known image extension.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(?:jpg|jpeg|png|webp)$")


def slugify(text: str, *, max_chars: int = SLUG_MAX_CHARS) -> str:
    """A lowercase ASCII slug of the first words of a prompt; ``image`` when nothing is left."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    # Magic sandbox tokens and the like are noise in a file name.
    ascii_text = re.sub(r"\[[^\]]*\]", " ", ascii_text)
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_chars:
        slug = slug[:max_chars].rsplit("-", 1)[0] if "-" in slug[:max_chars] else slug[:max_chars]
    return slug.strip("-") or "image"


def image_filename(task_id: str, prompt: str, extension: str, *, when: datetime | None = None) -> str:
    """``2026-11-26_task_xxx_a-red-fox.jpg``: sortable by date, traceable to the task."""
    day = (when or datetime.now(UTC)).strftime("%Y-%m-%d")
    safe_task = re.sub(r"[^A-Za-z0-9_-]+", "-", task_id).strip("-") or "task"
    return f"{day}_{safe_task}_{slugify(prompt)}.{extension}"


def _candidates(filename: str) -> list[str]:
    stem, dot, ext = filename.rpartition(".")
    return [filename] + [f"{stem}-{n}{dot}{ext}" for n in range(2, MAX_NAME_ATTEMPTS + 1)]


def sidecar_name(filename: str) -> str:
    """The XMP sidecar's name beside an image (``a.png`` → ``a.xmp``; ``imaging.sidecar_path``)."""
    return f"{filename.rpartition('.')[0] or filename}.xmp"


def _reserve(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _write_over(directory: Path, target: Path, data: bytes) -> None:
    handle, temp_name = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def save_atomically(directory: Path, filename: str, data: bytes, *, sidecar: str | None = None) -> Path:
    """Write ``data`` under ``directory`` without ever overwriting an existing file.

    The final name is reserved with O_EXCL (so two concurrent saves cannot pick the same one),
    the bytes go to a temp file in the same directory, and os.replace swaps it in: a reader sees
    either nothing complete or the whole image, never a torn file. With ``sidecar`` (an XMP text)
    the name is one whose ``.xmp`` sidecar is free too (both are reserved), so an image never gets
    another image's sidecar; the sidecar is written after the image.
    """
    directory = directory.expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for candidate in _candidates(filename):
        target = directory / candidate
        if not _reserve(target):
            continue
        beside = directory / sidecar_name(candidate)
        # A name whose sidecar is taken would look like the owner of another image's XMP.
        if (sidecar is None and beside.exists()) or (sidecar is not None and not _reserve(beside)):
            target.unlink(missing_ok=True)
            continue
        break
    else:
        raise FileExistsError(f"no free file name for {filename} in {directory}")
    try:
        _write_over(directory, target, data)
        if sidecar is not None:
            _write_over(directory, beside, sidecar.encode("utf-8"))
    except BaseException:
        target.unlink(missing_ok=True)
        if sidecar is not None:
            beside.unlink(missing_ok=True)
        raise
    return target


def resolve_served_file(directory: Path, filename: str) -> Path | None:
    """The file ``filename`` inside ``directory``, or None: no traversal, no symlink escapes."""
    if not SAFE_NAME.match(filename):
        return None
    root = directory.expanduser().resolve()
    candidate = (root / filename).resolve()
    if candidate.parent != root or not candidate.is_file():
        return None
    return candidate


def mime_for(path: Path) -> str:
    return MIME_BY_EXTENSION.get(path.suffix.lower().lstrip("."), "application/octet-stream")
