"""Behind the team's authorization server: a real one (oidc-provider, started here) issues the tokens.

The server under test is the SDK's MCP server with ``mount_identity`` (a tool reports
``current_person()``), reached by the SDK's MCP client over real loopback HTTP. Every refusal is
checked for its status and ``WWW-Authenticate``, and next to it the legitimate token still works.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from rivya_mcp.identity import Identity, IssuerOptions, IssuerTokenVerifier, build_identity
from rivya_mcp.settings import Secret, Settings
from tests.identity._apps import serve_late, whoami_app
from tests.identity.conftest import AuthServer

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Clock:
    """Wall time moved by the test: tokens are issued at the real time, judged at ours."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Served:
    url: str
    identity: Identity
    clock: Clock

    @property
    def resource(self) -> str:
        return f"{self.url}/mcp"


@pytest.fixture
def served(authserver: AuthServer) -> Iterator[Served]:
    clock = Clock()
    built: list[Identity] = []

    def build(url: str) -> Any:
        settings = Settings(
            oauth_issuer=authserver.issuer,
            public_url=url,
            oauth_scopes=("images",),
            oauth_client_id="rs",
            oauth_client_secret=Secret(authserver.secrets["rs"]),
        )
        identity = build_identity(settings, clock=clock)
        assert identity is not None
        built.append(identity)
        return whoami_app(identity)

    server = serve_late(build)
    with server:
        yield Served(server.base_url, built[0], clock)


async def _whoami(served: Served, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(served.resource, http_client=http)) as client:
            result = await client.call_tool("whoami", {})
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def _post(served: Served, token: str | None) -> httpx2.Response:
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(served.resource, json=INITIALIZE, headers=headers)


def _challenge(response: httpx2.Response) -> dict[str, str]:
    value = response.headers["www-authenticate"]
    assert value.startswith("Bearer ")
    parts: dict[str, str] = {}
    for item in value.removeprefix("Bearer ").split(", "):
        name, _, quoted = item.partition("=")
        parts[name] = quoted.strip('"')
    return parts


