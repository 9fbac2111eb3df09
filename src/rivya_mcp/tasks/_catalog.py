"""The live model catalog (``GET /api/v1/models``) as a second opinion on the manifest's limits.

The manifest stays the only source of the parameter table and the offline default. Where the
catalog states a limit for the configured model (``max_prompt_length``, an upload size, base
credits), the stricter of the two applies, and a disagreement is logged once. The catalog is
public (rivya-api §3.1): it is read once per process when first needed, with a short timeout;
failing to read it is logged and costs nothing but the second opinion (it is tried again after
``CATALOG_RETRY_SECONDS``). Nothing waits for it at start-up.

A prompt always has a hard cap, even where neither source states a limit: a 1 MB prompt would be
charged, journaled and carried in every ``list_tasks``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio

from rivya_mcp.client import AsyncRivyaClient, ModelInfo
from rivya_mcp.manifest import Manifest

log = logging.getLogger(__name__)

# Seconds the first tool call that needs the catalog waits for it (all retries included).
CATALOG_TIMEOUT_SECONDS = 3.0
# After a failed read the manifest alone applies for this long before the catalog is tried again.
CATALOG_RETRY_SECONDS = 600.0
# The longest prompt limit any Rivya image model documents (nano-banana-2, gpt-image-2: 20000,
# rivya-api §7.3). flux-kontext-max documents none; this bounds it all the same.
HARD_PROMPT_CAP = 20_000
# rivya-api §3.1 leaves the shape of `reference_media` undocumented ([UNKNOWN]). A byte count is
# read only from a number under one of these names; anything else is ignored, never guessed at.
UPLOAD_SIZE_KEYS = ("max_bytes", "max_size_bytes", "maxBytes", "max_file_size", "max_size")


@dataclass(frozen=True)
class Limits:
    """What a request for the configured model must stay within."""

    max_prompt_length: int
    max_upload_bytes: int
    base_credits: int


def _stated_upload_bytes(entry: ModelInfo) -> int | None:
    media: Any = (entry.model_extra or {}).get("reference_media")
    if not isinstance(media, dict):
        return None
    for key in UPLOAD_SIZE_KEYS:
        value = _positive_int(media.get(key))
        if value is not None:
            return value
    return None


def _positive_int(value: object) -> int | None:
    """A stated number (the docs show numbers; int or float on the wire), or None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return None


def effective_limits(manifest: Manifest, entry: ModelInfo | None) -> tuple[Limits, list[str]]:
    """The stricter of the manifest and the catalog entry, and each disagreement in words.

    Pure: ``entry`` None (catalog unread, or the model absent from it) means the manifest alone.
    """
    prompt = min(manifest.max_prompt_length or HARD_PROMPT_CAP, HARD_PROMPT_CAP)
    upload = manifest.upload.max_bytes
    credits = manifest.base_credits
    notes: list[str] = []
    if entry is None:
        return Limits(prompt, upload, credits), notes
    stated_prompt = _positive_int(entry.max_prompt_length)
    if stated_prompt is not None and stated_prompt != manifest.max_prompt_length:
        notes.append(f"max_prompt_length: manifest {manifest.max_prompt_length}, catalog {stated_prompt}")
        prompt = min(prompt, stated_prompt)
    stated_upload = _stated_upload_bytes(entry)
    if stated_upload is not None and stated_upload != upload:
        notes.append(f"upload size: manifest {upload} bytes, catalog {stated_upload} bytes")
        upload = min(upload, stated_upload)
    stated_credits = _positive_int(entry.base_credits)
    if stated_credits is not None and stated_credits != credits:
        # Stricter for a cost is higher: never tell the agent a task is cheaper than it may be.
        notes.append(f"base_credits: manifest {credits}, catalog {stated_credits}")
        credits = max(credits, stated_credits)
    return Limits(prompt, upload, credits), notes


class LiveCatalog:
    """The catalog entry of one model, read at most once per ``CATALOG_RETRY_SECONDS``."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._limits, _ = effective_limits(manifest, None)
        self._read = False
        self._failed_at: float | None = None
        self._lock = anyio.Lock()

    @property
    def current(self) -> Limits:
        """The limits known now, without a request (the manifest's until the catalog is read)."""
        return self._limits

    async def limits(self, client: AsyncRivyaClient) -> Limits:
        """The limits in force; reads the catalog first if it has not been read yet."""
        failed_lately = self._failed_at is not None and anyio.current_time() - self._failed_at < CATALOG_RETRY_SECONDS
        if self._read or failed_lately:
            return self._limits
        async with self._lock:
            if not self._read:
                await self._load(client)
        return self._limits

    async def _load(self, client: AsyncRivyaClient) -> None:
        entry: ModelInfo | None = None
        try:
            with anyio.fail_after(CATALOG_TIMEOUT_SECONDS):
                models = await client.list_models()
        except Exception as exc:  # a timeout, an outage, a body we cannot read: never fatal
            self._failed_at = anyio.current_time()
            log.warning("model catalog unavailable (%s); the manifest's limits apply", type(exc).__name__)
            return
        entry = next((m for m in models if m.id == self.manifest.id), None)
        if entry is None:
            log.warning("model catalog does not list %s; the manifest's limits apply", self.manifest.id)
        self._limits, notes = effective_limits(self.manifest, entry)
        for note in notes:
            log.warning("model catalog and manifest disagree for %s (%s); the stricter applies", self.manifest.id, note)
        self._read = True
