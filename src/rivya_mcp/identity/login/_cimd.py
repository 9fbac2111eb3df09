"""Client ID Metadata Documents (CIMD): a client whose ``client_id`` is the HTTPS URL of its metadata.

The document is fetched by the rules the server uses for reference images (``rivya_mcp.references``:
public addresses only, resolved and pinned so a second DNS answer can't move the connection, each
redirect re-checked, a size cap, a deadline). The URL is chosen by whoever starts a sign-in, so it
is the SSRF surface of the authorization server. Loopback and private addresses open only through an
explicit switch: ``RIVYA_ALLOW_PRIVATE_URLS`` (the operator's, which also opens them for references)
or ``trusted_hosts`` entries given in code (the tests serve their document on loopback).

Validation follows draft-ietf-oauth-client-id-metadata-document and the MCP spec: the document's
``client_id`` is the URL exactly; ``redirect_uris`` are present and allowed (``_redirects``); no
shared secret can exist (no ``client_secret``, and a ``client_secret_*`` auth method is refused);
this server authenticates such clients with ``none`` only (it does not take ``private_key_jwt``).
A copy is kept for as long as its ``Cache-Control: max-age`` says, within bounds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from rivya_mcp.identity.login._redirects import redirect_uri_problem
from rivya_mcp.references import ReferenceError, fetch_url

__all__ = ["ClientDocumentError", "ClientDocuments", "client_id_url_problem", "is_document_client_id", "parse_document"]

# The draft suggests 5 KB; a generous cap still far below anything worth amplifying.
MAX_DOCUMENT_BYTES = 16 * 1024
FETCH_SECONDS = 5.0
CACHE_MIN_SECONDS = 60
CACHE_DEFAULT_SECONDS = 3600
CACHE_MAX_SECONDS = 86_400
MAX_NAME_CHARS = 100
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)", re.IGNORECASE)
_GRANTS = frozenset({"authorization_code", "refresh_token"})
_REASONS = {
    "forbidden_address": "it is not on a public address",
    "too_large": f"it is larger than {MAX_DOCUMENT_BYTES} bytes",
    "timeout": "it did not arrive in time",
    "http_status": "its server did not answer 200",
    "dns": "its host does not resolve",
    "too_many_redirects": "it redirects too often",
    "compressed": "it came compressed",
}


class ClientDocumentError(Exception):
    """The document can't be used; the message says why (shown to the operator's log, not a person)."""


def is_document_client_id(client_id: str) -> bool:
    """A ``client_id`` that claims to be a document URL (a registered client's id is a UUID)."""
    return client_id.lower().startswith("https://")


def client_id_url_problem(client_id: str) -> str | None:
    """The draft's rules for the URL itself: https, a path, no fragment, no user info, no dot segments."""
    try:
        parts = urlsplit(client_id)
    except ValueError:
        return "not a URL"
    if parts.scheme != "https" or not parts.hostname:
        return "not an https URL"
    if parts.path in ("", "/"):
        return "has no path"
    if parts.fragment or "#" in client_id:
        return "has a fragment"
    if "@" in parts.netloc:
        return "carries user info"
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        return "has a dot segment in its path"
    return None


def cache_seconds(cache_control: str | None) -> int:
    """How long to keep a fetched document: its max-age within bounds, else the default."""
    if cache_control and "no-store" in cache_control.lower():
        return CACHE_MIN_SECONDS
    match = _MAX_AGE.search(cache_control or "")
    if match is None:
        return CACHE_DEFAULT_SECONDS
    return max(CACHE_MIN_SECONDS, min(CACHE_MAX_SECONDS, int(match.group(1))))


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientDocumentError(f"{name} must be a list of strings")
    return list(value)


def parse_document(url: str, data: bytes) -> dict[str, Any]:
    """The client's metadata as an ``OAuthClientInformationFull`` dict; ``ClientDocumentError`` if unusable."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ClientDocumentError("it is not JSON") from None
    if not isinstance(document, dict):
        raise ClientDocumentError("it is not a JSON object")
    if document.get("client_id") != url:
        raise ClientDocumentError("its client_id is not the document's URL")
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientDocumentError("it carries a client secret, which a public document can't keep")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise ClientDocumentError(f"token_endpoint_auth_method {method!r}: this server takes 'none' for documents")
    redirect_uris = _strings(document.get("redirect_uris"), "redirect_uris")
    if not redirect_uris:
        raise ClientDocumentError("it lists no redirect_uris")
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise ClientDocumentError(problem)
    grant_types = _strings(document.get("grant_types", ["authorization_code"]), "grant_types")
    if "authorization_code" not in grant_types:
        raise ClientDocumentError("its grant_types do not include authorization_code")
    response_types = _strings(document.get("response_types", ["code"]), "response_types")
    if "code" not in response_types:
        raise ClientDocumentError("its response_types do not include code")
    name = document.get("client_name")
    host = urlsplit(url).hostname or url
    metadata: dict[str, Any] = {
        "client_id": url,
        "client_name": name.strip()[:MAX_NAME_CHARS] if isinstance(name, str) and name.strip() else host,
        "redirect_uris": redirect_uris,
        "grant_types": [g for g in grant_types if g in _GRANTS],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    for optional in ("client_uri", "logo_uri", "tos_uri", "policy_uri"):
        value = document.get(optional)
        if isinstance(value, str) and value.startswith("https://"):
            metadata[optional] = value
    return metadata


@dataclass(frozen=True)
class FetchedDocument:
    metadata: dict[str, Any]
    max_age: int


class ClientDocuments:
    """Fetches client metadata documents by the SSRF rules above."""

    def __init__(
        self,
        *,
        allow_private_urls: bool = False,
        trusted_hosts: tuple[str, ...] = (),
        http_client: httpx2.AsyncClient | None = None,
        close_client: bool = False,
        timeout: float = FETCH_SECONDS,
    ) -> None:
        self._allow_private = allow_private_urls
        self._trusted = trusted_hosts
        self._http = http_client
        self._close_client = close_client
        self._timeout = timeout

    async def aclose(self) -> None:
        """Close the HTTP client if it was handed over (``close_client``); without one, each fetch has its own."""
        if self._http is not None and self._close_client:
            await self._http.aclose()

    async def fetch(self, url: str) -> FetchedDocument:
        problem = client_id_url_problem(url)
        if problem:
            raise ClientDocumentError(f"the client_id URL {problem}")
        try:
            fetched = await fetch_url(
                url,
                max_bytes=MAX_DOCUMENT_BYTES,
                allow_private_urls=self._allow_private,
                trusted_hosts=self._trusted,
                http_client=self._http,
                timeout=self._timeout,
                accept="application/json",
            )
        except ReferenceError as exc:
            raise ClientDocumentError(_REASONS.get(exc.reason, f"it could not be fetched ({exc.reason})")) from None
        return FetchedDocument(parse_document(url, fetched.data), cache_seconds(fetched.headers.get("cache-control")))
