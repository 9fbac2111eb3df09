"""rivya-login's OAuth rules over its real endpoints, by a hand-written client (every request visible).

Codes are single-use (a replay revokes what the code gave), refresh tokens rotate (a reused one
revokes its family), tokens are bound to ``{public_url}/mcp`` (another resource is
``invalid_target``), redirect URIs are checked at registration, and nothing secret is stored usable:
the journal file holds no token, no code and no Rivya key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from rivya_mcp.identity import JournalIdentityStore
from rivya_mcp.journal import MIGRATIONS
from rivya_mcp.sandbox import RunningSandbox
from tests._journals import store_for
from tests.identity._login import CALLBACK, Browser, LoginServer, login_server

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


class HandClient:
    """A public OAuth client written out step by step."""

    def __init__(self, server: LoginServer, browser: Browser) -> None:
        self.server, self.browser, self.http = server, browser, browser.http
        self.client_id = ""

    async def register(self, **metadata: Any) -> httpx2.Response:
        body = {"redirect_uris": [CALLBACK], "client_name": "Hand", "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], **metadata}  # fmt: skip
        response = await self.http.post(f"{self.server.url}/register", json=body)
        if response.status_code == 201:
            self.client_id = response.json()["client_id"]
        return response

    def authorization_url(self, challenge: str, **extra: str) -> str:
        query = {"response_type": "code", "client_id": self.client_id, "redirect_uri": CALLBACK, "state": "st8",
                 "code_challenge": challenge, "code_challenge_method": "S256", "resource": self.server.resource,
                 **extra}  # fmt: skip
        return f"{self.server.url}/authorize?{urlencode(query)}"

    async def sign_in(self, api_key: str) -> tuple[str, str]:
        """(code, verifier) after a complete consent."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        location = await self.browser.sign_in(self.authorization_url(challenge), api_key)
        query = parse_qs(urlsplit(location).query)
        assert location.startswith(CALLBACK) and query["state"] == ["st8"] and query["iss"] == [self.server.url]
        return query["code"][0], verifier

    async def token(self, **form: str) -> httpx2.Response:
        return await self.http.post(f"{self.server.url}/token", data={"client_id": self.client_id, **form})

    async def exchange(self, code: str, verifier: str) -> httpx2.Response:
        return await self.token(grant_type="authorization_code", code=code, code_verifier=verifier,
                                redirect_uri=CALLBACK, resource=self.server.resource)  # fmt: skip

    async def status(self, access_token: str) -> int:
        headers = {"authorization": f"Bearer {access_token}", "accept": "application/json, text/event-stream"}
        return (await self.http.post(self.server.resource, json=INITIALIZE, headers=headers)).status_code


@pytest.fixture
async def journal_file(tmp_path: Path) -> AsyncIterator[tuple[Path, JournalIdentityStore]]:
    path = tmp_path / "journal.sqlite3"
    store = store_for(str(path))
    store.migrate(MIGRATIONS)  # rivya-login's tables are a step of the journal's
    try:
        yield path, JournalIdentityStore(store, ensure_schema=False)
    finally:
        store.close()


@pytest.fixture
async def hand(sandbox: RunningSandbox, journal_file: tuple[Path, JournalIdentityStore]) -> AsyncIterator[HandClient]:
    with login_server(sandbox, journal_file[1]) as server:
        browser = Browser(server.url)
        try:
            client = HandClient(server, browser)
            assert (await client.register()).status_code == 201
            yield client
        finally:
            await browser.aclose()


async def test_a_code_is_single_use_and_a_replay_revokes_what_it_gave(hand: HandClient, rivya_key: str) -> None:
    code, verifier = await hand.sign_in(rivya_key)
    first = await hand.exchange(code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert await hand.status(tokens["access_token"]) == 200
    replay = await hand.exchange(code, verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert await hand.status(tokens["access_token"]) == 401
    refreshed = await hand.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400


async def test_pkce_is_checked(hand: HandClient, rivya_key: str) -> None:
    code, verifier = await hand.sign_in(rivya_key)
    wrong = await hand.exchange(code, verifier[:-1] + ("A" if verifier[-1] != "A" else "B"))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(hand: HandClient, rivya_key: str) -> None:
    code, verifier = await hand.sign_in(rivya_key)
    first = (await hand.exchange(code, verifier)).json()
    second = await hand.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"] and rotated["scope"] == "images"
    assert await hand.status(rotated["access_token"]) == 200
    # Someone replays the first refresh token (stolen, or a confused client): everything of that sign-in goes.
    replay = await hand.token(grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert await hand.status(rotated["access_token"]) == 401
    again = await hand.token(grant_type="refresh_token", refresh_token=rotated["refresh_token"])
    assert again.status_code == 400


async def test_revoking_the_refresh_token_revokes_the_access_token(hand: HandClient, rivya_key: str) -> None:
    tokens = (await hand.exchange(*await hand.sign_in(rivya_key))).json()
    revoked = await hand.http.post(
        f"{hand.server.url}/revoke", data={"token": tokens["refresh_token"], "client_id": hand.client_id}
    )
    assert revoked.status_code == 200
    assert await hand.status(tokens["access_token"]) == 401


async def test_tokens_are_for_this_resource_only(hand: HandClient) -> None:
    url = hand.authorization_url("x" * 43, resource="https://elsewhere.example/mcp")
    response = await hand.http.get(url)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert response.headers["location"].startswith(CALLBACK)
    assert query["error"] == ["invalid_target"] and query["state"] == ["st8"]
    wrong_scope = await hand.http.get(hand.authorization_url("x" * 43, scope="admin"))
    assert parse_qs(urlsplit(wrong_scope.headers["location"]).query)["error"] == ["invalid_scope"]


@pytest.mark.parametrize(
    ("redirect", "accepted"),
    [
        ("http://evil.example/cb", False),
        ("javascript:alert(1)", False),
        ("https://app.example/cb#x", False),
        ("http://127.0.0.1:9999/cb", True),
        ("https://app.example/cb", True),
    ],
)
async def test_redirect_uris_are_checked_at_registration(hand: HandClient, redirect: str, accepted: bool) -> None:
    response = await hand.register(redirect_uris=[redirect])
    assert (response.status_code == 201) is accepted, response.text
    if not accepted:
        assert response.json()["error"] in ("invalid_redirect_uri", "invalid_client_metadata")


async def test_an_unregistered_redirect_is_never_followed(hand: HandClient) -> None:
    response = await hand.http.get(hand.authorization_url("x" * 43, redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400 and "evil.example" not in response.headers.get("location", "")


async def test_nothing_secret_is_stored_usable(
    hand: HandClient, journal_file: tuple[Path, JournalIdentityStore], rivya_key: str
) -> None:
    code, verifier = await hand.sign_in(rivya_key)
    tokens = (await hand.exchange(code, verifier)).json()
    assert await hand.status(tokens["access_token"]) == 200
    path = journal_file[0]
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for secret in (rivya_key, tokens["access_token"], tokens["refresh_token"], code):
        assert secret.encode() not in stored
    assert hashlib.sha256(tokens["access_token"].encode()).hexdigest().encode() in stored
