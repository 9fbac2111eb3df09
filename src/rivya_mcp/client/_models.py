"""Typed views of the API's JSON.

Every model ignores nothing and requires little: unknown fields are kept (``extra="allow"``) so a
new server field never breaks parsing, and the documented name variants are all accepted.

Where the docs are loose, parsing takes every plausible reading (rivya-api.md):
- status values are stated in lower case (§3.3) but case is never said to matter: they are
  compared case-insensitively, by normalising them to lower case here;
- ``result.urls`` is listed "when available" (§3.3): null or missing is an empty list, never an error;
- numbers the docs show as integers (credits, sizes) may arrive as JSON floats (JSON has one
  number type): an integral float becomes an ``int``, any other stays a ``float``;
- the file object's field names are not documented (§3.6): ``id``/``file_id``,
  ``mimeType``/``mime_type`` and several spellings of the size are accepted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "DOCUMENTED_STATUSES",
    "FAILED",
    "PROCESSING",
    "QUEUED",
    "RUNNING_STATUSES",
    "SUCCEEDED",
    "TERMINAL_STATUSES",
    "UPLOAD_BYTES_KEYS",
    "UPLOAD_MB_KEYS",
    "Catalog",
    "Credits",
    "Generation",
    "GenerationResult",
    "ModelInfo",
    "RivyaFile",
    "TaskError",
    "UnreadableEntry",
]

# The task statuses rivya-api.md §3.3 documents, written once for every layer: queued → processing
# → succeeded | failed. Anything else is undocumented: named where shown and never taken as terminal.
QUEUED: Final = "queued"
PROCESSING: Final = "processing"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
DOCUMENTED_STATUSES: Final = frozenset({QUEUED, PROCESSING, SUCCEEDED, FAILED})
RUNNING_STATUSES: Final = frozenset({QUEUED, PROCESSING})
TERMINAL_STATUSES: Final = frozenset({SUCCEEDED, FAILED})


def normalise_status(value: object) -> object:
    """``"SUCCEEDED"`` → ``"succeeded"``: statuses compare case-insensitively (see the module doc)."""
    return value.strip().lower() if isinstance(value, str) else value


def integral(value: object) -> object:
    """``8.0`` → ``8``; ``8.5`` and non-numbers are left for the field's own validation."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _none_as_empty(value: object) -> object:
    return [] if value is None else value


# The three reference kinds the docs name (§3.6), each the top-level type of its MIME types.
_KINDS = frozenset({"image", "video", "audio"})


def _kind_of(mime_type: str | None) -> str | None:
    family = (mime_type or "").partition("/")[0].strip().lower()
    return family if family in _KINDS else None


Status = Annotated[str, BeforeValidator(normalise_status)]
"""A task status, lower-cased."""
Number = Annotated[int | float, BeforeValidator(integral)]
"""A number the docs show as an integer; a float is accepted too."""


class _APIModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class TaskError(_APIModel):
    """Why a task failed (the task-level error: it has no request id)."""

    code: str | None = None
    """Machine-readable reason, e.g. ``generation_failed`` or ``content_moderated``."""
    message: str | None = None
    """Human-readable explanation from the API."""


class GenerationResult(_APIModel):
    """Where a succeeded task's output can be fetched."""

    primary_url: str | None = None
    """The first result URL."""
    urls: Annotated[list[str], BeforeValidator(_none_as_empty)] = Field(default_factory=list)
    """Every result URL, when the API lists them; empty when it sends null or nothing."""

    @property
    def all_urls(self) -> list[str]:
        """``urls``, or ``[primary_url]`` when only that was sent."""
        if self.urls:
            return list(self.urls)
        return [self.primary_url] if self.primary_url else []


