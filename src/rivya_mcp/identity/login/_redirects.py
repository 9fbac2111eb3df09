"""Which redirect URIs a client may register, and when a requested one matches (pure policy).

- ``https`` anywhere; ``http`` only on loopback (the MCP spec: "localhost or HTTPS"; a code sent
  in clear over a network could be read on the way);
- a native app's private-use scheme (``cursor://…``, ``com.example.app:/cb``; RFC 8252 §7.1), as
  OAuth 2.1 allows for native clients; never a scheme a browser would run or read locally
  (``javascript:``, ``data:``, ``file:``, …);
- never a fragment (RFC 6749 §3.1.2), never user info.

Matching is exact (the spec: "validate exact redirect URIs against pre-registered values"), except
that a loopback redirect may use any port (RFC 8252 §7.3): a native client binds whatever port is
free when it starts, and its metadata document cannot know it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback_redirect", "redirect_matches", "redirect_shown_as", "redirect_uri_problem"]

_REFUSED_SCHEMES = frozenset(
    {"javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss", "view-source"}
)


def _loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """None when ``uri`` may be registered; else what is wrong with it, for the client's error."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return f"redirect URI {uri!r} is not a valid URI"
    scheme = parts.scheme.lower()
    if not scheme:
        return f"redirect URI {uri!r} is not absolute"
    if "#" in uri:
        return f"redirect URI {uri!r} must not contain a fragment"
    if "@" in parts.netloc:
        return f"redirect URI {uri!r} must not carry user info"
    if scheme == "https":
        return None if host else f"redirect URI {uri!r} has no host"
    if scheme == "http":
        if _loopback_host(host):
            return None
        return f"redirect URI {uri!r} uses plain http off loopback; use https (or a loopback address)"
    if scheme in _REFUSED_SCHEMES:
        return f"redirect URI {uri!r} uses the {scheme}: scheme, which is not a redirect target"
    return None


def is_loopback_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme.lower() in ("http", "https") and _loopback_host(parts.hostname)


def redirect_matches(registered: str, requested: str) -> bool:
    """Exact, or the same loopback redirect on another port (RFC 8252 §7.3)."""
    if registered == requested:
        return True
    if not (is_loopback_redirect(registered) and is_loopback_redirect(requested)):
        return False
    a, b = urlsplit(registered), urlsplit(requested)
    return (a.scheme.lower(), (a.hostname or "").lower(), a.path, a.query) == (
        b.scheme.lower(),
        (b.hostname or "").lower(),
        b.path,
        b.query,
    )


def redirect_shown_as(uri: str) -> str:
    """What the consent page names as the destination: the host (and port), or the app's scheme."""
    parts = urlsplit(uri)
    if parts.scheme.lower() in ("http", "https"):
        return parts.netloc.rpartition("@")[2] or uri
    return f"the app that opens {parts.scheme}: links"
