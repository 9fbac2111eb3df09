"""Which identity mode the settings ask for, refused clearly when they can't work.

Both modes need ``--public-url``: the protected resource is ``{public_url}/mcp`` (RFC 8707, RFC
9728) and, for rivya-login, the public URL is also the authorization server's issuer. It must be
the origin only (no path): the well-known documents live at the host's root (RFC 8414 §3, RFC 9728
§3) and the MCP endpoint at ``/mcp``.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from rivya_mcp.settings import Settings

__all__ = ["IdentityConfigError", "IdentityMode", "identity_mode", "resource_url"]

IdentityMode = Literal["issuer", "rivya-login"]
MCP_PATH = "/mcp"


class IdentityConfigError(ValueError):
    """The identity settings can't work together; the message says what to change."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_public_url(public_url: str | None, flag: str) -> str:
    if not public_url:
        raise IdentityConfigError(
            f"{flag} needs --public-url (RIVYA_PUBLIC_URL): the URL clients reach this server at, e.g. "
            "https://mcp.example.com; the protected MCP endpoint is then https://mcp.example.com/mcp"
        )
    parts = urlsplit(public_url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise IdentityConfigError(f"--public-url {public_url!r} must be an https URL such as https://mcp.example.com")
    if parts.scheme == "http" and not _loopback(host):
        raise IdentityConfigError(
            f"--public-url {public_url!r} must use https: OAuth sends tokens and your people's Rivya keys through it "
            "(plain http only on loopback, for local tests)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise IdentityConfigError(
            f"--public-url {public_url!r} must be the origin only (scheme, host, optional port) with {flag}: the "
            "OAuth discovery documents live at the host's root. Serve rivya-mcp at the root of its own host name."
        )
    return public_url.rstrip("/")


def identity_mode(settings: Settings) -> IdentityMode | None:
    """The mode the settings select (None: no identity), or ``IdentityConfigError`` saying what to fix."""
    if settings.oauth_issuer and settings.rivya_login:
        raise IdentityConfigError(
            "--oauth-issuer and --rivya-login are two different set-ups; choose one "
            "(RIVYA_OAUTH_ISSUER or RIVYA_LOGIN=1, see docs/identity.md)"
        )
    mode: IdentityMode | None = "issuer" if settings.oauth_issuer else "rivya-login" if settings.rivya_login else None
    if mode is None:
        return None
    flag = "--oauth-issuer" if mode == "issuer" else "--rivya-login"
    _check_public_url(settings.public_url, flag)
    if settings.auth_token is not None:
        raise IdentityConfigError(
            f"--auth-token (RIVYA_MCP_AUTH_TOKEN) is one shared token for one person; with {flag} every person "
            "brings their own OAuth token. Unset the auth token."
        )
    if mode == "issuer" and bool(settings.oauth_client_id) != (settings.oauth_client_secret is not None):
        raise IdentityConfigError(
            "set both RIVYA_OAUTH_CLIENT_ID and RIVYA_OAUTH_CLIENT_SECRET (for introspecting opaque tokens), or neither"
        )
    return mode


def resource_url(settings: Settings) -> str:
    """``{public_url}/mcp``: the protected resource, the audience its tokens must name."""
    return _check_public_url(settings.public_url, "identity") + MCP_PATH
