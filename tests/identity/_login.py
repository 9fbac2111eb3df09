"""rivya-login under test: the server, the sandbox that checks keys, a document host, and a "browser".

The browser is httpx with a cookie jar: it follows ``/authorize`` to the consent page, reads the
form's hidden fields, submits the key the way a person would, and returns the redirect the server
answers with (the client's callback URL carrying ``code``, ``state`` and ``iss``). Nothing listens
at the callback: the test hands that URL to the client, as a browser would by opening it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.shared.auth import AuthorizationCodeResult
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rivya_mcp.identity import ClientDocuments, Identity, IdentityStore, build_identity
from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from tests.identity._apps import serve_late, whoami_app
from tests.identity._tls import TlsServer, make_ca_and_leaf, trusting

SECRET_KEY = "identity-tests-secret-" + "x" * 24
CALLBACK = "http://127.0.0.1:47123/callback"
_HIDDEN = re.compile(r'<input type=hidden name=(\w+) value="([^"]*)">')


class Clock:
    """The server's wall clock, moved by the test (token lifetimes are judged by it)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class LoginServer:
    url: str
    identity: Identity
    store: IdentityStore
    clock: Clock

    @property
    def resource(self) -> str:
        return f"{self.url}/mcp"


def hidden_fields(html: str) -> dict[str, str]:
    return dict(_HIDDEN.findall(html))


@dataclass
class Browser:
    """A person's browser, as far as the consent page can tell."""

    origin: str
    http: httpx2.AsyncClient = field(default_factory=lambda: httpx2.AsyncClient(follow_redirects=False, timeout=30))
    last_page: str = ""
    sign_ins: int = 0

    async def open_consent(self, authorization_url: str) -> str:
        """Follow /authorize to the consent page; its URL (the page is in ``last_page``)."""
        response = await self.http.get(authorization_url)
        assert response.status_code == 302, response.text
        consent = response.headers["location"]
        page = await self.http.get(consent)
        assert page.status_code == 200, page.text
        self.last_page = page.text
        return consent

    async def submit(self, fields: dict[str, str], *, origin: str | None = None) -> httpx2.Response:
        headers = {"origin": origin if origin is not None else self.origin}
        response = await self.http.post(f"{self.origin}/consent", data=fields, headers=headers)
        self.last_page = response.text
        return response

    async def sign_in(self, authorization_url: str, api_key: str, *, name: str = "") -> str:
        """The whole consent; the callback URL the server redirects to."""
        await self.open_consent(authorization_url)
        fields = hidden_fields(self.last_page)
        response = await self.submit({**fields, "api_key": api_key, "display_name": name, "action": "approve"})
        assert response.status_code == 303, response.text
        self.sign_ins += 1
        return str(response.headers["location"])

    async def aclose(self) -> None:
        await self.http.aclose()


def callback_result(location: str) -> AuthorizationCodeResult:
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


@contextmanager
def login_server(
    sandbox: RunningSandbox, store: IdentityStore, documents: ClientDocuments | None = None, **changes: Any
) -> Iterator[LoginServer]:
    clock = Clock()
    built: list[Identity] = []

    def build(url: str) -> Starlette:
        settings = Settings(
            rivya_login=True, public_url=url, secret_key=Secret(SECRET_KEY), base_url=sandbox.base_url
        ).with_changes(**changes)
        identity = build_identity(settings, store=store, documents=documents, clock=clock)
        assert identity is not None
        built.append(identity)
        return whoami_app(identity)

    server = serve_late(build)
    with server:
        yield LoginServer(server.base_url, built[0], store, clock)


@dataclass
class DocumentHost:
    """A client's metadata documents, served over TLS on loopback; ``documents`` as the server should fetch them."""

    base_url: str
    served: dict[str, Any]
    ca: Path
    hits: list[str]

    def url(self, name: str = "client.json") -> str:
        return f"{self.base_url}/{name}"

    def publish(self, name: str = "client.json", **fields: Any) -> str:
        url = self.url(name)
        self.served[name] = {
            "client_id": url,
            "client_name": "Document Client",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **fields,
        }
        return url

    def fetcher(self, *, trusted: bool = True) -> ClientDocuments:
        host = urlsplit(self.base_url).netloc
        client = httpx2.AsyncClient(verify=trusting(self.ca), follow_redirects=False, trust_env=False, timeout=10)
        return ClientDocuments(trusted_hosts=(host,) if trusted else (), http_client=client, close_client=True)


@contextmanager
def document_host(folder: Path) -> Iterator[DocumentHost]:
    ca, leaf, key = make_ca_and_leaf(folder)
    served: dict[str, Any] = {}
    hits: list[str] = []

    async def document(request: Request) -> Response:
        name = request.path_params["name"]
        hits.append(name)
        body = served.get(name)
        if body is None:
            return Response(status_code=404)
        if isinstance(body, bytes):
            return Response(body, media_type="application/json")
        return JSONResponse(body, headers={"cache-control": "max-age=600"})

    app = Starlette(routes=[Route("/{name}", document)])
    with TlsServer(app, leaf, key) as server:
        yield DocumentHost(server.base_url, served, ca, hits)


def json_of(response: httpx2.Response) -> dict[str, Any]:
    data = json.loads(response.text)
    assert isinstance(data, dict)
    return data


async def sign_in_by_hand(http: httpx2.AsyncClient, public_url: str, api_key: str) -> dict[str, Any]:
    """A public client's whole flow written out (register, authorize, consent, PKCE exchange): its tokens."""
    import base64
    import hashlib
    import secrets
    from urllib.parse import urlencode

    registered = await http.post(
        f"{public_url}/register", json={"redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    )
    client_id = registered.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "state": "s",
             "code_challenge": challenge, "resource": f"{public_url}/mcp"}  # fmt: skip
    browser = Browser(public_url, http=http)
    location = await browser.sign_in(f"{public_url}/authorize?{urlencode(query)}", api_key)
    code = parse_qs(urlsplit(location).query)["code"][0]
    answer = await http.post(
        f"{public_url}/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": CALLBACK,
              "client_id": client_id},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    return {**answer.json(), "client_id": client_id}
