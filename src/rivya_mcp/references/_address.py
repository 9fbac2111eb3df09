"""Which IP addresses a reference URL may be fetched from (the SSRF guard's policy)."""

from __future__ import annotations

import ipaddress

__all__ = ["METADATA_ADDRESSES", "IPAddress", "forbidden_address_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance-metadata endpoints. Most already fall in a non-public range; they are listed
# so the message names them, and because Azure's wire server (168.63.129.16) is a public address.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server
    )
)

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def forbidden_address_reason(ip: IPAddress) -> str | None:
    """Why a reference must not be fetched from ``ip`` (``"loopback"``, ...), or ``None`` if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # ::ffff:127.0.0.1 and friends reach the IPv4 address they carry.
            reason = forbidden_address_reason(embedded)
            if reason is not None:
                return reason
            if ip.ipv4_mapped is not None:
                return None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata"
    checks = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        # Catches the rest of the special-purpose registry, e.g. 100.64.0.0/10 (carrier NAT).
        (not ip.is_global, "non-public"),
    )
    for flagged, reason in checks:
        if flagged:
            return reason
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
