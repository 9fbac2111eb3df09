"""Finding the team's authorization server: RFC 8414 metadata, or OpenID Connect discovery.

The well-known URLs are tried in the order the MCP authorization spec gives clients
(``authorization-server-discovery``): RFC 8414 with path insertion, OpenID Connect with path
insertion, OpenID Connect appended to the issuer's path. A 4xx means "not here, try the next";
anything else that fails stops discovery with the reason.

The document must name the issuer it was fetched for (RFC 8414 §3.3, OpenID Discovery §4.3). One
spelling difference is forgiven: a trailing slash (Auth0 and Okta issuers end with one, and an
operator writing the URL without it means the same server); the document's own spelling is then the
one ``iss`` claims are compared with, exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2

from rivya_mcp.identity.issuer._issuer_http import IssuerUnavailable, check_issuer_url, read_json

__all__ = ["IssuerMetadata", "discover_issuer", "metadata_urls", "same_issuer"]


@dataclass(frozen=True)
class IssuerMetadata:
    """What the resource server uses from an authorization server's metadata."""

    issuer: str
    jwks_uri: str | None
    introspection_endpoint: str | None
    introspection_auth_methods: tuple[str, ...]
    source: str  # the URL it was read from


def metadata_urls(issuer: str) -> list[str]:
    """The well-known URLs for ``issuer``, in the order the MCP spec tries them."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")

    def at(well_known_path: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, well_known_path, "", ""))

    if not path:
        return [at("/.well-known/oauth-authorization-server"), at("/.well-known/openid-configuration")]
    return [
        at(f"/.well-known/oauth-authorization-server{path}"),
        at(f"/.well-known/openid-configuration{path}"),
        at(f"{path}/.well-known/openid-configuration"),
    ]


def same_issuer(configured: str, advertised: str) -> bool:
    """Exactly equal, or equal but for one trailing slash (see the module docstring)."""
    return configured == advertised or configured.rstrip("/") == advertised.rstrip("/")


def _optional_url(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IssuerUnavailable(f"the issuer's metadata has a non-string {name}")
    check_issuer_url(value, what=name)
    return value


async def discover_issuer(client: httpx2.AsyncClient, issuer: str) -> IssuerMetadata:
    """The issuer's metadata, validated; ``IssuerUnavailable`` says what went wrong."""
    check_issuer_url(issuer, what="URL")
    tried: list[str] = []
    for url in metadata_urls(issuer):
        status, document = await read_json(client, url, what="metadata")
        if document is None:
            if 400 <= status < 500:
                tried.append(f"{url} ({status})")
                continue
            raise IssuerUnavailable(f"the issuer's metadata at {url} answered HTTP {status}")
        if not isinstance(document, dict):
            raise IssuerUnavailable(f"the issuer's metadata at {url} is not a JSON object")
        advertised = document.get("issuer")
        if not isinstance(advertised, str) or not same_issuer(issuer, advertised):
            raise IssuerUnavailable(
                f"the metadata at {url} names the issuer {advertised!r}, not {issuer!r}: refusing it "
                "(RFC 8414 §3.3); set RIVYA_OAUTH_ISSUER to the issuer exactly as the server names itself"
            )
        methods = document.get("introspection_endpoint_auth_methods_supported")
        return IssuerMetadata(
            issuer=advertised,
            jwks_uri=_optional_url(document, "jwks_uri"),
            introspection_endpoint=_optional_url(document, "introspection_endpoint"),
            introspection_auth_methods=tuple(m for m in methods if isinstance(m, str))
            if isinstance(methods, list)
            else (),
            source=url,
        )
    raise IssuerUnavailable(f"no authorization server metadata found for {issuer} (tried {', '.join(tried)})")
