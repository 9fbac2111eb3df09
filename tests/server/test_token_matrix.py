"""The bearer token on every HTTP route and method, and only the whole token, once, gets in.

Each refused spelling is sent to ``GET /sse``, ``POST /messages/`` (of a live SSE session),
and ``GET``/``POST``/``DELETE /mcp`` (of a live Streamable HTTP session), and must get 401;
the right token must then work on each of them, so a refusal is the token's doing and not a
broken request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret
from rivya_mcp.transport import build_http_app, token_matches
from tests.server._threaded import ThreadedServer
from tests.server.conftest import settings_for

pytestmark = pytest.mark.anyio

TOKEN = "Matrix-t0ken-for-tests-ONLY"
RIGHT = f"Bearer {TOKEN}"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}

# (name, the Authorization header lines sent); each must be refused.
REFUSED: list[tuple[str, list[str]]] = [
    ("missing", []),
    ("empty", [""]),
    ("wrong", ["Bearer not-the-token"]),
    ("right plus suffix", [f"{RIGHT}x"]),
    ("right plus a second word", [f"{RIGHT} extra"]),
    ("prefix only", [f"Bearer {TOKEN[:-1]}"]),
    ("scheme only", ["Bearer"]),
    ("token without scheme", [TOKEN]),
    ("other scheme", [f"Basic {TOKEN}"]),
    ("token in wrong case", [f"Bearer {TOKEN.swapcase()}"]),
    ("two spaces", [f"Bearer  {TOKEN}"]),
    ("tab instead of space", [f"Bearer\t{TOKEN}"]),
    ("leading whitespace in token", [f"Bearer \t{TOKEN}"]),
    ("two headers, right first", [RIGHT, "Bearer wrong"]),
    ("two headers, right last", ["Bearer wrong", RIGHT]),
    ("two right headers", [RIGHT, RIGHT]),
]


def _headers(lines: list[str], **extra: str) -> list[tuple[str, str]]:
    return [*extra.items(), *(("authorization", line) for line in lines)]


@pytest.fixture(scope="module")
def http_server(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("matrix-http"), auth_token=Secret(TOKEN))
    with ThreadedServer(build_http_app(settings, transport="http")) as server:
        yield server


@pytest.fixture(scope="module")
def sse_server(sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("matrix-sse"), auth_token=Secret(TOKEN))
    with ThreadedServer(build_http_app(settings, transport="sse")) as server:
        yield server


async def _status(http: httpx2.AsyncClient, method: str, url: str, headers: list[tuple[str, str]], **kw: object) -> int:
    # Streamed, so that a GET wrongly let through (an endless event stream) still answers.
    async with http.stream(method, url, headers=headers, **kw) as response:  # type: ignore[arg-type]
        return response.status_code


@asynccontextmanager
async def _sse_session(http: httpx2.AsyncClient, server: ThreadedServer) -> AsyncIterator[str]:
    """A live SSE session opened with the right token; yields its message endpoint."""
    async with http.stream("GET", f"{server.base_url}/sse", headers=_headers([RIGHT])) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if line.startswith("data:"):
                endpoint = line.removeprefix("data:").strip()
                assert "session_id=" in endpoint
                yield f"{server.base_url}{endpoint}"
                return
        raise AssertionError("the SSE stream sent no endpoint")


async def _mcp_session(http: httpx2.AsyncClient, server: ThreadedServer) -> str:
    response = await http.post(f"{server.base_url}/mcp", json=INITIALIZE, headers=_headers([RIGHT], **JSON))
    assert response.status_code == 200, response.text
    return response.headers["mcp-session-id"]


@pytest.mark.parametrize(("case", "lines"), REFUSED, ids=[name for name, _ in REFUSED])
async def test_every_wrong_token_is_refused_on_every_route(
    http_server: ThreadedServer, sse_server: ThreadedServer, case: str, lines: list[str]
) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session = await _mcp_session(http, http_server)
        mcp = f"{http_server.base_url}/mcp"
        statuses = {
            "GET /sse": await _status(http, "GET", f"{sse_server.base_url}/sse", _headers(lines)),
            "POST /mcp": await _status(http, "POST", mcp, _headers(lines, **JSON), json=INITIALIZE),
            "GET /mcp": await _status(
                http, "GET", mcp, _headers(lines, accept="text/event-stream", **{"mcp-session-id": session})
            ),
            "DELETE /mcp": await _status(http, "DELETE", mcp, _headers(lines, **{"mcp-session-id": session})),
        }
        async with _sse_session(http, sse_server) as endpoint:
            statuses["POST /messages/"] = await _status(
                http, "POST", endpoint, _headers(lines, **{"content-type": "application/json"}), json=INITIALIZE
            )
    assert statuses == dict.fromkeys(statuses, 401), case


async def test_the_right_token_works_on_every_route(http_server: ThreadedServer, sse_server: ThreadedServer) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        session = await _mcp_session(http, http_server)  # POST /mcp
        mcp = f"{http_server.base_url}/mcp"
        stream_headers = _headers([RIGHT], accept="text/event-stream", **{"mcp-session-id": session})
        assert await _status(http, "GET", mcp, stream_headers) == 200
        assert await _status(http, "DELETE", mcp, _headers([RIGHT], **{"mcp-session-id": session})) == 200
        # The session is gone now: proof that the DELETE reached the SDK, not just our check.
        assert await _status(http, "GET", mcp, stream_headers) == 404
        async with _sse_session(http, sse_server) as endpoint:  # GET /sse
            posted = await _status(
                http, "POST", endpoint, _headers([RIGHT], **{"content-type": "application/json"}), json=INITIALIZE
            )
        assert posted == 202


async def test_the_scheme_is_case_insensitive_as_rfc_7235_says(http_server: ThreadedServer) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        for scheme in ("bearer", "BEARER"):
            response = await http.post(
                f"{http_server.base_url}/mcp", json=INITIALIZE, headers=_headers([f"{scheme} {TOKEN}"], **JSON)
            )
            assert response.status_code == 200, scheme


@pytest.mark.parametrize(
    ("given", "matches"),
    [
        (RIGHT.encode(), True),
        (f"bearer {TOKEN}".encode(), True),
        (f"{RIGHT}x".encode(), False),
        (RIGHT[:-1].encode(), False),
        (b"", False),
        (f"Bearer {TOKEN}\x00".encode(), False),
        (f"Bearer {TOKEN.lower()}".encode(), False),
        (f"Bearer  {TOKEN}".encode(), False),
        ("Bearer tökén".encode(), False),
    ],
)
def test_token_matches_only_the_whole_token(given: bytes, matches: bool) -> None:
    assert token_matches(given, TOKEN.encode()) is matches


def test_the_compare_is_constant_time_over_the_whole_string(monkeypatch: pytest.MonkeyPatch) -> None:
    # hmac.compare_digest takes time that depends on the lengths only, never on where the first
    # difference is; the check must hand it the whole credential, not a slice or a prefix.
    import hmac

    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not token_matches(f"Bearer {TOKEN}-and-more".encode(), TOKEN.encode())
    assert token_matches(f"Bearer {TOKEN}".encode(), TOKEN.encode())
    assert seen == [(f"{TOKEN}-and-more".encode(), TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]
