"""What is done to a finished image before it is saved: a region edit's composite, then provenance.

Every save of a task's image comes through :func:`finish` (from ``TaskService._save_held``),
whoever saves it: the tool call, ``get_task``, the recovery pass after a restart, a webhook
delivery, the MCP Tasks extension's follow-up. So every saved file gets the same treatment:

- **A region edit** (the journal keeps a composition for the task's idempotency key, recorded
  before its create was sent): the model's output is pasted onto the reference inside the mask
  only, with a short inward feather, at the reference's own size (``imaging.composite``).
- **Provenance**: an IPTC 2025.1 XMP packet (digital source type, AI system, task id, time; the
  prompt only with ``RIVYA_PROVENANCE_PROMPT=1``) is embedded without re-encoding the pixels, or,
  when the download carries a C2PA manifest, the bytes are kept exactly and the packet becomes a
  ``<name>.xmp`` sidecar (``imaging.embed_provenance``; docs/provenance.md).

Deterministic: the same download and the same journal entry give the same bytes (the time written
is the task's own, from the journal, never "now"), so a second save (another replica, a deleted
file saved again) writes an identical file. The image work blocks, so it runs in a worker thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio

from rivya_mcp.client import Generation
from rivya_mcp.imaging import (
    Provenance,
    composite,
    digital_source_type,
    embed_provenance,
    image_size,
    mask_from_image,
)
from rivya_mcp.journal import Composition, JournalEntry
from rivya_mcp.references import sniff_image_type
from rivya_mcp.tasks._ledger import Ledger

log = logging.getLogger(__name__)

__all__ = ["Finished", "finish", "finish_bytes", "provenance_time"]

# What a composite may be encoded as (the manifest's outputFormat options); anything else is PNG.
_COMPOSITE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}


@dataclass(frozen=True)
class Finished:
    """The bytes to save (``mime_type``), and the XMP text for a sidecar when it could not go inside."""

    data: bytes
    mime_type: str
    sidecar: str | None
    placement: str
    composited: bool
    reason: str = ""


def provenance_time(entry: JournalEntry | None, generation: Generation) -> datetime:
    """The task's own time for its provenance: when Rivya answered its create, as the journal
    recorded it (stable across saves); the API's ``created_at`` for a task the journal doesn't know."""
    if entry is not None:
        return entry.submitted_at or entry.created_at
    if generation.created_at:
        try:
            parsed = datetime.fromisoformat(generation.created_at.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
    # Neither: a task created elsewhere whose time the API did not send readably.
    return datetime.now(UTC).replace(microsecond=0)


def finish_bytes(data: bytes, provenance: Provenance, composition: Composition | None) -> Finished:
    """The pure, blocking part of :func:`finish` (run it in a worker thread)."""
    composited = False
    if composition is not None:
        width, height = image_size(composition.reference)
        mask = mask_from_image(composition.mask, width=width, height=height)
        output = _COMPOSITE_FORMATS.get(composition.output_format.lower(), "png")
        data = composite(
            composition.reference,
            data,
            mask,
            feather_px=composition.feather_px,
            output_format="jpeg" if output == "jpeg" else "png",
        )
        composited = True
    stamped = embed_provenance(data, provenance)
    mime = sniff_image_type(stamped.data)
    if mime is None:  # embedding keeps the container's signature; only a bug could get here
        raise ValueError("the finished image is not a JPEG, PNG or WebP")
    return Finished(stamped.data, mime, stamped.sidecar, stamped.placement, composited, stamped.reason)


async def finish(
    ledger: Ledger, settings: Any, generation: Generation, entry: JournalEntry | None, data: bytes
) -> Finished:
    """``data`` (a succeeded task's download) as it is to be saved: composited if the task is a
    region edit, with its provenance inside or beside it."""
    composition = await ledger.composition(entry.idempotency_key) if entry is not None else None
    edit = entry is not None and entry.mode == "edit"
    # An edit of an earlier result of ours is model-made throughout; one of the person's own
    # picture (a path, URL, data URI, file id) is a composite with it (docs/provenance.md).
    reference_generated = bool(edit and entry and entry.reference and await ledger.get(entry.reference))
    provenance = Provenance(
        task_id=generation.id,
        created_at=provenance_time(entry, generation),
        model_id=(entry.model if entry else None) or generation.model or str(settings.model),
        source_type=digital_source_type(
            edit=edit, region=composition is not None, reference_generated=reference_generated
        ),
        prompt=(entry.prompt or None) if entry is not None and settings.provenance_prompt else None,
    )
    finished = await anyio.to_thread.run_sync(partial(finish_bytes, data, provenance, composition))
    if finished.placement == "sidecar":
        log.info("task %s: provenance goes to a sidecar: %s", generation.id, finished.reason)
    return finished
