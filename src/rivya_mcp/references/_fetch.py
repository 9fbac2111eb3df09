"""Fetch a reference URL with size and time limits and an SSRF guard on every hop.

The guard itself (``checked_route``: where one request may connect, resolved and pinned to a
checked address) is public: result downloads (``tasks``) apply it to every hop of theirs too.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Collection
from dataclasses import dataclass, field

import anyio
import httpx2

from ._address import IPAddress, forbidden_address_reason
from ._errors import ReferenceError
from ._limits import CONNECT_TIMEOUT, MAX_REDIRECTS, READ_TIMEOUT, format_size

__all__ = ["FetchedURL", "Route", "checked_route", "fetch_url"]

logger = logging.getLogger("rivya_mcp.references")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Never forwarded to a reference host, even when the caller's client carries them by default.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_PRIVATE_HINT = (
    "references must be on the public internet. Upload the image with upload_reference from a "
    "local path instead, or ask the operator to set RIVYA_ALLOW_PRIVATE_URLS=1"
)


@dataclass(frozen=True)
class FetchedURL:
    data: bytes
    url: str  # the final URL, after redirects
    path: str  # its decoded path, for a file name
    # The final response's headers, lower-case names (Cache-Control for a client metadata document).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Where one hop actually connects: the URL to request (the checked address in place of the
    name) plus what keeps the name intact (the ``Host`` header, the TLS server name extension)."""

    url: httpx2.URL
    headers: dict[str, str]
    extensions: dict[str, str]


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    allow_private_urls: bool,
    trusted_hosts: Collection[str],
    http_client: httpx2.AsyncClient | None,
    timeout: float,
    accept: str = "image/*",
) -> FetchedURL:
    """GET ``url`` following at most ``MAX_REDIRECTS`` redirects, each checked like the first.

    Unless the host is trusted, the host name is resolved here, every address it resolves to must
    be public (or, with ``allow_private_urls``, at least not a cloud metadata address), and the
    request is sent to that checked address with the original Host header and TLS server name,
    so a second DNS answer can't point the connection somewhere else (DNS rebinding).

    A ``trusted_hosts`` entry is ``host`` (any port) or ``host:port`` (that port only). Prefer the
    latter: trusting ``127.0.0.1`` because the API (say, the sandbox) listens there would also
    trust every other service on loopback.

    ``accept`` is the ``Accept`` header (identity fetches a client's JSON metadata document with
    the same rules); the messages of a ``ReferenceError`` speak of a reference, its ``reason`` is
    the machine-readable part.
    """
    trusted = {_trust_entry(h) for h in trusted_hosts if h}
    client = http_client or httpx2.AsyncClient(
        timeout=httpx2.Timeout(min(READ_TIMEOUT, timeout), connect=min(CONNECT_TIMEOUT, timeout)),
        follow_redirects=False,
        # No proxies or .netrc credentials from the environment: the request goes where we checked.
        trust_env=False,
        headers={"User-Agent": "rivya-mcp (reference fetcher)"},
    )
    try:
        with anyio.fail_after(timeout):
            return await _follow(_parse(url), client, max_bytes, allow_private_urls, trusted, accept)
    except TimeoutError:
        raise ReferenceError(
            f"fetching the reference URL took longer than {timeout:g} s; try again, or download the "
            "image and pass it as a path",
            reason="timeout",
        ) from None
    except httpx2.TimeoutException:
        raise ReferenceError(
            "the reference URL's server didn't answer in time; try again later", reason="timeout"
        ) from None
    except httpx2.HTTPError as exc:
        raise ReferenceError(
            f"couldn't fetch the reference URL ({type(exc).__name__}: {exc}); check the URL", reason="fetch_failed"
        ) from None
    finally:
        if http_client is None:
            await client.aclose()


async def _follow(
    url: httpx2.URL,
    client: httpx2.AsyncClient,
    max_bytes: int,
    allow_private: bool,
    trusted: set[_Trusted],
    accept: str,
) -> FetchedURL:
    for _hop in range(MAX_REDIRECTS + 1):
        target = await _target(url, allow_private, trusted)
        request = client.build_request(
            "GET",
            target.url,
            # identity: a compressed body could expand far past max_bytes inside a single chunk.
            headers={**target.headers, "Accept": accept, "Accept-Encoding": "identity"},
            extensions=target.extensions,
        )
        for name in _CREDENTIAL_HEADERS:
            request.headers.pop(name, None)
        response = await client.send(request, stream=True, auth=None, follow_redirects=False)
        try:
            location = response.headers.get("location")
            if response.status_code in _REDIRECTS and location:
                url = _parse(str(url.join(location)), redirected=True)
                logger.info("reference URL redirects to %s", url.copy_with(query=None))
                continue
            if response.status_code != 200:
                raise ReferenceError(
                    f"the reference URL answered HTTP {response.status_code}; check that it points at an "
                    "image that is publicly readable",
                    reason="http_status",
                )
            data = await _read_body(response, max_bytes)
            headers = {name.lower(): value for name, value in response.headers.items()}
            return FetchedURL(data=data, url=str(url), path=url.path, headers=headers)
        finally:
            await response.aclose()
    raise ReferenceError(
        f"the reference URL redirects more than {MAX_REDIRECTS} times; pass the image's final URL",
        reason="too_many_redirects",
    )


