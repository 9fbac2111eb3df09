"""Host/Origin policy as tables, then the same policy on a running server (both transports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from rivya_mcp.sandbox import RunningSandbox
from rivya_mcp.settings import Secret, Settings
from rivya_mcp.transport import (
    HostName,
    HostPolicy,
    build_http_app,
    parse_allowed_host,
    parse_allowed_hosts,
    parse_host,
)
from tests.server._threaded import ThreadedServer
from tests.server.conftest import settings_for

TOKEN = "host-policy-t0ken"
LOCAL = HostPolicy("127.0.0.1")
PROXIED = HostPolicy("127.0.0.1", (HostName("mcp.example.test"), HostName("alt.example.test", 8443)))
REMOTE = HostPolicy("0.0.0.0", token_required=True)


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("Example.TEST", HostName("example.test")),
        ("example.test:8443", HostName("example.test", 8443)),
        ("[::1]:80", HostName("[::1]", 80)),
        ("[2001:DB8::5]", HostName("[2001:db8::5]")),
        ("127.0.0.1:8000", HostName("127.0.0.1", 8000)),
        ("", None),
        ("example.test:", None),
        ("example.test:0", None),
        ("example.test:65536", None),
        ("example.test:80:81", None),
        ("::1", None),  # an IPv6 literal needs its brackets in a Host header
        ("[::1", None),
        ("[nothex]", None),
        ("user@example.test", None),
        ("example.test/path", None),
        ("http://example.test", None),
        ("exa mple.test", None),
        ("example.test:８０", None),  # full-width digits
    ],
)
def test_parse_host(value: str, parsed: HostName | None) -> None:
    assert parse_host(value) == parsed


def test_allowed_hosts_entries_are_checked_with_a_message_that_says_what_to_write() -> None:
    assert parse_allowed_hosts(" mcp.example.test , ,alt.example.test:8443") == (
        HostName("mcp.example.test"),
        HostName("alt.example.test", 8443),
    )
    assert parse_allowed_hosts("") == ()
    for bad in ("https://mcp.example.test", "mcp.example.test/mcp", "*", "mcp.example.test:https"):
        with pytest.raises(ValueError, match=r"--allowed-host / RIVYA_ALLOWED_HOSTS.*mcp\.example\.com"):
            parse_allowed_host(bad)


@pytest.mark.parametrize(
    ("policy", "host", "scheme", "allowed"),
    [
        (LOCAL, "127.0.0.1:8000", "http", True),
        (LOCAL, "localhost:1", "http", True),
        (LOCAL, "[::1]:8000", "http", True),
        (LOCAL, "127.0.0.1", "http", True),
        (LOCAL, "mcp.example.test", "http", False),  # not configured: a rebinding name
        (LOCAL, "evil.example:8000", "http", False),
        (LOCAL, "", "http", False),
        (LOCAL, None, "http", False),
        (PROXIED, "mcp.example.test", "https", True),
        (PROXIED, "MCP.example.test:9000", "http", True),  # no port configured: any port
        (PROXIED, "alt.example.test:8443", "https", True),
        (PROXIED, "alt.example.test", "https", False),  # 443 is not the configured 8443
        (PROXIED, "alt.example.test:8444", "https", False),
        (PROXIED, "sub.mcp.example.test", "https", False),
        (PROXIED, "mcp.example.test.evil.example", "https", False),
        (REMOTE, "0.0.0.0:8000", "http", True),
        (REMOTE, "192.0.2.7:8000", "http", False),  # the machine's address must be configured
        (HostPolicy("192.0.2.7"), "192.0.2.7:8000", "http", True),  # ... unless it is the bind address
        (HostPolicy("::", ()), "[::]:8000", "http", True),
    ],
)
def test_host_allowed(policy: HostPolicy, host: str | None, scheme: str, allowed: bool) -> None:
    assert policy.host_allowed(host, scheme) is allowed


@pytest.mark.parametrize(
    ("policy", "origin", "host", "scheme", "allowed"),
    [
        (LOCAL, None, "127.0.0.1:8000", "http", True),  # not a browser
        (LOCAL, "http://127.0.0.1:8000", "127.0.0.1:8000", "http", True),  # own origin
        (LOCAL, "http://localhost:8000", "127.0.0.1:8000", "http", True),  # same socket, other name
        (LOCAL, "http://[::1]:8000", "localhost:8000", "http", True),
        (LOCAL, "http://localhost:3000", "localhost:8000", "http", False),  # another local port
        (LOCAL, "http://127.0.0.1:3000", "127.0.0.1:8000", "http", False),
        (LOCAL, "http://localhost", "localhost:8000", "http", False),
        (LOCAL, "https://localhost:8000", "localhost:8000", "http", False),  # another scheme
        (LOCAL, "http://evil.example:8000", "127.0.0.1:8000", "http", False),
        (LOCAL, "http://localhost:8000.evil.example", "localhost:8000", "http", False),
        (LOCAL, "null", "127.0.0.1:8000", "http", False),
        (LOCAL, "", "127.0.0.1:8000", "http", False),
        (LOCAL, "file://", "127.0.0.1:8000", "http", False),
        (PROXIED, "https://mcp.example.test", "mcp.example.test", "https", True),
        (PROXIED, "https://mcp.example.test:443", "mcp.example.test", "https", True),
        (PROXIED, "https://mcp.example.test", "mcp.example.test", "http", True),  # TLS ends at the proxy
        (PROXIED, "http://mcp.example.test:9000", "127.0.0.1:8000", "http", True),  # configured origin
        (PROXIED, "https://alt.example.test:8443", "alt.example.test:8443", "https", True),
        (PROXIED, "https://alt.example.test", "alt.example.test:8443", "https", False),
        (PROXIED, "http://localhost:3000", "mcp.example.test", "https", False),
        (PROXIED, "https://evil.example", "mcp.example.test", "https", False),
        (REMOTE, "http://localhost:6274", "localhost:8000", "http", True),  # with a token: local pages
        (REMOTE, "http://evil.example", "0.0.0.0:8000", "http", False),
        (REMOTE, "http://localhost:6274", "myhost.example:8000", "http", True),
    ],
)
def test_origin_allowed(policy: HostPolicy, origin: str | None, host: str | None, scheme: str, allowed: bool) -> None:
    assert policy.origin_allowed(origin, host, scheme) is allowed


def test_the_sdk_check_behind_ours_admits_everything_ours_admits() -> None:
    security = PROXIED.sdk_settings()
    assert security.enable_dns_rebinding_protection
    assert {"127.0.0.1:*", "localhost:*", "[::1]:*", "mcp.example.test", "mcp.example.test:*"} <= set(
        security.allowed_hosts
    )
    assert "alt.example.test:8443" in security.allowed_hosts and "alt.example.test" not in security.allowed_hosts
    assert {"https://mcp.example.test", "http://localhost:*", "https://alt.example.test:8443"} <= set(
        security.allowed_origins
    )


# --- the same on a running token-less server, over both transports ---------------------------

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
JSON = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module", params=["http", "sse"])
def server(
    request: pytest.FixtureRequest, sandbox: RunningSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ThreadedServer]]:
    settings = settings_for(sandbox, tmp_path_factory.mktemp("origins"))
    with ThreadedServer(build_http_app(settings, transport=request.param)) as running:
        yield request.param, running


def _status(transport: str, server: ThreadedServer, **headers: str) -> int:
    with httpx2.Client(timeout=10) as http:
        if transport == "http":
            return http.post(f"{server.base_url}/mcp", json=INITIALIZE, headers={**JSON, **headers}).status_code
        with http.stream("GET", f"{server.base_url}/sse", headers=headers) as response:
            return response.status_code


def test_without_a_token_only_the_servers_own_origin_is_accepted(server: tuple[str, ThreadedServer]) -> None:
    transport, running = server
    port = running.port
    assert _status(transport, running, origin=f"http://127.0.0.1:{port}") == 200
    assert _status(transport, running, origin=f"http://localhost:{port}") == 200
    assert _status(transport, running) == 200  # no Origin: not a browser
    other = port + 1 if port < 65535 else port - 1
    assert _status(transport, running, origin=f"http://localhost:{other}") == 403
    assert _status(transport, running, origin=f"http://127.0.0.1:{other}") == 403
    assert _status(transport, running, origin="http://localhost") == 403
    assert _status(transport, running, origin="null") == 403


def test_host_and_origin_names_are_case_insensitive_end_to_end(server: tuple[str, ThreadedServer]) -> None:
    """Issue 23 item 16: ``Host: LOCALHOST`` passed our check and was refused (421) by the SDK's
    exact-case check behind it. Host names are case-insensitive (RFC 9110 §4.2.3); the refusals stay."""
    transport, running = server
    port = running.port
    assert _status(transport, running, host=f"LOCALHOST:{port}") == 200
    assert _status(transport, running, host=f"LocalHost:{port}", origin=f"HTTP://LOCALHOST:{port}") == 200
    assert _status(transport, running, host=f"EVIL.EXAMPLE:{port}") == 421
    assert _status(transport, running, host=f"LOCALHOST:{port}", origin="http://EVIL.example") == 403


def test_with_a_token_local_pages_on_other_ports_still_need_the_token(sandbox: RunningSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, auth_token=Secret(TOKEN))
    with ThreadedServer(build_http_app(settings, transport="http")) as running:
        page = {"origin": f"http://localhost:{3000 if running.port != 3000 else 3001}"}
        assert _status("http", running, **page) == 401
        assert _status("http", running, authorization=f"Bearer {TOKEN}", **page) == 200
        assert _status("http", running, authorization=f"Bearer {TOKEN}", origin="http://evil.example") == 403


def test_a_malformed_allowed_host_is_refused_when_the_app_is_built(tmp_path: Path) -> None:
    settings = Settings(output_dir=tmp_path / "out", data_dir=tmp_path / "data", allowed_hosts=("https://x.test/",))
    with pytest.raises(ValueError, match="--allowed-host"):
        build_http_app(settings, transport="http")


def test_health_probes_pass_the_host_check_and_the_token_but_nothing_else_does(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A balancer probes a replica by its address, without the token: /healthz and /readyz answer
    (only "ok"), while the MCP endpoint behind the same Host is still refused (421), and without
    the token (401)."""
    settings = settings_for(sandbox, tmp_path, auth_token=Secret(TOKEN))
    with ThreadedServer(build_http_app(settings, transport="http")) as running, httpx2.Client(timeout=10) as http:
        probe = {"host": "10.1.2.3:8000"}  # the pod's address, named in no allow-list
        for path in ("/healthz", "/readyz"):
            answer = http.get(f"{running.base_url}{path}", headers=probe)
            assert (answer.status_code, answer.json()) == (200, {"status": "ok"}), path
        assert http.post(f"{running.base_url}/mcp", json=INITIALIZE, headers={**JSON, **probe}).status_code == 421
        assert _status("http", running) == 401
        assert _status("http", running, authorization=f"Bearer {TOKEN}") == 200
        assert http.head(f"{running.base_url}/healthz", headers=probe).status_code == 200

        # Only those two paths, and only read: a look-alike path or another method meets both checks
        # like any other request (Host first: 421 for the pod's address; then the token: 401).
        for method, path in [
            ("GET", "/healthzX"),
            ("GET", "/healthz/"),
            ("GET", "/readyz.json"),
            ("GET", "/healthz/../mcp"),
            ("POST", "/healthz"),
            ("PUT", "/readyz"),
            ("DELETE", "/healthz"),
        ]:
            from_pod = http.request(method, f"{running.base_url}{path}", headers=probe)
            assert from_pod.status_code == 421, (method, path, from_pod.status_code)
            from_loopback = http.request(method, f"{running.base_url}{path}")
            assert from_loopback.status_code == 401, (method, path, from_loopback.status_code)
            assert "status" not in from_loopback.text
