"""rivya-login on two replicas sharing one PostgreSQL database, each request on whichever replica.

A load balancer may send the consent page to one replica and its form to the other, the code to a
third, the MCP calls anywhere: every step below alternates, and the sign-in still works, a refresh
rotates everywhere, a replay detected on one replica revokes on the other, and a revocation holds.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest

from rivya_mcp.identity import JournalIdentityStore, build_identity
from rivya_mcp.journal import MIGRATIONS, Store
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from tests._journals import store_for
from tests.identity._apps import serve_late, whoami_app
from tests.identity._login import CALLBACK, SECRET_KEY, hidden_fields
from tests.server._threaded import ThreadedServer

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture
def stores(postgres_url: str) -> Iterator[list[Store]]:
    opened = [store_for(postgres_url), store_for(postgres_url)]
    try:
        for store in opened:
            store.migrate(MIGRATIONS)  # the second finds it done (rivya-login's tables are a step of it)
        yield opened
    finally:
        for store in opened:
            store.close()


def _app(sandbox: RunningSandbox, store: Store, public_url: str) -> Any:
    settings = Settings(
        rivya_login=True, public_url=public_url, secret_key=Secret(SECRET_KEY), base_url=sandbox.base_url
    )
    identity = build_identity(settings, store=JournalIdentityStore(store, ensure_schema=False))
    assert identity is not None
    return whoami_app(identity)


async def test_a_sign_in_spread_over_two_replicas(sandbox: RunningSandbox, stores: list[Store], rivya_key: str) -> None:
    first = serve_late(lambda url: _app(sandbox, stores[0], url))
    with first:
        public = first.base_url  # the name the balancer answers to; replica B serves it too
        with ThreadedServer(_app(sandbox, stores[1], public)) as second:
            a, b = public, second.base_url
            async with httpx2.AsyncClient(follow_redirects=False, timeout=30) as http:
                client_id = (
                    await http.post(
                        f"{a}/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
                    )
                ).json()["client_id"]
                verifier = secrets.token_urlsafe(48)
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "s",
                         "code_challenge": challenge, "resource": f"{public}/mcp"}  # fmt: skip
                authorize = await http.get(f"{b}/authorize?{urlencode(query)}")  # B parks the request
                consent_path = urlsplit(authorize.headers["location"])
                page = await http.get(f"{a}{consent_path.path}?{consent_path.query}")  # A shows it
                fields = hidden_fields(page.text)
                answer = await http.post(  # B takes the form: the CSRF binding is in the database
                    f"{b}/consent",
                    data={**fields, "api_key": rivya_key, "action": "approve"},
                    headers={"origin": public},
                )
                assert answer.status_code == 303, answer.text
                code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
                tokens = (
                    await http.post(
                        f"{a}/token",
                        data={
                            "grant_type": "authorization_code",
                            "code": code,
                            "code_verifier": verifier,
                            "redirect_uri": CALLBACK,
                            "client_id": client_id,
                        },
                    )
                ).json()

                async def status(base: str, token: str) -> int:
                    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}
                    return (await http.post(f"{base}/mcp", json=INITIALIZE, headers=headers)).status_code

                assert await status(a, tokens["access_token"]) == 200
                assert await status(b, tokens["access_token"]) == 200
                refreshed = await http.post(
                    f"{b}/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": tokens["refresh_token"],
                        "client_id": client_id,
                    },
                )
                rotated = refreshed.json()
                assert refreshed.status_code == 200 and await status(a, rotated["access_token"]) == 200
                # The first refresh token again, on the other replica: a replay, the whole sign-in goes.
                replay = await http.post(
                    f"{a}/token",
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": tokens["refresh_token"],
                        "client_id": client_id,
                    },
                )
                assert replay.status_code == 400
                assert await status(b, rotated["access_token"]) == 401
                assert await status(a, rotated["access_token"]) == 401
