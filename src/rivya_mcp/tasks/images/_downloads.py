"""A result image from its URL: where it may be fetched from, and whether it arrived whole.

A result URL comes from the upstream's answer or from a webhook delivery, so it is input, like
an agent's reference URL, and the same SSRF rules apply (``references.checked_route``, hop by
hop through ``client.download(route=...)``): no loopback, private or cloud metadata address,
unless the operator allows private URLs (never metadata), every redirect checked like the first
and each connection pinned to the address that was checked. One exception: the API's own origin
(scheme, host and port of ``RIVYA_BASE_URL``), which the server talks to anyway and where the
sandbox serves its results.

A body can end early without anything in the HTTP framing saying so (no ``Content-Length``, a
proxy or a dying server closing cleanly). An image is therefore saved only once its structure is
whole, by the same checks a reference passes before upload (PNG chunks and CRCs to IEND, JPEG
markers to EOI, the WebP RIFF container): until then nothing is saved or journaled as saved, and
the next ``get_task`` (or the recovery pass) downloads it again.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx2

from rivya_mcp.client import DownloadError, DownloadHop, DownloadRefusedError, DownloadRoute
from rivya_mcp.references import ReferenceError, check_jpeg, check_png, check_webp, checked_route, sniff_image_type

__all__ = ["Origin", "origin_of", "result_route", "whole_image_type"]

Origin = tuple[str, str, int]  # scheme, host, port

_DEFAULT_PORTS = {"http": 80, "https": 443}
# The whole-image check of each type the API returns (rivya-api: JPEG, PNG or WebP results).
_WHOLE: dict[str, Callable[[bytes], tuple[int, int]]] = {
    "image/png": check_png,
    "image/jpeg": check_jpeg,
    "image/webp": check_webp,
}


def origin_of(url: str | httpx2.URL) -> Origin:
    """(scheme, host, port) of a URL, the port spelled out (``https://a`` is ``https://a:443``)."""
    parsed = url if isinstance(url, httpx2.URL) else httpx2.URL(url)
    return parsed.scheme, parsed.host.lower().rstrip("."), parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 0)


def result_route(base_url: str, *, allow_private_urls: bool) -> DownloadRoute:
    """The route every result download takes: the reference loader's SSRF rules on each hop, the
    API's own origin (``base_url``'s scheme, host and port) excepted."""
    api = origin_of(base_url)

    async def route(url: httpx2.URL) -> DownloadHop:
        if origin_of(url) == api:
            return DownloadHop(url)
        try:
            checked = await checked_route(str(url), allow_private_urls=allow_private_urls, subject="the result URL")
        except ReferenceError as exc:
            if exc.reason == "dns":  # a name that does not resolve now may later: not a refusal
                raise DownloadError(f"{exc.message}", retryable=True) from None
            hint = (
                ""
                if allow_private_urls
                else " (an operator whose Rivya-compatible API serves results on a private network can set "
                "RIVYA_ALLOW_PRIVATE_URLS=1)"
            )
            raise DownloadRefusedError(
                f"{exc.message}; result images are fetched only from public addresses or from the API's own "
                f"origin{hint}"
            ) from None
        return DownloadHop(checked.url, checked.headers, checked.extensions)

    return route


async def whole_image_type(task_id: str, data: bytes) -> str:
    """The MIME type of a result image that is whole; ``DownloadError`` (retryable) otherwise.

    The structural checks run in a worker thread (a few ms for 10 MB).
    """
    mime = sniff_image_type(data)
    if mime is None:
        raise DownloadError(f"the result of task {task_id} is not a JPEG, PNG or WebP image")
    try:
        await anyio.to_thread.run_sync(_WHOLE[mime], data)
    except ReferenceError as exc:
        raise DownloadError(
            f"the image of task {task_id} arrived incomplete or damaged ({len(data)} bytes: "
            f"{exc.message.partition('; ')[0]}), "
            "so it was not saved; the next get_task downloads it again",
            retryable=True,
        ) from None
    return mime