class Generation(_APIModel):
    """A generation task, as returned by create and status calls."""

    id: str
    """Public task id, used to poll the task. Its shape is not documented (the examples show
    ``task_…``); nothing here depends on it."""
    status: Status
    """``queued``, ``processing``, ``succeeded`` or ``failed``, lower-cased; kept as a string so a
    new status does not break parsing (it is treated as not terminal)."""
    model: str | None = None
    """The model id the task runs on."""
    reserved_credits: Number | None = None
    """Credits held when the task was accepted."""
    final_credits: Number | None = None
    """Credits actually charged; 0 until the task finishes, and 0 for a failed task."""
    created_at: str | None = None
    """ISO-8601 creation time, as sent by the API."""
    updated_at: str | None = None
    """ISO-8601 time of the last status change, as sent by the API."""
    result: GenerationResult | None = None
    """Output URLs once the task has succeeded."""
    error: TaskError | None = None
    """Failure reason once the task has failed."""

    @property
    def is_terminal(self) -> bool:
        """True once the task has succeeded or failed; polling can stop."""
        return self.status in TERMINAL_STATUSES

    @property
    def result_url(self) -> str | None:
        """The URL to fetch a succeeded task's image from: ``primary_url``, else the first of ``urls``."""
        result = self.result
        if result is None:
            return None
        return result.primary_url or (result.urls[0] if result.urls else None)


class RivyaFile(_APIModel):
    """An uploaded reference file (the API's ``PublicApiFile``)."""

    id: str = Field(validation_alias=AliasChoices("id", "file_id"))
    """File id, whatever the API returned; the docs call it ``id`` in places and ``file_id`` in
    others, and never show one (so no shape is assumed)."""
    url: str
    """URL to pass in ``params.referenceMediaItems``."""
    kind: str | None = None
    """``image``, ``video`` or ``audio``."""
    name: str | None = None
    """File name as uploaded."""
    mime_type: str | None = Field(default=None, validation_alias=AliasChoices("mimeType", "mime_type"))
    """MIME type detected from the file's bytes."""
    size: Number | None = Field(
        default=None, validation_alias=AliasChoices("size", "bytes", "size_bytes", "sizeBytes", "file_size", "fileSize")
    )
    """Size in bytes; the field's name is not documented, so the usual spellings are all read."""
    created_at: str | None = None
    """ISO-8601 upload time."""
    duration_seconds: float | None = Field(
        default=None, validation_alias=AliasChoices("durationSeconds", "duration_seconds")
    )
    """Length of an audio or video file."""
    duration_token: str | None = Field(default=None, validation_alias=AliasChoices("durationToken", "duration_token"))
    """Proof of a verified duration, to copy into the reference item (audio and video only)."""

    def with_known(self, *, kind: str | None = None, mime_type: str | None = None) -> RivyaFile:
        """This file with ``kind`` and ``mime_type`` filled in from what we know, where the API's
        answer left them out (the file object's fields are not documented, §3.6). What the API did
        say is kept."""
        update: dict[str, Any] = {}
        if self.kind is None and kind is not None:
            update["kind"] = kind
        if self.mime_type is None and mime_type is not None:
            update["mime_type"] = mime_type
        return self.model_copy(update=update) if update else self

    def as_reference_item(self, *, kind: str | None = None, mime_type: str | None = None) -> dict[str, Any]:
        """This file as one entry of ``params.referenceMediaItems`` (the wire uses camelCase).

        ``kind`` is required in an item (rivya-api.md §3.2) but not known to be echoed by the
        Files API, so it is taken, in order, from the file object, from ``kind`` (what the caller
        uploaded it as), or from the family of its MIME type (``image/png`` → ``image``).
        ``mime_type`` likewise stands in for a type the file object does not state (e.g. the one
        the caller sniffed from the bytes).
        """
        item: dict[str, Any] = {"url": self.url}
        known_mime = self.mime_type or mime_type
        known_kind = self.kind or kind or _kind_of(known_mime)
        if known_kind is not None:
            item["kind"] = known_kind
        if self.name is not None:
            item["name"] = self.name
        if known_mime is not None:
            item["mimeType"] = known_mime
        if self.duration_seconds is not None:
            item["durationSeconds"] = self.duration_seconds
        if self.duration_token is not None:
            item["durationToken"] = self.duration_token
        return item


class Credits(_APIModel):
    """The account's credit balance (shared with Studio)."""

    current_credits: Number
    """Credits available now."""


