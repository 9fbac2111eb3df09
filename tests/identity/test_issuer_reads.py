"""Reading the team's issuer: size caps, deadlines, no redirects, and the addresses never read.

A misbehaving identity provider is played by a small Starlette app on loopback (the outer edge);
the reader and the discovery under test are ours, unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from rivya_mcp.identity import IssuerUnavailable, check_issuer_url, discover_issuer, metadata_urls, read_json
from tests.server._threaded import ThreadedServer

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    async def metadata(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        base = str(request.base_url).rstrip("/")
        if tenant == "huge":
            return Response(b'{"issuer": "' + b"x" * (600 * 1024) + b'"}', media_type="application/json")
        if tenant == "slow":
            await asyncio.sleep(3)
        if tenant == "moved":
            return RedirectResponse(f"{base}/.well-known/oauth-authorization-server/ok", status_code=302)
        if tenant == "liar":
            return JSONResponse({"issuer": "https://honest.example", "jwks_uri": f"{base}/jwks"})
        if tenant == "cloud":
            return JSONResponse({"issuer": f"{base}/cloud", "jwks_uri": "https://169.254.169.254/jwks"})
        if tenant == "plain":
            return JSONResponse({"issuer": f"{base}/plain", "jwks_uri": "http://idp.example/jwks"})
        if tenant == "broken":
            return Response(status_code=500)
        if tenant == "ok":
            return JSONResponse({"issuer": f"{base}/ok", "jwks_uri": f"{base}/jwks"})
        return Response(status_code=404)

    async def oidc(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"issuer": f"{base}/oidc-only", "jwks_uri": f"{base}/jwks"})

    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server/{tenant}", metadata),
            Route("/oidc-only/.well-known/openid-configuration", oidc),
        ]
    )
    with ThreadedServer(app) as server:
        yield server.base_url


async def _discover(issuer: str) -> Any:
    async with httpx2.AsyncClient() as http:
        return await discover_issuer(http, issuer)


def test_the_well_known_urls_in_the_order_of_the_mcp_spec() -> None:
    assert metadata_urls("https://idp.example") == [
        "https://idp.example/.well-known/oauth-authorization-server",
        "https://idp.example/.well-known/openid-configuration",
    ]
    assert metadata_urls("https://idp.example/tenant1/") == [
        "https://idp.example/.well-known/oauth-authorization-server/tenant1",
        "https://idp.example/.well-known/openid-configuration/tenant1",
        "https://idp.example/tenant1/.well-known/openid-configuration",
    ]


async def test_rfc_8414_then_openid_discovery(idp: str) -> None:
    assert (await _discover(f"{idp}/ok")).jwks_uri == f"{idp}/jwks"
    found = await _discover(f"{idp}/oidc-only")
    assert found.source == f"{idp}/oidc-only/.well-known/openid-configuration"


@pytest.mark.parametrize(
    ("tenant", "why"),
    [
        ("huge", "larger than 524288 bytes"),
        ("moved", "answered HTTP 302"),
        ("liar", "names the issuer 'https://honest.example'"),
        ("cloud", "cloud metadata address"),
        ("plain", "must use https"),
        ("broken", "answered HTTP 500"),
        ("missing", "no authorization server metadata found"),
    ],
)
async def test_what_an_issuer_may_not_do(idp: str, tenant: str, why: str) -> None:
    with pytest.raises(IssuerUnavailable, match=why):
        found = await _discover(f"{idp}/{tenant}")
        if found.jwks_uri:  # the address rule applies to every URL the metadata gives
            async with httpx2.AsyncClient() as http:
                await read_json(http, found.jwks_uri, what="JWKS", deadline=2)


async def test_a_slow_issuer_meets_the_deadline(idp: str) -> None:
    async with httpx2.AsyncClient() as http:
        with pytest.raises(IssuerUnavailable, match=r"did not answer within 0\.5 s"):
            await read_json(http, f"{idp}/.well-known/oauth-authorization-server/slow", what="metadata", deadline=0.5)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://login.example.com/tenant", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080/realms/x", True),
        ("http://keycloak.lan/realms/x", False),
        ("ftp://idp.example", False),
        ("not a url", False),
    ],
)
def test_issuer_urls(url: str, allowed: bool) -> None:
    if allowed:
        check_issuer_url(url)
    else:
        with pytest.raises(IssuerUnavailable):
            check_issuer_url(url)
