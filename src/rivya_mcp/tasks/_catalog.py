"""The live model catalog (``GET /api/v1/models``) as a second opinion on the manifest's limits.

The manifest stays the only source of the parameter table and the offline default. Where the
catalog states a limit for the configured model (``max_prompt_length``, an upload size, base
credits), the stricter of the two applies, and a disagreement is logged once. The catalog is
public (rivya-api §3.1): it is read once per process when first needed, with a short timeout;
failing to read it is logged and costs nothing but the second opinion (it is tried again after
``CATALOG_RETRY_SECONDS``). Nothing waits for it at start-up.

It is read entry by entry (``client.read_catalog``): an entry nobody can read (a chat model's
``supported_modes: null``, a string where a number belongs) is skipped and logged once, and the
others still count. A model the catalog lists as not callable through the API (``api_status``
other than ``available``, a chat model) is refused before any upload or create
(``ModelNotCallableError``), saying why; one the catalog does not list, or lists unreadably, is
not refused on that account (the manifest's limits apply).

A prompt always has a hard cap, even where neither source states a limit: a 1 MB prompt would be
charged, journaled and carried in every ``list_tasks``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio

from rivya_mcp.client import AsyncRivyaClient, ModelInfo, ModelNotCallableError
from rivya_mcp.manifest import Manifest

log = logging.getLogger(__name__)

# Seconds the first tool call that needs the catalog waits for it (all retries included).
CATALOG_TIMEOUT_SECONDS = 3.0
# After a failed read the manifest alone applies for this long before the catalog is tried again.
CATALOG_RETRY_SECONDS = 600.0
# The longest prompt limit any Rivya image model documents (nano-banana-2, gpt-image-2: 20000,
# rivya-api §7.3). flux-kontext-max documents none; this bounds it all the same.
HARD_PROMPT_CAP = 20_000


@dataclass(frozen=True)
class Limits:
    """What a request for the configured model must stay within."""

    max_prompt_length: int
    max_upload_bytes: int
    base_credits: int


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
    # ``reference_media`` is undocumented (§3.1): the client reads a byte count, or "N MB" as N × 10⁶.
    stated_upload = entry.max_upload_bytes
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
        self._refusal: ModelNotCallableError | None = None
        self._read_at = 0.0
        self._lock = anyio.Lock()

    @property
    def current(self) -> Limits:
        """The limits known now, without a request (the manifest's until the catalog is read)."""
        return self._limits

    async def limits(self, client: AsyncRivyaClient) -> Limits:
        """The limits in force; reads the catalog first if it has not been read yet."""
        await self._ensure(client)
        return self._limits

    async def require_callable(self, client: AsyncRivyaClient) -> Limits:
        """The limits in force, after making sure the catalog does not list the model as not
        callable through the API; raises ``ModelNotCallableError`` (before anything is sent)."""
        await self._ensure(client)
        if self._refusal is not None:
            raise self._refusal
        return self._limits

    async def _ensure(self, client: AsyncRivyaClient) -> None:
        now = anyio.current_time()
        failed_lately = self._failed_at is not None and now - self._failed_at < CATALOG_RETRY_SECONDS
        # A refusal is looked at again now and then: the model may have become callable since.
        stale_refusal = self._refusal is not None and now - self._read_at >= CATALOG_RETRY_SECONDS
        if (self._read and not stale_refusal) or failed_lately:
            return
        async with self._lock:
            if not self._read or stale_refusal:
                await self._load(client)

    async def _load(self, client: AsyncRivyaClient) -> None:
        model_id = self.manifest.id
        try:
            catalog = await client.read_catalog(timeout=CATALOG_TIMEOUT_SECONDS)
        except Exception as exc:  # a timeout, an outage, a body we cannot read: never fatal
            self._failed_at = anyio.current_time()
            log.warning("model catalog unavailable (%s); the manifest's limits apply", type(exc).__name__)
            return
        self._refusal = None
        self._read_at = anyio.current_time()
        entry = catalog.find(model_id)
        if entry is None:
            unreadable = catalog.unreadable_entry(model_id)
            if unreadable is not None:
                log.warning("model catalog: the entry of %s cannot be read; the manifest's limits apply", model_id)
            else:
                log.warning("model catalog does not list %s; the manifest's limits apply", model_id)
        elif not entry.is_callable:
            reason = entry.not_callable_reason or "not callable"
            log.warning("model catalog: %s", reason)
            self._refusal = ModelNotCallableError(
                f"Rivya's model catalog lists {model_id} but not as callable through the API: {reason}. "
                "No request was sent and no credits were spent.",
                model_id=model_id,
                api_status=entry.api_status,
            )
        self._limits, notes = effective_limits(self.manifest, entry)
        for note in notes:
            log.warning("model catalog and manifest disagree for %s (%s); the stricter applies", model_id, note)
        self._read = True