class ModelInfo(_APIModel):
    """One entry of ``GET /api/v1/models``; the list also holds models not callable via the API.

    Read tolerantly (§3.1 shows one entry, the element shapes of its nested fields are unknown):
    a null where a list belongs is an empty list, a number written as a string is read as the
    number. An entry that still cannot be read is skipped by ``read_catalog``, not the whole list.
    """

    id: str
    """Model id to send as ``model`` when creating a generation."""
    display_name: str | None = None
    """Human-readable name."""
    category: str | None = None
    """``image``, ``video``, ``audio`` or ``chat``."""
    base_credits: Number | None = None
    """Credits one run costs at the base price."""
    billing_type: str | None = None
    """How the price is computed; ``FIXED`` is the only value seen."""
    supported_modes: Annotated[list[str], BeforeValidator(_none_as_empty)] = Field(default_factory=list)
    """Modes such as ``text-to-image``; a chat model may send null."""
    max_prompt_length: Annotated[int | None, BeforeValidator(integral)] = None
    """Longest accepted prompt, when there is a limit."""
    api_status: str | None = None
    """``available``, ``coming_soon`` or ``studio_only``."""
    api_input_status: str | None = None
    """Which inputs can be used through the API (``available_text``, ``requires_files_api``, …)."""
    requires_files_api: bool | None = None
    """Whether reference modes need files uploaded through ``/api/v1/files``."""
    file_kinds: Annotated[list[str], BeforeValidator(_none_as_empty)] = Field(default_factory=list)
    """Kinds of reference file the model accepts."""

    @property
    def not_callable_reason(self) -> str | None:
        """Why the model cannot be used through ``POST /api/v1/generations``, or None if it can.

        §3.1: ``available`` means at least one Public API generation path works; ``coming_soon``
        and ``studio_only`` mean none does. §3.2: chat models are refused there. An entry without
        ``api_status`` is not refused on that account (nothing says it is not callable).
        """
        if (self.category or "").lower() == "chat":
            return f"{self.id} is a chat model: the generations endpoint refuses chat models (use the Chat API)"
        status = (self.api_status or "").strip().lower()
        if not status or status == "available":
            return None
        meaning = {
            "coming_soon": "the Public API does not expose it yet",
            "studio_only": "it can be used in Rivya Studio but not through API v1",
        }.get(status, "the catalog does not call it available")
        return f"{self.id} is listed with api_status {self.api_status!r}: {meaning}"

    @property
    def is_callable(self) -> bool:
        """Whether a generation can be created with this model through the API (see ``not_callable_reason``)."""
        return self.not_callable_reason is None

    @property
    def max_upload_bytes(self) -> int | None:
        """The reference upload limit the entry states, in bytes, or None when it states none.

        The shape of ``reference_media`` is not documented (§3.1). A byte count is read from a
        positive number under one of ``UPLOAD_BYTES_KEYS``; failing that, megabytes under one of
        ``UPLOAD_MB_KEYS`` are read as N × 10**6 bytes: the docs write limits as "10 MB" without
        saying which megabyte (§3.6), and the smaller reading is the one no API refuses.
        """
        # Kept among the unknown fields (``model_extra``): its shape is not documented.
        media = (self.model_extra or {}).get("reference_media")
        if not isinstance(media, dict):
            return None
        for key in UPLOAD_BYTES_KEYS:
            value = _positive_number(media.get(key))
            if value is not None:
                return int(value)
        for key in UPLOAD_MB_KEYS:
            value = _positive_number(media.get(key))
            if value is not None:
                return int(value * 1_000_000)
        return None


# Names under which ``reference_media`` may state the upload limit (its shape is not documented).
UPLOAD_BYTES_KEYS = ("max_bytes", "max_size_bytes", "maxBytes", "max_file_size", "max_size")
UPLOAD_MB_KEYS = ("max_size_mb", "max_mb", "maxSizeMb", "max_file_size_mb")


def _positive_number(value: object) -> float | None:
    """A number the entry states (int or float on the wire, or a numeric string), or None."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return None


@dataclass(frozen=True)
class UnreadableEntry:
    """A catalog entry that could not be read: where it was, its id if it had one, and why."""

    index: int
    id: str | None
    problem: str


@dataclass(frozen=True)
class Catalog:
    """``GET /api/v1/models`` read entry by entry."""

    models: list[ModelInfo]
    """Every entry that could be read, in the API's order."""
    unreadable: list[UnreadableEntry]
    """Every entry that could not, with the reason (never fatal to the others)."""

    def find(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models if m.id == model_id), None)

    def unreadable_entry(self, model_id: str) -> UnreadableEntry | None:
        return next((u for u in self.unreadable if u.id == model_id), None)
