"""What the server does to image bytes: previews and contact sheets, masks and compositing, provenance.

Pure functions, bytes in and bytes out, no I/O and no MCP: the server calls them from a worker
thread (each decodes or encodes images, so each blocks for milliseconds to tens of them).

- Previews: ``render_preview(data)`` (one image) and ``make_contact_sheet(images)`` (1-4
  candidates labelled 1..N), both under the same base64 budget (``MAX_PREVIEW_ENCODED_BYTES``).
- Region edits: ``image_size(reference)``, then ``mask_from_region(...)`` or
  ``mask_from_image(data, width=, height=)`` before anything is paid for, and
  ``composite(reference, edited, mask)`` on the model's output; ``closest_aspect_ratio`` picks
  the ``aspectRatio`` to ask for.
- Provenance: ``embed_provenance(data, Provenance(...))`` writes IPTC 2025.1 XMP into a JPEG,
  PNG or WebP without re-encoding it, or hands back a sidecar for a C2PA-signed file.

Every refusal of bad input is an ``ImagingError`` with a message fit for the agent. See
docs/provenance.md for what is written where.
"""

from rivya_mcp.imaging._composite import feathered
from rivya_mcp.imaging._contact_sheet import sheet_layout
from rivya_mcp.imaging._labels import GLYPHS
from rivya_mcp.imaging._xmp import NAMESPACES

from ._budget import (
    MAX_PREVIEW_ENCODED_BYTES,
    PREVIEW_LONGEST_SIDE,
    TARGET_PREVIEW_ENCODED_BYTES,
    Preview,
    base64_text,
    render_preview,
)
from ._composite import DEFAULT_FEATHER_PX, OutputFormat, closest_aspect_ratio, composite, image_size
from ._contact_sheet import MAX_SHEET_IMAGES, SHEET_LONGEST_SIDE, ContactSheet, Tile, make_contact_sheet
from ._embed import Placement, Stamped, carries_c2pa, embed_provenance, sidecar_path
from ._errors import ImagingError
from ._labels import LabelBox
from ._mask import Mask, mask_from_image, mask_from_region
from ._xmp import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    digital_source_type,
    xmp_packet,
)

__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "DEFAULT_FEATHER_PX",
    "GLYPHS",
    "MAX_PREVIEW_ENCODED_BYTES",
    "MAX_SHEET_IMAGES",
    "NAMESPACES",
    "PREVIEW_LONGEST_SIDE",
    "SHEET_LONGEST_SIDE",
    "TARGET_PREVIEW_ENCODED_BYTES",
    "TRAINED_ALGORITHMIC_MEDIA",
    "ContactSheet",
    "ImagingError",
    "LabelBox",
    "Mask",
    "OutputFormat",
    "Placement",
    "Preview",
    "Provenance",
    "Stamped",
    "Tile",
    "base64_text",
    "carries_c2pa",
    "closest_aspect_ratio",
    "composite",
    "digital_source_type",
    "embed_provenance",
    "feathered",
    "image_size",
    "make_contact_sheet",
    "mask_from_image",
    "mask_from_region",
    "render_preview",
    "sheet_layout",
    "sidecar_path",
    "xmp_packet",
]
