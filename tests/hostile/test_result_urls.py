"""Result URLs are input too: the reference loader's SSRF rules on every hop of a result download.

The upstream (the sandbox, steered by a ``merge`` fault) names a result URL on a loopback "image
host" that is not the API; the API's own origin (the sandbox, where it serves its results) is the
one exception. Every test connects only to 127.0.0.0/8: 169.254.169.254 is named, never contacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.client import AsyncRivyaClient, DownloadError, DownloadRefusedError
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import MAX_RESULT_BYTES, result_route
from tests._image_host import is_saved_whole
from tests.hostile.conftest import ImageHost, hostile_settings, image_bytes

pytestmark = pytest.mark.anyio

POLL = {"path": "/api/v1/generations/", "method": "GET"}


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


@pytest.fixture
def faults(sandbox: RunningSandbox) -> Iterator[None]:
    yield
    httpx2.delete(f"{sandbox.base_url}/_sandbox/faults", timeout=5).raise_for_status()


def _results_at(sandbox: RunningSandbox, url: str) -> None:
    """From now on every status answer names ``url`` as the task's result (rivya-api: ``result.urls``)."""
    rule = {**POLL, "phase": "after", "merge": {"result": {"primary_url": url, "urls": [url]}}}
    httpx2.post(f"{sandbox.base_url}/_sandbox/faults", json={"rules": [rule]}, timeout=5).raise_for_status()


async def _generate(settings: Settings, prompt: str) -> CallToolResult:
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(30):
            return await client.call_tool("generate_image", {"prompt": prompt, "wait_seconds": 10})


async def _get_task(settings: Settings, task_id: str) -> CallToolResult:
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(30):
            return await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10})


@pytest.mark.usefixtures("faults")
async def test_a_result_url_on_loopback_is_refused_unfetched_and_the_opt_in_fetches_it(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path
) -> None:
    _results_at(sandbox, image_host.url("/img.png"))
    refused = await _generate(hostile_settings(sandbox, tmp_path), "a result on someone else's loopback")
    text = _text(refused)
    assert refused.is_error and "result_url_refused" in text and "internal_error" not in text, text
    assert "loopback" in text and "127.0.0.1" in text and "will not help" in text
    assert image_host.paths == []  # nothing was sent there
    structured = refused.structured_content or {}
    task_id = structured.get("task_id") or text.split('task_id="')[1].split('"')[0]

    # The operator's opt-in (RIVYA_ALLOW_PRIVATE_URLS) opens loopback, as it does for references.
    opened = await _get_task(hostile_settings(sandbox, tmp_path, allow_private_urls=True), task_id)
    assert not opened.is_error, _text(opened)
    saved = Path((opened.structured_content or {})["saved_path"])
    assert is_saved_whole(saved.read_bytes(), image_bytes("PNG"), task_id) and image_host.paths == ["/img.png"]


@pytest.mark.usefixtures("faults")
async def test_a_result_url_on_the_metadata_address_is_refused_even_with_the_opt_in(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    _results_at(sandbox, "http://169.254.169.254/latest/meta-data/")
    settings = hostile_settings(sandbox, tmp_path, allow_private_urls=True)
    refused = await _generate(settings, "a result on the metadata service")
    text = _text(refused)
    assert refused.is_error and "result_url_refused" in text and "cloud metadata" in text, text


@pytest.mark.usefixtures("faults")
async def test_a_redirect_loop_is_a_result_that_says_so(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path
) -> None:
    _results_at(sandbox, image_host.url("/loop"))
    settings = hostile_settings(sandbox, tmp_path, allow_private_urls=True)
    looped = await _generate(settings, "a result that redirects to itself")
    text = _text(looped)
    assert looped.is_error and "download_failed" in text and "redirects in a loop" in text, text
    assert "internal_error" not in text
    assert image_host.paths == ["/loop"]  # one request: the loop is named when the URL comes round


async def test_the_apis_own_origin_is_fetched_and_its_redirects_are_checked_hop_by_hop(
    image_host: ImageHost, other_image_host: ImageHost
) -> None:
    """With the image host as the API's origin (as the sandbox is), its URLs are fetched, a redirect
    within it too, and a redirect to any other loopback service is refused before a request leaves."""
    route = result_route(image_host.url(""), allow_private_urls=False)
    async with AsyncRivyaClient(api_key="rvya_sk_unused", base_url=image_host.url("")) as client:
        direct = await client.download(image_host.url("/img.png"), max_bytes=MAX_RESULT_BYTES, route=route)
        inside = await client.download(_redirect(image_host, "/img.png"), max_bytes=MAX_RESULT_BYTES, route=route)
        assert direct == inside == image_bytes("PNG")

        for elsewhere in (other_image_host.url("/img.png"), "http://169.254.169.254/latest/meta-data/"):
            with pytest.raises(DownloadRefusedError) as caught:
                await client.download(_redirect(image_host, elsewhere), max_bytes=MAX_RESULT_BYTES, route=route)
            assert "result URL points at" in str(caught.value) and not caught.value.retryable
        with pytest.raises(DownloadRefusedError):
            await client.download(_redirect(image_host, "file:///etc/passwd"), max_bytes=MAX_RESULT_BYTES, route=route)
        # The same origin on another scheme or port is not the API's.
        with pytest.raises(DownloadRefusedError):
            await client.download(other_image_host.url("/img.png"), max_bytes=MAX_RESULT_BYTES, route=route)
    assert other_image_host.paths == []


async def test_without_a_route_the_client_still_names_a_redirect_loop(image_host: ImageHost) -> None:
    async with AsyncRivyaClient(api_key="rvya_sk_unused", base_url=image_host.url("")) as client:
        with pytest.raises(DownloadError) as caught:
            await client.download(image_host.url("/loop"), max_bytes=1024)
    assert "redirects in a loop" in str(caught.value) and not caught.value.retryable
    assert image_host.paths == ["/loop"]


def _redirect(host: ImageHost, to: str) -> str:
    return host.url("/redirect?to=" + quote(to, safe=""))
