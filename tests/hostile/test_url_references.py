"""URL references through the tools: the SSRF guard, redirects, the opt-in, and the trusted API host.

The "image host" is a loopback HTTP server that is not the sandbox; every test connects only to
127.0.0.0/8 (169.254.169.254 appears only as a redirect target that must never be contacted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from rivya_mcp.manifest import get_manifest
from rivya_mcp.references import ReferenceError, load_reference
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.server import build_server
from rivya_mcp.settings import Settings
from tests.hostile.conftest import ImageHost, billable, data_uri, hostile_settings, image_bytes

pytestmark = pytest.mark.anyio

TOOLS = ("edit_image", "upload_reference")


def _text(result: CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, TextContent))


def _arguments(tool: str, source: str) -> dict[str, Any]:
    if tool == "edit_image":
        return {"prompt": "make it night", "reference": source, "wait_seconds": 0}
    return {"source": source}


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client


async def call(client: Client, tool: str, source: str) -> CallToolResult:
    with anyio.fail_after(10):
        return await client.call_tool(tool, _arguments(tool, source))


def by_name(sandbox: RunningSandbox, tmp_path: Path, **changes: Any) -> Settings:
    """The sandbox reached as ``localhost``: the trusted API host is then the name, not 127.0.0.1."""
    port = urlsplit(sandbox.base_url).port
    return hostile_settings(sandbox, tmp_path, base_url=f"http://localhost:{port}", **changes)


def redirect(host: ImageHost, to: str, *, via: str = "127.0.0.1") -> str:
    return host.url("/redirect?to=" + quote(to, safe=""), host=via)


@pytest.mark.parametrize("tool", TOOLS)
async def test_loopback_url_is_refused_by_default(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path, tool: str
) -> None:
    before = billable(sandbox)
    async with connected(by_name(sandbox, tmp_path)) as client:
        result = await call(client, tool, image_host.url("/img.png"))
    text = _text(result)
    assert result.is_error and "loopback" in text and "RIVYA_ALLOW_PRIVATE_URLS" in text, text
    assert image_host.paths == []  # refused before connecting
    assert billable(sandbox) == before


@pytest.mark.parametrize("tool", TOOLS)
async def test_allow_private_urls_opens_loopback(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path, tool: str
) -> None:
    tasks, charges, files = billable(sandbox)
    async with connected(by_name(sandbox, tmp_path, allow_private_urls=True)) as client:
        result = await call(client, tool, image_host.url("/img.png"))
    assert not result.is_error, _text(result)
    assert image_host.paths == ["/img.png"]
    expected = (tasks + 1, charges + 1) if tool == "edit_image" else (tasks, charges)
    assert billable(sandbox) == (*expected, files + 1)


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{port}/img.png", "loopback"),
        ("http://[::ffff:127.0.0.1]:{port}/img.png", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
        ("http://10.1.2.3/img.png", "private"),
    ],
)
async def test_redirect_from_a_trusted_host_to_a_forbidden_address_is_refused(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path, tool: str, target: str, reason: str
) -> None:
    # The image host stands in for the trusted API origin (same host *and port*), so the first hop
    # is allowed; the redirect's target is checked again, as if it were the first URL. No API call
    # is made: the reference is refused before anything is uploaded.
    source = redirect(image_host, target.format(port=image_host.port), via="localhost")
    before = billable(sandbox)
    trusted = hostile_settings(sandbox, tmp_path, base_url=f"http://localhost:{image_host.port}")
    async with connected(trusted) as client:
        result = await call(client, tool, source)
    text = _text(result)
    assert result.is_error and reason in text, text
    assert image_host.paths == ["/redirect"]  # the forbidden target was never contacted
    assert billable(sandbox) == before


async def test_metadata_stays_closed_even_with_private_urls_allowed(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path
) -> None:
    source = redirect(image_host, "http://169.254.169.254/latest/meta-data/")
    async with connected(by_name(sandbox, tmp_path, allow_private_urls=True)) as client:
        result = await call(client, "upload_reference", source)
    assert result.is_error and "cloud metadata" in _text(result), _text(result)
    assert image_host.paths == ["/redirect"]


async def test_the_sandboxs_own_urls_are_accepted(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """The configured API's host is trusted: its file and result URLs work as references."""
    async with connected(hostile_settings(sandbox, tmp_path)) as client:
        uploaded = await client.call_tool("upload_reference", {"source": data_uri(image_bytes("PNG"))})
        assert not uploaded.is_error, _text(uploaded)
        assert uploaded.structured_content is not None
        file_url = uploaded.structured_content["file"]["url"]
        assert file_url.startswith(sandbox.base_url + "/_sandbox/media/")
        for tool in TOOLS:
            result = await call(client, tool, file_url)
            assert not result.is_error, _text(result)


async def test_another_service_on_the_api_host_is_not_trusted(
    sandbox: RunningSandbox, image_host: ImageHost, tmp_path: Path
) -> None:
    # The sandbox is on 127.0.0.1:<A>; the image host is another service on 127.0.0.1:<B>.
    async with connected(hostile_settings(sandbox, tmp_path)) as client:
        result = await call(client, "upload_reference", image_host.url("/img.png"))
    assert result.is_error and "loopback" in _text(result), _text(result)
    assert image_host.paths == []


async def test_trust_can_name_a_port(image_host: ImageHost) -> None:
    """The loader side of the fix: ``host:port`` trusts that service only, ``host`` any port."""
    policy = get_manifest("flux-kontext-max").upload
    url = image_host.url("/img.png")
    other_port = image_host.port + 1 if image_host.port < 65535 else image_host.port - 1
    with pytest.raises(ReferenceError) as refused:
        await load_reference(url, policy=policy, trusted_hosts=(f"127.0.0.1:{other_port}",))
    assert refused.value.reason == "forbidden_address"
    for trusted in (f"127.0.0.1:{image_host.port}", "127.0.0.1", f"LOCALHOST.:{image_host.port}"):
        source = url if "localhost" not in trusted.lower() else image_host.url("/img.png", host="localhost")
        loaded = await load_reference(source, policy=policy, trusted_hosts=(trusted,))
        assert loaded.mime_type == "image/png"
    with pytest.raises(ReferenceError):  # "::1" is a host, not "host :1"
        await load_reference(url, policy=policy, trusted_hosts=("::1",))
