"""Client ID Metadata Documents: fetched by the references' SSRF rules, validated, cached.

The document host is a real HTTPS server on loopback; the server under test reaches it only
through the explicit switch (a trusted ``host:port``), and refuses it without.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rivya_mcp.identity import (
    CACHE_DEFAULT_SECONDS,
    CACHE_MAX_SECONDS,
    CACHE_MIN_SECONDS,
    MAX_DOCUMENT_BYTES,
    ClientDocumentError,
    ClientDocuments,
    KeyBox,
    LoginOptions,
    MemoryIdentityStore,
    RivyaLoginProvider,
    cache_seconds,
    client_id_url_problem,
)
from tests.identity._login import CALLBACK, SECRET_KEY, DocumentHost

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://app.example/oauth/client.json", None),
        ("https://app.example:8443/c?v=1", None),
        ("http://app.example/client.json", "not an https URL"),
        ("https://app.example", "has no path"),
        ("https://app.example/", "has no path"),
        ("https://app.example/c#frag", "has a fragment"),
        ("https://user@app.example/c", "carries user info"),
        ("https://app.example/a/../c", "has a dot segment in its path"),
        ("https://app.example/./c", "has a dot segment in its path"),
    ],
)
def test_client_id_urls(url: str, problem: str | None) -> None:
    assert client_id_url_problem(url) == problem


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, CACHE_DEFAULT_SECONDS),
        ("public, max-age=600", 600),
        ("max-age=5", CACHE_MIN_SECONDS),
        ("max-age=99999999", CACHE_MAX_SECONDS),
        ("no-store", CACHE_MIN_SECONDS),
        ("s-maxage=10", CACHE_DEFAULT_SECONDS),
    ],
)
def test_cache_lifetime(header: str | None, seconds: int) -> None:
    assert cache_seconds(header) == seconds


async def test_loopback_is_refused_without_the_switch_and_fetched_with_it(documents: DocumentHost) -> None:
    url = documents.publish("switch.json")
    before = len(documents.hits)
    closed = documents.fetcher(trusted=False)
    try:
        with pytest.raises(ClientDocumentError, match="not on a public address"):
            await closed.fetch(url)
    finally:
        await closed.aclose()
    assert len(documents.hits) == before  # refused before connecting
    opened = documents.fetcher()
    try:
        fetched = await opened.fetch(url)
    finally:
        await opened.aclose()
    assert fetched.metadata["client_id"] == url and fetched.max_age == 600
    assert fetched.metadata["token_endpoint_auth_method"] == "none"


@pytest.mark.parametrize(
    ("url", "allow_private", "why"),
    [
        ("https://10.1.2.3/client.json", False, "not on a public address"),
        ("https://[::1]/client.json", False, "not on a public address"),
        ("https://169.254.169.254/latest/client.json", True, "not on a public address"),  # never, even allowed
        ("http://app.example/client.json", True, "not an https URL"),
    ],
)
async def test_private_and_metadata_addresses_are_refused(url: str, allow_private: bool, why: str) -> None:
    with pytest.raises(ClientDocumentError, match=why):
        await ClientDocuments(allow_private_urls=allow_private, timeout=2).fetch(url)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"client_id": "https://someone.else/client.json"}, "client_id is not the document's URL"),
        ({"client_secret": "s"}, "carries a client secret"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "takes 'none' for documents"),
        ({"redirect_uris": []}, "lists no redirect_uris"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "plain http off loopback"),
        ({"redirect_uris": "https://app.example/cb"}, "must be a list of strings"),
        ({"grant_types": ["client_credentials"]}, "do not include authorization_code"),
        ({"response_types": ["token"]}, "do not include code"),
    ],
)
async def test_unusable_documents_are_refused(documents: DocumentHost, change: dict[str, Any], why: str) -> None:
    url = documents.publish("bad.json", **change)
    fetcher = documents.fetcher()
    try:
        with pytest.raises(ClientDocumentError, match=why):
            await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{" + b" " * MAX_DOCUMENT_BYTES + b"}", "larger than"),
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
    ],
)
async def test_oversized_and_malformed_documents_are_refused(documents: DocumentHost, body: bytes, why: str) -> None:
    documents.served["raw.json"] = body
    fetcher = documents.fetcher()
    try:
        with pytest.raises(ClientDocumentError, match=why):
            await fetcher.fetch(documents.url("raw.json"))
    finally:
        await fetcher.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_document_is_cached_for_its_max_age_and_a_stale_copy_bridges_an_outage(
    documents: DocumentHost,
) -> None:
    url = documents.publish("cached.json", client_name="First name")
    clock = Clock()
    provider = RivyaLoginProvider(
        LoginOptions(issuer="http://127.0.0.1:1", resource="http://127.0.0.1:1/mcp", rivya_base_url="http://x"),
        MemoryIdentityStore(),
        KeyBox(SECRET_KEY),
        documents=documents.fetcher(),
        clock=clock,
    )
    try:
        hits = documents.hits.count("cached.json")
        first = await provider.get_client(url)
        assert first is not None and first.client_name == "First name" and first.scope == "images"
        assert str(first.redirect_uris[0]) == CALLBACK if first.redirect_uris else False
        documents.publish("cached.json", client_name="Second name")
        clock.now += 599
        assert (await provider.get_client(url)).client_name == "First name"  # type: ignore[union-attr]
        assert documents.hits.count("cached.json") == hits + 1
        clock.now += 2
        assert (await provider.get_client(url)).client_name == "Second name"  # type: ignore[union-attr]
        assert documents.hits.count("cached.json") == hits + 2
        del documents.served["cached.json"]  # the host is down (404)
        clock.now += 601
        stale = await provider.get_client(url)
        assert stale is not None and stale.client_name == "Second name"
        assert await provider.get_client(documents.url("never-published.json")) is None
    finally:
        await provider.documents.aclose()