def _expect_refused(response: httpx2.Response, served: Served, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    challenge = _challenge(response)
    assert challenge["error"] == error
    assert challenge["resource_metadata"] == f"{served.url}/.well-known/oauth-protected-resource/mcp"
    assert challenge["scope"] == "images"


async def test_a_token_the_issuer_made_for_this_server_is_accepted(authserver: AuthServer, served: Served) -> None:
    me = await _whoami(served, authserver.token(served.resource))
    assert me == {
        "person": f"oauth:{authserver.issuer}#svc",
        "name": "svc",
        "kind": "issuer",
        "subject": "svc",
        "issuer": authserver.issuer,
        "scopes": ["images"],
        "own_key": False,
    }


async def test_without_a_token_the_challenge_leads_to_the_issuer(authserver: AuthServer, served: Served) -> None:
    _expect_refused(await _post(served, None), served, 401, "invalid_token")
    async with httpx2.AsyncClient(timeout=10) as http:
        for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
            metadata = (await http.get(served.url + path)).json()
            assert metadata["resource"] == served.resource
            assert metadata["authorization_servers"] == [authserver.issuer]
            assert metadata["scopes_supported"] == ["images"]
        # rivya-login is off: this server is no authorization server.
        assert (await http.get(f"{served.url}/.well-known/oauth-authorization-server")).status_code == 404


def _forged(authserver: AuthServer, served: Served, *, kid: str, **claims: Any) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    payload = {"iss": authserver.issuer, "sub": "mallory", "aud": served.resource, "scope": "images",
               "iat": now, "exp": now + 600, **claims}  # fmt: skip
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_or_hmac(authserver: AuthServer, served: Served, algorithm: str) -> str:
    now = int(time.time())
    header = _b64(json.dumps({"alg": algorithm, "typ": "at+jwt", "kid": authserver.kid}).encode())
    payload = _b64(json.dumps({"iss": authserver.issuer, "sub": "mallory", "aud": served.resource,
                               "scope": "images", "exp": now + 600}).encode())  # fmt: skip
    if algorithm == "none":
        return f"{header}.{payload}."
    # HS256 keyed with the issuer's *public* key: the classic algorithm-confusion forgery.
    jwks = httpx2.get(f"{authserver.issuer}/jwks", timeout=10).json()
    secret = json.dumps(jwks["keys"][0]).encode()
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


REFUSALS = ["wrong audience", "expired", "another key, same kid", "another key, unknown kid", "alg none",
            "HS256 with the public key", "no required scope", "not a token"]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
async def test_refused_tokens_get_the_right_status_and_challenge(
    authserver: AuthServer, served: Served, case: str
) -> None:
    status, error = 401, "invalid_token"
    if case == "wrong audience":
        token = authserver.token("https://elsewhere.example/mcp")
    elif case == "expired":
        token = authserver.token(served.resource)
        served.clock.offset = 600 + 31  # the tokens live 600 s; the leeway is 30 s
    elif case == "another key, same kid":
        token = _forged(authserver, served, kid=authserver.kid)
    elif case == "another key, unknown kid":
        token = _forged(authserver, served, kid=str(uuid.uuid4()))
    elif case == "alg none":
        token = _unsigned_or_hmac(authserver, served, "none")
    elif case == "HS256 with the public key":
        token = _unsigned_or_hmac(authserver, served, "HS256")
    elif case == "no required scope":
        token, status, error = authserver.token(served.resource, scope="other"), 403, "insufficient_scope"
    else:
        token = "not-a-jwt-and-not-known"
    _expect_refused(await _post(served, token), served, status, error)
    # The legitimate token, on the same server and the same clock, still works.
    served.clock.offset = 0.0
    assert (await _whoami(served, authserver.token(served.resource)))["person"] == f"oauth:{authserver.issuer}#svc"


async def test_an_opaque_token_is_introspected_and_a_revoked_one_stops_working(
    authserver: AuthServer, served: Served
) -> None:
    token = authserver.token(served.resource, client="svc-opaque")
    assert token.count(".") == 0
    assert (await _whoami(served, token))["person"] == f"oauth:{authserver.issuer}#svc-opaque"
    authserver.revoke(token, client="svc-opaque")
    # An answer is reused for 30 s at most: past that, the issuer is asked again and says no.
    served.clock.offset = 31
    _expect_refused(await _post(served, token), served, 401, "invalid_token")
    other = authserver.token("https://elsewhere.example/mcp", client="svc-opaque")
    _expect_refused(await _post(served, other), served, 401, "invalid_token")


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_rotated_key_is_fetched_once_after_the_cooldown(authserver: AuthServer) -> None:
    resource = "http://127.0.0.1:9/mcp"
    monotonic = Monotonic()
    verifier = IssuerTokenVerifier(IssuerOptions(issuer=authserver.issuer, resource=resource), monotonic=monotonic)
    try:
        before = authserver.token(resource)
        assert await verifier.verify_token(before) is not None
        assert verifier.jwks.fetches == 1
        new_kid = authserver.script.send(op="rotate")["kid"]
        after = authserver.token(resource)
        assert jwt.get_unverified_header(after)["kid"] == new_kid
        # Within the cooldown an unknown kid is not worth a request to the identity provider...
        monotonic.now += 5
        assert await verifier.verify_token(after) is None
        fake = _forged(authserver, Served("http://127.0.0.1:9", None, Clock()), kid="x")  # type: ignore[arg-type]
        for _ in range(20):
            assert await verifier.verify_token(fake) is None
        assert verifier.jwks.fetches == 1
        # ...past it, one refresh picks the new key up, and the old one still verifies.
        monotonic.now += 30
        accepted = await verifier.verify_token(after)
        assert accepted is not None and accepted.person.subject == "svc"
        assert await verifier.verify_token(before) is not None
        assert verifier.jwks.fetches == 2
        for _ in range(20):
            assert await verifier.verify_token(fake) is None
        assert verifier.jwks.fetches == 2
    finally:
        await verifier.aclose()


async def test_the_issuer_named_with_a_trailing_slash_is_the_same_issuer(authserver: AuthServer) -> None:
    resource = "http://127.0.0.1:9/mcp"
    verifier = IssuerTokenVerifier(IssuerOptions(issuer=authserver.issuer + "/", resource=resource))
    try:
        accepted = await verifier.verify_token(authserver.token(resource))
        assert accepted is not None and accepted.person.issuer == authserver.issuer
    finally:
        await verifier.aclose()


async def test_an_issuer_that_is_not_there_is_reported_and_retried_later(authserver: AuthServer) -> None:
    resource = "http://127.0.0.1:9/mcp"
    monotonic = Monotonic()
    verifier = IssuerTokenVerifier(
        IssuerOptions(issuer=authserver.issuer + "/tenant-that-does-not-exist", resource=resource), monotonic=monotonic
    )
    try:
        token = authserver.token(resource)
        with anyio.fail_after(30):
            assert await verifier.verify_token(token) is None
        with pytest.raises(Exception, match="no authorization server metadata found"):
            await verifier.metadata()
    finally:
        await verifier.aclose()


async def test_the_rivya_mcp_app_behind_the_issuer(authserver: AuthServer, tmp_path: Any) -> None:
    from rivya_mcp.transport import build_http_app

    def build(url: str) -> Any:
        settings = Settings(
            oauth_issuer=authserver.issuer,
            oauth_scopes=("images",),
            public_url=url,
            output_dir=tmp_path / "out",
            data_dir=tmp_path / "data",
        )
        return build_http_app(settings, transport="http")

    server = serve_late(build)
    with server:
        resource = f"{server.base_url}/mcp"
        headers = {"Authorization": f"Bearer {authserver.token(resource)}"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with Client(streamable_http_client(resource, http_client=http)) as client:
                tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"generate_image", "get_task"} <= tools
        served = Served(server.base_url, None, Clock())  # type: ignore[arg-type]
        _expect_refused(
            await _post(served, authserver.token(resource, scope="other")), served, 403, "insufficient_scope"
        )
        _expect_refused(await _post(served, None), served, 401, "invalid_token")
