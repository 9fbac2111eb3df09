"""Read an XMP packet back with the standard library's XML parser (independent of our writer)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rivya_mcp.imaging import NAMESPACES

RDF = NAMESPACES["rdf"]


def properties(packet: str | bytes) -> dict[str, str]:
    """The simple properties of every rdf:Description, as {"prefix:Name": text}."""
    text = packet.decode() if isinstance(packet, bytes) else packet
    # ElementTree doesn't take processing instructions outside the root: cut the xpacket wrapper.
    start, end = text.index("<x:xmpmeta"), text.index("</x:xmpmeta>") + len("</x:xmpmeta>")
    root = ET.fromstring(text[start:end])
    prefixes = {uri: prefix for prefix, uri in NAMESPACES.items()}
    found: dict[str, str] = {}
    for description in root.iter(f"{{{RDF}}}Description"):
        for child in description:
            uri, _, name = child.tag[1:].partition("}")
            found[f"{prefixes.get(uri, uri)}:{name}"] = child.text or ""
    return found
