"""Region edits: ``edit_image`` with a ``mask`` or a ``region``, checked before any credit is spent.

Kontext takes one reference and no mask, and redraws the whole image. The server keeps only the
masked part of its output: this module reads the reference's bytes and the mask (or makes one from
the rectangle) and refuses what cannot be meant (a region outside the picture, an all-black mask,
both at once) before anything is uploaded or paid. The tasks layer composites each result when it
is saved (``tasks.finish``), from what ``record`` keeps in the journal before the create is sent,
so a result saved after a restart, by a webhook or by another replica is composited too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.imaging import (
    DEFAULT_FEATHER_PX,
    ImagingError,
    Mask,
    closest_aspect_ratio,
    image_size,
    mask_from_image,
    mask_from_region,
)
from rivya_mcp.manifest import Manifest
from rivya_mcp.references import LoadedReference
from rivya_mcp.references import ReferenceError as ReferenceLoadError
from rivya_mcp.server._errors import ToolInputError
from rivya_mcp.server._references import References
from rivya_mcp.server._schemas import MASK, REGION
from rivya_mcp.tasks import Ledger

__all__ = ["ASPECT_RATIO_KEY", "OUTPUT_FORMAT_KEY", "RegionEdit", "prepare_region_edit", "wants_region"]

# The manifest's parameters a region edit reads (tool arguments keep the table's keys).
ASPECT_RATIO_KEY = "aspectRatio"
OUTPUT_FORMAT_KEY = "outputFormat"

_HOW = (
    "Give mask (white may change, black is kept) or region ({x, y, width, height} in the reference's own "
    "pixels), not both; see edit_image's input schema."
)


@dataclass(frozen=True)
class RegionEdit:
    """A checked region edit: the reference (its bytes, and the load to upload when it was a path,
    URL or data URI), the mask at the reference's size, and how the composite is made."""

    reference: bytes = dataclasses.field(repr=False)
    loaded: LoadedReference | None
    mask: Mask = dataclasses.field(repr=False)
    output_format: str
    feather_px: int = DEFAULT_FEATHER_PX

    @property
    def width(self) -> int:
        return self.mask.width

    @property
    def height(self) -> int:
        return self.mask.height

    async def record(self, ledger: Ledger, idempotency_key: str) -> None:
        """Keep what the result is composited with, before the create under ``idempotency_key`` leaves."""
        mask_png = await anyio.to_thread.run_sync(self.mask.to_png)
        await ledger.record_composition(
            idempotency_key,
            reference=self.reference,
            mask=mask_png,
            feather_px=self.feather_px,
            output_format=self.output_format,
        )


def wants_region(control: Mapping[str, Any]) -> bool:
    return MASK in control or REGION in control


async def prepare_region_edit(
    manifest: Manifest,
    references: References,
    reference: str,
    control: Mapping[str, Any],
    args: dict[str, Any],
    client: AsyncRivyaClient,
    ledger: Ledger,
    *,
    ready: Callable[[], Awaitable[None]],
) -> RegionEdit:
    """The region edit a call asks for, checked; sets ``args[aspectRatio]`` from the reference when
    the call gave none (the composite is the reference's size, so its shape is what to ask for).

    Raises ``ToolInputError`` (nothing sent, nothing spent) for what cannot be meant.
    """
    if MASK in control and REGION in control:
        raise ToolInputError("Both mask and region were given; a region edit takes one of them.", _HOW)
    await ready()  # the live prompt limit, before anything is read from the API
    data, loaded = await references.image_of(reference, client, ledger)
    try:
        width, height = await anyio.to_thread.run_sync(image_size, data)
    except ImagingError as exc:
        raise ToolInputError(f"The reference image cannot be used for a region edit: {exc}.", _HOW) from None
    if REGION in control:
        box = control[REGION]
        try:
            mask = mask_from_region(width, height, box["x"], box["y"], box["width"], box["height"])
        except ImagingError as exc:
            raise ToolInputError(f"The region cannot be used: {exc}.", _HOW) from None
    else:
        try:
            mask_data, _ = await references.image_of(str(control[MASK]), client, ledger, what="mask")
        except ReferenceLoadError as exc:
            raise ToolInputError(f"The mask image cannot be used: {exc}.", _HOW) from None
        try:
            mask = await anyio.to_thread.run_sync(lambda: mask_from_image(mask_data, width=width, height=height))
        except ImagingError as exc:
            raise ToolInputError(f"The mask cannot be used: {exc}.", _HOW) from None
    params = {p.key: p for p in manifest.params_for("edit")}
    ratio = params.get(ASPECT_RATIO_KEY)
    if ASPECT_RATIO_KEY not in args and ratio is not None and ratio.options:
        args[ASPECT_RATIO_KEY] = closest_aspect_ratio(width, height, list(ratio.options))
    fmt = params.get(OUTPUT_FORMAT_KEY)
    output_format = str(args.get(OUTPUT_FORMAT_KEY, fmt.default if fmt is not None else "png") or "png")
    return RegionEdit(reference=data, loaded=loaded, mask=mask, output_format=output_format)
