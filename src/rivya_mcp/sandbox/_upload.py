"""``POST /api/v1/files``: a multipart body read with a hard size cap, and type checks by signature."""

from __future__ import annotations

import posixpath
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from rivya_mcp.manifest import Manifest, load_manifests
from rivya_mcp.sandbox._catalog import upload_limit
from rivya_mcp.sandbox._errors import validation_failed
from rivya_mcp.sandbox._profile import DEFAULT

# Documented defaults for image uploads (rivya-api.md §3.6: "10 MB"); a `model` field narrows them.
# What a megabyte is, the docs do not say: the profile decides (`Profile.megabyte`).
DEFAULT_IMAGE_MB = 10
DEFAULT_IMAGE_MAX_BYTES = DEFAULT_IMAGE_MB * DEFAULT.megabyte
DEFAULT_IMAGE_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_CLIENT_REQUEST_ID = 128
KINDS = ("image", "video", "audio")
# Room for the multipart framing and the small text fields around the file part.
FORM_OVERHEAD = 64 * 1024
MAX_NAME = 255


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upload:
    kind: str
    name: str
    mime_type: str
    data: bytes
    model: str | None
    client_request_id: str | None


def sniff_mime(head: bytes) -> str | None:
    """The image type from the file's first bytes (its signature), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def stream_cap(megabyte: int = DEFAULT.megabyte) -> int:
    """The most file bytes any upload may carry (before the model is known)."""
    per_model = (upload_limit(m.upload.max_bytes, megabyte) for m in load_manifests().values())
    return max([DEFAULT_IMAGE_MB * megabyte, *per_model])


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        yield chunk


def _megabytes(size: int, megabyte: int) -> str:
    return f"{size / megabyte:g} MB ({size:,} bytes)"


async def read_upload(request: Request, *, megabyte: int = DEFAULT.megabyte) -> Upload:
    """Parse and check an upload; raise ``validation_failed`` naming the problem.

    The body is never read further than the largest allowed file plus the form overhead: a
    declared Content-Length over that is refused before reading, and a streamed body is cut off.
    """
    cap = stream_cap(megabyte)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise validation_failed(["body: must be multipart/form-data"])
    declared = request.headers.get("content-length")
    # Sandbox decision: size and type refusals are 400 `validation_failed` (no upload code is documented).
    too_large = validation_failed([f"file: is larger than the {_megabytes(cap, megabyte)} limit"])
    if declared is not None and declared.isdigit() and int(declared) > cap + FORM_OVERHEAD:
        raise too_large
    parser = MultiPartParser(
        request.headers, _capped(request, cap + FORM_OVERHEAD), max_files=1, max_fields=16, max_part_size=4096
    )
    try:
        form = await parser.parse()
    except _TooLarge:
        raise too_large from None
    except MultiPartException as exc:
        raise validation_failed([f"body: {exc.message}"]) from None
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise validation_failed(["file: is required (a file part named 'file')"])
        data = await file.read()
    finally:
        await form.close()
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    return _check(file.filename, data, fields, megabyte)


def _check(filename: str | None, data: bytes, fields: dict[str, str], megabyte: int) -> Upload:
    problems: list[str] = []
    kind = fields.get("kind")
    model_id = fields.get("model") or None
    client_request_id = fields.get("client_request_id") or None
    manifest: Manifest | None = None
    if kind not in KINDS:
        problems.append(f"kind: is required and must be one of {', '.join(KINDS)}")
    elif kind != "image":
        # Sandbox decision: only image references are emulated (the project's models take images).
        problems.append(f"kind: the sandbox accepts image files only, not {kind}")
    if model_id is not None:
        manifest = load_manifests().get(model_id)
        if manifest is None:
            problems.append(f"model: unknown model {model_id!r}")
        elif kind is not None and kind not in manifest.upload.kinds:
            problems.append(f"kind: {model_id} does not accept {kind} files")
    if client_request_id is not None and len(client_request_id) > MAX_CLIENT_REQUEST_ID:
        problems.append(f"client_request_id: must be at most {MAX_CLIENT_REQUEST_ID} characters")
    max_bytes = upload_limit(manifest.upload.max_bytes, megabyte) if manifest else DEFAULT_IMAGE_MB * megabyte
    allowed = manifest.upload.mime_types if manifest else DEFAULT_IMAGE_MIME_TYPES
    mime = sniff_mime(data[:16])
    if not data:
        problems.append("file: is empty")
    elif len(data) > max_bytes:
        problems.append(f"file: is larger than the {_megabytes(max_bytes, megabyte)} limit")
    elif mime is None or mime not in allowed:
        # The declared part type and the file name are ignored: only the bytes count (§3.6).
        problems.append(f"file: content is not an accepted image type ({', '.join(allowed)})")
    if problems:
        raise validation_failed(problems)
    assert kind is not None and mime is not None
    name = posixpath.basename((filename or "").replace("\\", "/"))[:MAX_NAME] or "upload"
    return Upload(kind=kind, name=name, mime_type=mime, data=data, model=model_id, client_request_id=client_request_id)
