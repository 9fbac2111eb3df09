"""The consent page: self-contained, escaped, CSRF-protected, and the key never shown again.

Each attack is refused and, in the same test, the legitimate submission still works.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from rivya_mcp.identity import MemoryIdentityStore
from rivya_mcp.sandbox import RunningSandbox
from tests.identity._login import CALLBACK, Browser, LoginServer, hidden_fields, login_server

pytestmark = pytest.mark.anyio

HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'


class Consent:
    def __init__(self, server: LoginServer, browser: Browser, client_id: str) -> None:
        self.server, self.browser, self.client_id = server, browser, client_id

    def authorization_url(self, redirect_uri: str = CALLBACK) -> str:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": redirect_uri,
                 "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
        return f"{self.server.url}/authorize?{urlencode(query)}"

    async def open(self) -> dict[str, str]:
        await self.browser.open_consent(self.authorization_url())
        return hidden_fields(self.browser.last_page)

    async def approve(self, fields: dict[str, str], api_key: str, **kw: Any) -> httpx2.Response:
        return await self.browser.submit({**fields, "api_key": api_key, "action": "approve"}, **kw)


@pytest.fixture
async def consent(sandbox: RunningSandbox) -> AsyncIterator[Consent]:
    with login_server(sandbox, MemoryIdentityStore()) as server:
        browser = Browser(server.url)
        try:
            registered = await browser.http.post(
                f"{server.url}/register",
                json={"redirect_uris": [CALLBACK], "client_name": HOSTILE_NAME, "token_endpoint_auth_method": "none"},
            )
            assert registered.status_code == 201, registered.text
            yield Consent(server, browser, registered.json()["client_id"])
        finally:
            await browser.aclose()


def _approved(response: httpx2.Response) -> dict[str, list[str]]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK)
    return parse_qs(urlsplit(location).query)


async def test_the_page_is_self_contained_and_escapes_the_client_name(consent: Consent) -> None:
    await consent.browser.open_consent(consent.authorization_url())
    page = consent.browser.last_page
    assert (
        "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(1)&gt;", "")
    )
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "&amp; &quot;quotes&quot;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "no external asset"
    assert "registered itself" in page  # a DCR client's name is its own claim
    assert "your own computer" in page and "127.0.0.1:47123" in page  # a loopback redirect is named
    headers = (await consent.browser.http.get(consent.authorization_url())).headers
    page_headers = (await consent.browser.http.get(headers["location"])).headers
    policy = page_headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:47123" in policy
    assert page_headers["x-frame-options"] == "DENY" and page_headers["cache-control"] == "no-store"
    assert "httponly" in page_headers["set-cookie"].lower() and "samesite=strict" in page_headers["set-cookie"].lower()


async def test_a_post_without_the_cookie_is_refused(consent: Consent, rivya_key: str) -> None:
    fields = await consent.open()
    cookies = dict(consent.browser.http.cookies)
    consent.browser.http.cookies.clear()
    refused = await consent.approve(fields, rivya_key)
    assert refused.status_code == 403 and rivya_key not in refused.text
    consent.browser.http.cookies.update(cookies)
    assert "code" in _approved(await consent.approve(fields, rivya_key))


async def test_a_post_with_a_forged_token_is_refused(consent: Consent, rivya_key: str) -> None:
    fields = await consent.open()
    forged = {**fields, "csrf": secrets.token_urlsafe(32)}
    consent.browser.http.cookies.set("rivya_consent", forged["csrf"])
    assert (await consent.approve(forged, rivya_key)).status_code == 403  # field and cookie agree, the store doesn't
    consent.browser.http.cookies.set("rivya_consent", fields["csrf"])
    assert (await consent.approve({**fields, "csrf": "x" + fields["csrf"][1:]}, rivya_key)).status_code == 403
    assert "code" in _approved(await consent.approve(fields, rivya_key))


async def test_a_post_from_another_origin_is_refused(consent: Consent, rivya_key: str) -> None:
    fields = await consent.open()
    refused = await consent.approve(fields, rivya_key, origin="https://evil.example")
    assert refused.status_code == 403
    assert "code" in _approved(await consent.approve(fields, rivya_key))


async def test_a_reloaded_page_invalidates_the_old_form(consent: Consent, rivya_key: str) -> None:
    await consent.browser.open_consent(consent.authorization_url())
    old = hidden_fields(consent.browser.last_page)
    page = await consent.browser.http.get(f"{consent.server.url}/consent?request={old['request']}")
    new = hidden_fields(page.text)
    assert new["csrf"] != old["csrf"]
    assert (await consent.approve(old, rivya_key)).status_code == 403
    assert "code" in _approved(await consent.approve(new, rivya_key))


async def test_a_wrong_key_is_said_so_without_showing_it_and_attempts_are_limited(consent: Consent) -> None:
    fields = await consent.open()
    wrong = "rvya_sk_" + "!" * 12  # malformed: the sandbox (like Rivya) answers 401
    for _ in range(2):
        page = await consent.approve(fields, wrong)
        assert page.status_code == 400 and "Rivya did not accept that key" in page.text
        assert wrong not in page.text and 'value=""' in page.text
    spaced = await consent.approve(fields, "two words")
    assert "look like a Rivya API key" in spaced.text
    for _ in range(2):
        page = await consent.approve(fields, wrong)
    assert "Too many attempts" in page.text
    assert (await consent.approve(fields, "rvya_sk_" + "a" * 20)).status_code == 400  # the request is gone


async def test_the_key_is_never_on_a_page_after_submission(consent: Consent, rivya_key: str) -> None:
    fields = await consent.open()
    answer = await consent.approve(fields, rivya_key)
    query = _approved(answer)
    assert rivya_key not in answer.headers["location"] and rivya_key not in answer.text
    assert set(query) == {"code", "state", "iss"} and query["iss"] == [consent.server.url]
    # The same form again: expired, and still no key.
    again = await consent.approve(fields, rivya_key)
    assert again.status_code == 400 and "expired or was already used" in again.text and rivya_key not in again.text


async def test_declining_tells_the_client(consent: Consent) -> None:
    fields = await consent.open()
    answer = await consent.browser.submit({**fields, "action": "deny"})
    query = _approved(answer)
    assert query["error"] == ["access_denied"] and query["state"] == ["s1"] and query["iss"] == [consent.server.url]


async def test_an_old_link_has_expired(consent: Consent, rivya_key: str) -> None:
    fields = await consent.open()
    consent.server.clock.offset = 15 * 60 + 1
    answer = await consent.approve(fields, rivya_key)
    assert answer.status_code == 400 and "expired" in answer.text
    consent.server.clock.offset = 0
    assert "code" in _approved(await consent.approve(*(await _fresh(consent)), rivya_key))


async def _fresh(consent: Consent) -> tuple[dict[str, str]]:
    return (await consent.open(),)


async def test_a_document_client_is_named_with_its_host(
    sandbox: RunningSandbox, documents: Any, rivya_key: str
) -> None:
    url = documents.publish("page.json", client_name="Doc <b>Client</b>", redirect_uris=["https://app.example/cb"])
    with login_server(sandbox, MemoryIdentityStore(), documents.fetcher()) as server:
        browser = Browser(server.url)
        try:
            consent = Consent(server, browser, url)
            await browser.open_consent(consent.authorization_url("https://app.example/cb"))
            page = browser.last_page
            assert "Doc &lt;b&gt;Client&lt;/b&gt;" in page and "Identified by its metadata at" in page
            assert urlsplit(url).netloc in page and "your own computer" not in page
            fields = hidden_fields(page)
            answer = await browser.submit({**fields, "api_key": rivya_key, "action": "approve"})
            assert answer.status_code == 303 and answer.headers["location"].startswith("https://app.example/cb?")
        finally:
            await browser.aclose()