def _parse(text: str, *, redirected: bool = False, subject: str = "") -> httpx2.URL:
    where = "redirected to" if redirected else subject or "the reference URL"
    try:
        url = httpx2.URL(text)
    except (httpx2.InvalidURL, ValueError):
        raise ReferenceError(f"{where} {text!r} is not a valid URL", reason="bad_url") from None
    if url.scheme not in ("http", "https"):
        raise ReferenceError(
            f"{where} uses {url.scheme or 'no'} scheme; only http and https are fetched", reason="unsupported_scheme"
        )
    if not url.host:
        raise ReferenceError(f"{where} {text!r} has no host", reason="bad_url")
    if url.userinfo:
        if subject:
            raise ReferenceError(f"{subject} carries a user name or password, which is never sent", reason="bad_url")
        raise ReferenceError(
            "reference URLs can't carry a user name or password; use a pre-signed or public URL, "
            "or upload the file from a local path",
            reason="bad_url",
        )
    return url


def _normal_host(host: str) -> str:
    return host.strip().lower().strip("[]").rstrip(".")


# (host, port); a port of None trusts every port of the host.
_Trusted = tuple[str, int | None]


def _trust_entry(entry: str) -> _Trusted:
    text = entry.strip()
    host, colon, port = text.rpartition(":")
    # "::1" alone is an IPv6 host, not "host :1"; a port on an IPv6 host needs brackets.
    if colon and port.isdigit() and (host.endswith("]") or ":" not in host):
        return _normal_host(host), int(port)
    return _normal_host(text), None


def _is_trusted(url: httpx2.URL, trusted: set[_Trusted]) -> bool:
    port = url.port or (443 if url.scheme == "https" else 80)
    names = {_normal_host(url.host), _normal_host(url.raw_host.decode("ascii"))}
    return any((name, None) in trusted or (name, port) in trusted for name in names)


async def checked_route(
    url: str, *, allow_private_urls: bool, trusted_hosts: Collection[str] = (), subject: str = ""
) -> Route:
    """Where one GET of ``url`` may connect, by the rules ``fetch_url`` applies to every hop.

    An http(s) URL without user info; unless its host is trusted (``trusted_hosts``, as in
    ``fetch_url``), every address the host resolves to must be public (with
    ``allow_private_urls``, at least not cloud metadata), and the route is pinned to the first.
    A caller following redirects itself calls this for every hop. Raises ``ReferenceError``
    (``reason``: ``bad_url``, ``unsupported_scheme``, ``dns``, ``forbidden_address``); ``subject``
    names the URL in its messages for a caller that is not fetching a reference ("the result URL").
    """
    trusted = {_trust_entry(h) for h in trusted_hosts if h}
    return await _target(_parse(url, subject=subject), allow_private_urls, trusted, subject=subject)


async def _target(url: httpx2.URL, allow_private: bool, trusted: set[_Trusted], *, subject: str = "") -> Route:
    host = url.raw_host.decode("ascii")
    if _is_trusted(url, trusted):
        return Route(url=url, headers={}, extensions={})
    literal = _ip_literal(host)
    if literal is not None:
        _refuse_if_forbidden(literal, host, allow_private, subject=subject)
        return Route(url=url, headers={}, extensions={})
    addresses = await _resolve(host, url.port or (443 if url.scheme == "https" else 80))
    for address in addresses:
        _refuse_if_forbidden(address, host, allow_private, subject=subject)
    pinned = addresses[0]
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return Route(
        url=url.copy_with(host=str(pinned)), headers={"Host": url.netloc.decode("ascii")}, extensions=extensions
    )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ReferenceError(f"couldn't resolve the host {host!r}; check the URL", reason="dns") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ReferenceError(f"the host {host!r} has no addresses; check the URL", reason="dns")
    return addresses


def _refuse_if_forbidden(address: IPAddress, host: str, allow_private: bool, *, subject: str = "") -> None:
    reason = forbidden_address_reason(address)
    # RIVYA_ALLOW_PRIVATE_URLS opens the LAN and loopback, never the cloud metadata service.
    if reason is None or (allow_private and reason != "cloud metadata"):
        return
    shown = host if host == str(address) else f"{host} ({address})"
    if subject:
        logger.warning("refused %s on a %s address: %s", subject, reason, shown)
        raise ReferenceError(f"{subject} points at {shown}, a {reason} address", reason="forbidden_address")
    logger.warning("refused a reference URL on a %s address: %s", reason, shown)
    raise ReferenceError(
        f"the reference URL points at {shown}, a {reason} address; {_PRIVATE_HINT}", reason="forbidden_address"
    )


async def _read_body(response: httpx2.Response, max_bytes: int) -> bytes:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ReferenceError(
            f"the reference URL sent a {encoding}-compressed body, which isn't accepted; link to the image file itself",
            reason="compressed",
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ReferenceError(
            f"reference is {format_size(int(declared))}; the limit is {format_size(max_bytes)}. "
            "Resize or recompress it and try again",
            reason="too_large",
        )
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            # Stop reading here: the rest of the body is never downloaded.
            raise ReferenceError(
                f"reference is larger than the {format_size(max_bytes)} limit; resize or recompress it and try again",
                reason="too_large",
            )
    return bytes(body)
