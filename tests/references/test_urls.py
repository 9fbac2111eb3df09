"""URL references against a real loopback HTTP server (the only host these tests connect to)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import quote

import anyio
import httpx2
import pytest

from rivya_mcp.manifest import UploadPolicy
from rivya_mcp.references import LoadedReference, ReferenceError, _address, _fetch, load_reference

from .conftest import PNG, LoopbackServer

pytestmark = pytest.mark.anyio

TRUSTED = ("127.0.0.1",)


async def load(url: str, policy: UploadPolicy, **kwargs: object) -> LoadedReference:
    with anyio.fail_after(10):
        return await load_reference(url, policy=policy, **kwargs)  # type: ignore[arg-type]


async def refused(url: str, policy: UploadPolicy, **kwargs: object) -> ReferenceError:
    with pytest.raises(ReferenceError) as info:
        await load(url, policy, **kwargs)
    return info.value


def redirect(server: LoopbackServer, to: str) -> str:
    return server.url("/redirect?to=" + quote(to, safe=""))


async def test_loopback_is_refused_by_default(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/img.png"), policy)
    assert error.reason == "forbidden_address"
    assert "loopback" in error.message and "RIVYA_ALLOW_PRIVATE_URLS" in error.message
    assert loopback.seen_headers == []  # refused before connecting


async def test_localhost_name_resolving_to_loopback_is_refused(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(f"http://localhost:{loopback.port}/img.png", policy)
    assert error.reason == "forbidden_address" and "localhost" in error.message
    assert loopback.seen_headers == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "[::1]", "[::ffff:7f00:1]"])
async def test_odd_spellings_of_loopback_are_refused(loopback: LoopbackServer, policy: UploadPolicy, host: str) -> None:
    error = await refused(f"http://{host}:{loopback.port}/img.png", policy)
    assert error.reason == "forbidden_address" and "loopback" in error.message
    assert loopback.seen_headers == []


async def test_trusted_host_is_fetched(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    ref = await load(loopback.url("/img.png"), policy, trusted_hosts=TRUSTED)
    assert (ref.data, ref.mime_type, ref.filename, ref.source_kind) == (PNG, "image/png", "img.png", "url")


async def test_allow_private_urls(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    assert (await load(loopback.url("/img.png"), policy, allow_private_urls=True)).data == PNG


async def test_allow_private_urls_never_opens_cloud_metadata(policy: UploadPolicy) -> None:
    error = await refused("http://169.254.169.254/latest/meta-data/", policy, allow_private_urls=True)
    assert "cloud metadata" in error.message


async def test_redirect_within_trusted_host_is_followed(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    ref = await load(redirect(loopback, loopback.url("/img.png")), policy, trusted_hosts=TRUSTED)
    assert ref.data == PNG and len(loopback.seen_headers) == 2


@pytest.mark.parametrize(
    "target",
    [
        "http://localhost:{port}/img.png",  # a name that resolves to loopback
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::ffff:127.0.0.1]:{port}/img.png",
        "http://[fd00:ec2::254]/",
        "http://10.0.0.1/",
    ],
)
async def test_redirect_to_a_private_address_is_refused(
    loopback: LoopbackServer, policy: UploadPolicy, target: str
) -> None:
    # The first hop (127.0.0.1) is admitted by the allow-list; the hop it redirects to is not.
    error = await refused(redirect(loopback, target.format(port=loopback.port)), policy, trusted_hosts=TRUSTED)
    assert error.reason == "forbidden_address"
    assert len(loopback.seen_headers) == 1  # never followed


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/a.png", "gopher://127.0.0.1:70/"])
async def test_redirect_to_another_scheme_is_refused(
    loopback: LoopbackServer, policy: UploadPolicy, target: str
) -> None:
    error = await refused(redirect(loopback, target), policy, trusted_hosts=TRUSTED)
    assert error.reason == "unsupported_scheme"


async def test_too_many_redirects(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/loop"), policy, trusted_hosts=TRUSTED)
    assert error.reason == "too_many_redirects"
    assert len(loopback.seen_headers) == 4  # the first request and three redirects


async def test_size_cap_mid_stream(loopback: LoopbackServer, small_policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/big"), small_policy, trusted_hosts=TRUSTED)
    assert error.reason == "too_large" and "64 KB" in error.message


async def test_declared_length_over_the_cap(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/big-declared"), policy, trusted_hosts=TRUSTED)
    assert error.reason == "too_large" and "reference is 50 MB; the limit is 10 MB" in error.message


async def test_slow_server_hits_the_deadline(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/slow"), policy, trusted_hosts=TRUSTED, timeout=0.5)
    assert error.reason == "timeout"


async def test_compressed_body_is_refused(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    assert (await refused(loopback.url("/gzip"), policy, trusted_hosts=TRUSTED)).reason == "compressed"
    assert loopback.seen_headers[0]["accept-encoding"] == "identity"


async def test_html_page_is_not_an_image(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/page"), policy, trusted_hosts=TRUSTED)
    assert error.reason == "not_an_image" and "HTML page" in error.message


async def test_http_error_status(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    error = await refused(loopback.url("/nothing-here"), policy, trusted_hosts=TRUSTED)
    assert error.reason == "http_status" and "404" in error.message


async def test_connection_refused(policy: UploadPolicy) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await refused(f"http://127.0.0.1:{port}/img.png", policy, trusted_hosts=TRUSTED)
    assert error.reason == "fetch_failed"


async def test_userinfo_is_refused(policy: UploadPolicy) -> None:
    assert (await refused("http://user:pw@example.com/a.png", policy)).reason == "bad_url"


async def test_injected_client_credentials_are_not_forwarded(loopback: LoopbackServer, policy: UploadPolicy) -> None:
    async with httpx2.AsyncClient(headers={"Authorization": "Bearer rk_secret"}, cookies={"s": "1"}) as client:
        await load(loopback.url("/img.png"), policy, trusted_hosts=TRUSTED, http_client=client)
        assert not client.is_closed  # the caller's client is the caller's to close
    assert "authorization" not in loopback.seen_headers[0]
    assert "cookie" not in loopback.seen_headers[0]


class TestDnsPinning:
    """Name resolution is ours: the checked address is the one connected to."""

    async def test_connects_to_the_checked_address_with_the_original_host(
        self, loopback: LoopbackServer, policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        loop_ip = ipaddress.ip_address("127.0.0.1")

        async def resolve(host: str, port: int) -> list[_address.IPAddress]:
            assert host == "images.example"
            return [loop_ip]

        real = _address.forbidden_address_reason
        # Pretend this one loopback address is public, so the pinned path is exercised end to end.
        monkeypatch.setattr(_fetch, "forbidden_address_reason", lambda ip: None if ip == loop_ip else real(ip))
        monkeypatch.setattr(_fetch, "_resolve", resolve)
        ref = await load(f"http://images.example:{loopback.port}/img.png", policy)
        assert ref.data == PNG and ref.filename == "img.png"
        assert loopback.seen_headers[0]["host"] == f"images.example:{loopback.port}"

    async def test_any_private_answer_refuses_the_host(
        self, policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def resolve(host: str, port: int) -> list[_address.IPAddress]:
            return [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.5")]

        monkeypatch.setattr(_fetch, "_resolve", resolve)
        error = await refused("https://rebind.example/a.png", policy)
        assert error.reason == "forbidden_address" and "10.0.0.5" in error.message

    async def test_unresolvable_host(self, policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
        async def getaddrinfo(*args: object, **kwargs: object) -> object:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(_fetch.anyio, "getaddrinfo", getaddrinfo)
        assert (await refused("https://no-such-host.example/a.png", policy)).reason == "dns"
