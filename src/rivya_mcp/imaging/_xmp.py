"""The provenance of a saved image as an XMP packet (IPTC Photo Metadata 2025.1).

What is written (docs/provenance.md has the table):

- ``Iptc4xmpExt:DigitalSourceType``: the IPTC NewsCodes URI, ``trainedAlgorithmicMedia`` for an
  image the model made, ``compositeWithTrainedAlgorithmicMedia`` for a region edit or an edit of
  a person's own picture (``digital_source_type`` decides).
- ``Iptc4xmpExt:AISystemUsed`` / ``Iptc4xmpExt:AISystemVersionUsed`` (new in 2025.1): "Rivya
  <model id>" and the model id. Rivya's API reports no model version beyond the id, and the id is
  what pins one (flux-kontext-pro and -max are two versions of Flux Kontext).
- ``Iptc4xmpExt:AIPromptInformation`` (2025.1): the prompt, only when the caller passes one (the
  server does when ``RIVYA_PROVENANCE_PROMPT=1``: prompts can be private).
- ``photoshop:TransmissionReference`` (IPTC "Job Id"): the Rivya task id.
- ``photoshop:DateCreated`` (IPTC "Date Created") and ``xmp:CreateDate``: when the task finished.
- ``xmp:CreatorTool``: rivya-mcp and its version.

``AIPromptWriterName`` is never written: it names a person, and the server doesn't know who they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from rivya_mcp import __version__

__all__ = [
    "COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA",
    "TRAINED_ALGORITHMIC_MEDIA",
    "Provenance",
    "digital_source_type",
    "xmp_packet",
]

_DIGITAL_SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA: Final = _DIGITAL_SOURCE_TYPES + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA: Final = _DIGITAL_SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"

NAMESPACES: Final = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
}
# Characters XML 1.0 cannot hold at all, escaped or not (controls but tab/newline/CR, surrogates,
# U+FFFE/U+FFFF): dropped from the text, since an XMP reader would reject the whole packet.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ELLIPSIS = "…"


def digital_source_type(*, edit: bool, region: bool = False, reference_generated: bool = False) -> str:
    """The IPTC digital source type of a result.

    A generation is ``trainedAlgorithmicMedia``. A region edit is a composite of the reference and
    the model's output. A whole-image edit of a person's own picture (a path, URL, data URI or
    uploaded file) is a composite with it too; one of an image the model made before
    (``reference_generated``: a previous task's result) is model-made throughout.
    """
    if region or (edit and not reference_generated):
        return COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    return TRAINED_ALGORITHMIC_MEDIA


@dataclass(frozen=True)
class Provenance:
    """What the XMP packet of one saved image says. ``created_at`` must carry a time zone."""

    task_id: str
    created_at: datetime
    model_id: str
    source_type: str = TRAINED_ALGORITHMIC_MEDIA
    prompt: str | None = None
    model_version: str | None = None
    creator_tool: str = field(default=f"rivya-mcp {__version__}")

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at needs a time zone (XMP dates carry one)")
        if not self.source_type.startswith(_DIGITAL_SOURCE_TYPES):
            raise ValueError(f"{self.source_type!r} is not an IPTC digital source type URI")

    @property
    def ai_system(self) -> str:
        return f"Rivya {self.model_id}"

    @property
    def ai_system_version(self) -> str:
        return self.model_version or self.model_id


def xmp_packet(provenance: Provenance, *, max_bytes: int | None = None) -> str:
    """The XMP packet (``<?xpacket …?>`` included) for ``provenance``; also a sidecar's whole text.

    With ``max_bytes`` (a JPEG segment holds ~64 KB), a prompt too long to fit is cut and ends
    with "…" (left out if not even its first character fits); ``ValueError`` if even the packet
    without a prompt is larger.
    """
    packet = _packet(provenance, provenance.prompt)
    if max_bytes is None or len(packet.encode()) <= max_bytes:
        return packet
    prompt = _clean(provenance.prompt or "")
    # The longest cut of the prompt that fits (escaping makes a character 1 to 6 bytes): a binary
    # search over its length, ~17 packets for the longest prompt a call takes.
    low, high = 0, len(prompt)
    while low < high:
        middle = (low + high + 1) // 2
        if len(_packet(provenance, prompt[:middle] + _ELLIPSIS).encode()) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    if low:
        return _packet(provenance, prompt[:low] + _ELLIPSIS)
    without = _packet(provenance, None)
    if len(without.encode()) <= max_bytes:
        return without
    raise ValueError(f"the XMP packet doesn't fit in {max_bytes} bytes even without the prompt")


def _packet(provenance: Provenance, prompt: str | None) -> str:
    when = _xmp_date(provenance.created_at)
    properties = [
        ("Iptc4xmpExt:DigitalSourceType", provenance.source_type),
        ("Iptc4xmpExt:AISystemUsed", provenance.ai_system),
        ("Iptc4xmpExt:AISystemVersionUsed", provenance.ai_system_version),
    ]
    if prompt is not None:
        properties.append(("Iptc4xmpExt:AIPromptInformation", prompt))
    properties += [
        ("photoshop:TransmissionReference", provenance.task_id),
        ("photoshop:DateCreated", when),
        ("xmp:CreateDate", when),
        ("xmp:CreatorTool", provenance.creator_tool),
    ]
    declarations = "".join(
        f'\n    xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items() if prefix not in ("x", "rdf")
    )
    body = "".join(f"\n   <{name}>{_escape(value)}</{name}>" for name, value in properties)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        f'<x:xmpmeta xmlns:x="{NAMESPACES["x"]}">\n'
        f' <rdf:RDF xmlns:rdf="{NAMESPACES["rdf"]}">\n'
        f'  <rdf:Description rdf:about=""{declarations}>{body}\n'
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def _xmp_date(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def _escape(text: str) -> str:
    # A bare CR would come back as LF from any XML parser (end-of-line handling): kept as a reference.
    return (
        _clean(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )
