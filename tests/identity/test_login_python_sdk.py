"""rivya-login with the MCP Python SDK's own OAuth client: a client metadata document, then DCR.

The whole flow runs for real: the SDK discovers the protected-resource and authorization-server
metadata, picks CIMD (or registers), sends the browser to ``/authorize``; the test's browser submits
the consent form with a sandbox key (checked with a credits call); the SDK exchanges the code with
PKCE and calls a tool on ``/mcp`` that reports the person. Then a refresh, then a revocation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from rivya_mcp.identity import Person, SecretKeyMismatch, build_identity
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from tests.identity._login import (
    CALLBACK,
    SECRET_KEY,
    Browser,
    DocumentHost,
    LoginServer,
    callback_result,
    login_server,
)

pytestmark = pytest.mark.anyio


class MemoryTokens(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def _provider(
    server: LoginServer, browser: Browser, api_key: str, storage: MemoryTokens, *, document: str | None
) -> OAuthClientProvider:
    pending: list[str] = []

    async def redirect_handler(url: str) -> None:
        pending.append(await browser.sign_in(url, api_key, name="Ada"))

    async def callback_handler() -> AuthorizationCodeResult:
        return callback_result(pending.pop())

    metadata = OAuthClientMetadata(
        redirect_uris=[AnyUrl(CALLBACK)],
        client_name="Python SDK test client",
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none" if document else "client_secret_post",
    )
    return OAuthClientProvider(
        server.resource,
        metadata,
        storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=document,
    )


async def _whoami(server: LoginServer, auth: httpx2.Auth | None = None, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(auth=auth, headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(server.resource, http_client=http)) as client:
            result = await client.call_tool("whoami", {})
    assert not result.is_error and result.structured_content is not None, result
    return dict(result.structured_content)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


async def _status(server: LoginServer, token: str) -> int:
    """The status of an MCP initialize sent with ``token``: 200 when the token is good."""
    body = INITIALIZE
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=10) as http:
        return (await http.post(server.resource, json=body, headers=headers)).status_code


async def _full_flow(
    server: LoginServer, rivya_key: str, *, document: str | None, refresh: Callable[[], Awaitable[None]] | None = None
) -> None:
    browser, storage = Browser(server.url), MemoryTokens()
    try:
        provider = _provider(server, browser, rivya_key, storage, document=document)
        me = await _whoami(server, provider)
        assert me["kind"] == "rivya-login" and me["own_key"] is True and me["name"] == "Ada"
        assert me["person"].startswith("rivya:") and me["scopes"] == ["images"] and me["issuer"] == server.url
        assert storage.client_info is not None
        if document:
            assert storage.client_info.client_id == document
        else:
            assert storage.client_info.client_id != document and storage.client_info.client_secret
        first = storage.tokens
        assert first is not None and first.refresh_token and first.access_token.startswith("rmcp_at_")
        assert rivya_key not in first.model_dump_json()

        # The person's own key comes back, decrypted, for a call; it is nowhere in the token.
        person = Person(me["person"], me["name"], "rivya-login", server.url, me["person"], "", ("images",))
        key = await server.identity.rivya_key(person)
        assert key is not None and key.reveal() == rivya_key

        # A refresh: the access token has run out (server clock), the SDK refreshes before the call.
        server.clock.offset = 3600 + 1
        provider.context.token_expiry_time = 1.0  # long past
        assert await _status(server, first.access_token) == 401
        assert (await _whoami(server, provider))["person"] == me["person"]
        second = storage.tokens
        assert second is not None and second.access_token != first.access_token
        assert second.refresh_token and second.refresh_token != first.refresh_token
        assert browser.sign_ins == 1  # a refresh, not a second sign-in
        assert await _status(server, second.access_token) == 200

        # Revocation: the access token stops working at once, and so does its refresh token.
        revoked = await browser.http.post(
            f"{server.url}/revoke",
            data={"token": second.access_token, "client_id": storage.client_info.client_id,
                  "client_secret": storage.client_info.client_secret or ""},
        )  # fmt: skip
        assert revoked.status_code == 200
        assert await _status(server, second.access_token) == 401
        refreshed = await browser.http.post(
            f"{server.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": second.refresh_token,
                  "client_id": storage.client_info.client_id, "client_secret": storage.client_info.client_secret or ""},
        )  # fmt: skip
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    finally:
        await browser.aclose()


async def test_python_sdk_with_a_client_metadata_document(
    sandbox: RunningSandbox, documents: DocumentHost, sqlite_identity_store: Any, rivya_key: str
) -> None:
    url = documents.publish("python-sdk.json", client_name="Python SDK test client")
    with login_server(sandbox, sqlite_identity_store, documents.fetcher()) as server:
        async with httpx2.AsyncClient(timeout=10) as http:
            metadata = (await http.get(f"{server.url}/.well-known/oauth-authorization-server")).json()
        assert metadata["client_id_metadata_document_supported"] is True
        assert "none" in metadata["token_endpoint_auth_methods_supported"]
        await _full_flow(server, rivya_key, document=url)
    assert "python-sdk.json" in documents.hits


async def test_python_sdk_with_dynamic_client_registration(
    sandbox: RunningSandbox, sqlite_identity_store: Any, rivya_key: str
) -> None:
    with login_server(sandbox, sqlite_identity_store) as server:
        await _full_flow(server, rivya_key, document=None)


async def test_a_changed_secret_key_refuses_to_start_and_never_opens_a_key(
    sandbox: RunningSandbox, sqlite_identity_store: Any, rivya_key: str
) -> None:
    with login_server(sandbox, sqlite_identity_store) as server:
        browser = Browser(server.url)
        try:
            me = await _whoami(server, _provider(server, browser, rivya_key, MemoryTokens(), document=None))
        finally:
            await browser.aclose()
    person = Person(me["person"], me["name"], "rivya-login", server.url, me["person"], "", ("images",))
    same = build_identity(
        Settings(rivya_login=True, public_url=server.url, secret_key=Secret(SECRET_KEY)), store=sqlite_identity_store
    )
    rotated = build_identity(
        Settings(rivya_login=True, public_url=server.url, secret_key=Secret("a-different-secret-" + "y" * 30)),
        store=sqlite_identity_store,
    )
    assert same is not None and rotated is not None
    await same.start()
    key = await same.rivya_key(person)
    assert key is not None and key.reveal() == rivya_key
    # The start-up check (the app's lifespan runs it before serving) and every key fail closed.
    with pytest.raises(SecretKeyMismatch, match="different RIVYA_SECRET_KEY") as refused:
        await rotated.start()
    assert rivya_key not in str(refused.value)
    with pytest.raises(SecretKeyMismatch, match="different RIVYA_SECRET_KEY"):
        await rotated.rivya_key(person)
