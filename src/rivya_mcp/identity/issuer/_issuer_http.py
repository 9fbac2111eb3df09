"""Reading the team's authorization server: its metadata, its JWKS, its introspection endpoint.

Every read has a size cap and a deadline (the whole exchange, not each socket operation), and
follows no redirect: RFC 8414 metadata must name the issuer it was fetched for, a JWKS is read from
the URI the metadata gives, and a moved endpoint is a configuration to fix, not one to follow.

The SSRF rule here differs on purpose from the one for reference images and client metadata
documents (public addresses only, resolved and pinned): these URLs are never chosen by a caller.
The issuer is the operator's configuration and the other endpoints come from the issuer's own
metadata, validated against it; a token's ``jku``/``x5u`` headers are never fetched. The identity
provider of a team is often on its private network (Keycloak on the LAN, an IdP reached through a
VPN), so private and loopback addresses are allowed, and the environment's proxy settings apply
(the operator's network decides how the IdP is reached). Two limits stay: plain ``http`` only to
loopback (RFC 8414 and the MCP spec want TLS; loopback is a development IdP), and never a cloud
metadata address, whatever a name resolves to: a compromised or mistyped metadata document must not
turn the server into a reader of its instance credentials.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import anyio
import httpx2

from rivya_mcp.references import forbidden_address_reason

__all__ = ["IssuerUnavailable", "check_issuer_url", "read_json"]

MAX_METADATA_BYTES = 512 * 1024
DEADLINE_SECONDS = 10.0
_USER_AGENT = "rivya-mcp (oauth resource server)"


class IssuerUnavailable(Exception):
    """The authorization server could not be read, or answered something unusable (says which)."""


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str, *, what: str = "URL") -> httpx2.URL:
    """The URL if the rules above allow it; else ``IssuerUnavailable`` naming the rule."""
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError):
        raise IssuerUnavailable(f"the issuer's {what} {url!r} is not a valid URL") from None
    if parsed.scheme == "https" and parsed.host:
        return parsed
    if parsed.scheme == "http" and parsed.host and _is_loopback(parsed.host):
        return parsed
    raise IssuerUnavailable(f"the issuer's {what} {url!r} must use https (plain http only on loopback)")


async def _refuse_metadata_address(url: httpx2.URL) -> None:
    try:
        infos = await anyio.getaddrinfo(url.host, url.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise IssuerUnavailable(f"could not resolve {url.host!r}") from None
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if forbidden_address_reason(address) == "cloud metadata":
            raise IssuerUnavailable(f"{url.host} resolves to a cloud metadata address ({address}); refused")


async def read_json(
    client: httpx2.AsyncClient,
    url: str,
    *,
    what: str,
    form: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    max_bytes: int = MAX_METADATA_BYTES,
    deadline: float = DEADLINE_SECONDS,
) -> tuple[int, Any]:
    """(status, parsed JSON body or None) of a GET, or a POST of ``form``; raises ``IssuerUnavailable``.

    A non-2xx status is returned, not raised: discovery tries the next well-known URL on a 404.
    """
    target = check_issuer_url(url, what=what)
    try:
        with anyio.fail_after(deadline):
            await _refuse_metadata_address(target)
            request = client.build_request(
                "POST" if form is not None else "GET",
                target,
                data=dict(form) if form is not None else None,
                headers={"Accept": "application/json", "Accept-Encoding": "identity", "User-Agent": _USER_AGENT},
            )
            if auth is not None:
                request.headers["Authorization"] = basic_authorization(*auth)
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                body = await _read_capped(response, max_bytes, what)
            finally:
                await response.aclose()
    except TimeoutError:
        raise IssuerUnavailable(f"the issuer's {what} did not answer within {deadline:g} s") from None
    except httpx2.HTTPError as exc:
        raise IssuerUnavailable(f"could not reach the issuer's {what} ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        return response.status_code, None
    try:
        return response.status_code, json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise IssuerUnavailable(f"the issuer's {what} is not JSON") from None


def basic_authorization(client_id: str, secret: str) -> str:
    """HTTP Basic credentials of an OAuth client: each part form-encoded first (RFC 6749 §2.3.1)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


async def _read_capped(response: httpx2.Response, max_bytes: int, what: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise IssuerUnavailable(f"the issuer's {what} is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            raise IssuerUnavailable(f"the issuer's {what} is larger than {max_bytes} bytes")
    return bytes(body)
