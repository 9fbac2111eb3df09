"""The doctor's checks. None spends a credit: they read (credits, catalog, contract), write a probe
file in each folder, and, with a public URL, register a temporary webhook endpoint, ask for its
test delivery, and revoke it again."""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx2

from rivya_mcp.client import (
    AsyncRivyaClient,
    AuthenticationError,
    ModelInfo,
    NotFoundError,
    PermissionDeniedError,
    RivyaError,
    WebhookEndpoint,
    compare_openapi,
    detect_convention,
    signature_header_names,
)
from rivya_mcp.doctor._receiver import ListenError, receiving
from rivya_mcp.doctor._report import Check
from rivya_mcp.journal import AsyncJournal
from rivya_mcp.manifest import Manifest
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import JOURNAL_FILENAME, EndpointRecord, SecretStore, describe_os_error, open_journal

# Seconds each API call may take, all retries included.
CALL_TIMEOUT = 15.0
# How long the webhook check waits for its test delivery.
WEBHOOK_WAIT_SECONDS = 20.0
# Where the doctor's temporary endpoint receives (the server's own is /webhooks/rivya).
DOCTOR_WEBHOOK_PATH = "/webhooks/rivya-doctor"
SERVER_WEBHOOK_PATH = "/webhooks/rivya"
DOCTOR_ENDPOINT_NAME = "rivya-mcp-doctor"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_reason(exc: BaseException) -> str | None:
    """The TLS failure behind a connection error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return getattr(seen, "verify_message", None) or seen.reason or str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


async def check_base_url(base_url: str, http: httpx2.AsyncClient) -> Check:
    """Reachable, and over TLS unless it is this machine (the key must not cross a network in clear)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return Check(
            "base URL", "fail", (f"{base_url!r} is not an http(s) URL",), "Set RIVYA_BASE_URL to https://rivya.ai."
        )
    if parts.scheme == "http" and not _is_loopback(host):
        return Check(
            "base URL",
            "fail",
            (f"{base_url} is plain HTTP to another machine: the API key would travel unencrypted",),
            "Use an https:// RIVYA_BASE_URL (the default is https://rivya.ai).",
        )
    try:
        response = await http.get(f"{base_url}/api/v1/models", timeout=CALL_TIMEOUT)
        await response.aclose()
    except httpx2.TimeoutException:
        return Check(
            "base URL",
            "fail",
            (f"{base_url} did not answer within {CALL_TIMEOUT:g} s",),
            "Check the network, a proxy or firewall, and RIVYA_BASE_URL.",
        )
    except httpx2.TransportError as exc:
        reason = _tls_reason(exc)
        if reason is not None:
            return Check(
                "base URL",
                "fail",
                (f"TLS handshake with {host} failed: {reason}",),
                "Check the system's CA certificates and the clock, or a proxy that intercepts TLS.",
            )
        return Check(
            "base URL",
            "fail",
            (f"{base_url} is unreachable: {type(exc).__name__} ({exc})",),
            "Check RIVYA_BASE_URL (default https://rivya.ai) and the network connection.",
        )
    how = "over TLS, certificate verified" if parts.scheme == "https" else "in plain HTTP, on this machine only"
    return Check("base URL", "ok", (f"{base_url} answered HTTP {response.status_code} {how}",))


async def check_key(client: AsyncRivyaClient) -> Check:
    """The key works: a credits call (read-only, free)."""
    if not client.has_api_key:
        return Check(
            "API key",
            "fail",
            ("RIVYA_API_KEY is not set",),
            "Set RIVYA_API_KEY to a key from rivya.ai Settings → API Keys (or use `serve --sandbox`).",
        )
    try:
        credits = await client.get_credits(timeout=CALL_TIMEOUT)
    except AuthenticationError as exc:
        return Check(
            "API key",
            "fail",
            (f"Rivya refused the key: {exc}",),
            "Check RIVYA_API_KEY, or create a new key and set it.",
        )
    except PermissionDeniedError as exc:
        return Check(
            "API key",
            "fail",
            (f"the key lacks a scope: {exc}",),
            "Create a key with the default scopes (credits:read, generations:*, files:*, webhooks:manage).",
        )
    except RivyaError as exc:
        return Check(
            "API key", "fail", (f"the credits call failed: {exc}",), "Run doctor again; if it persists, report it."
        )
    return Check("API key", "ok", (f"valid; balance {credits.current_credits:g} credits",))


def _limit_lines(manifest: Manifest, entry: ModelInfo) -> list[str]:
    """Each limit the catalog states differently from the manifest, in words (empty: they agree)."""
    differences = []
    if entry.max_prompt_length is not None and entry.max_prompt_length != manifest.max_prompt_length:
        differences.append(f"prompt limit: manifest {manifest.max_prompt_length}, catalog {entry.max_prompt_length}")
    stated = entry.max_upload_bytes
    if stated is not None and stated != manifest.upload.max_bytes:
        differences.append(f"upload size: manifest {manifest.upload.max_bytes:,} bytes, catalog {stated:,} bytes")
    if entry.base_credits is not None and entry.base_credits != manifest.base_credits:
        differences.append(f"base credits: manifest {manifest.base_credits}, catalog {entry.base_credits:g}")
    return differences


async def check_catalog(client: AsyncRivyaClient, manifest: Manifest) -> Check:
    """The model is listed, callable through the API, and its limits agree with the manifest."""
    try:
        catalog = await client.read_catalog(timeout=CALL_TIMEOUT)
    except RivyaError as exc:
        return Check(
            "model catalog",
            "fail",
            (f"GET /api/v1/models failed: {exc}",),
            "Run doctor again later; the server uses the manifest's limits meanwhile.",
        )
    skipped = f"{len(catalog.unreadable)} other entry(ies) unreadable, skipped" if catalog.unreadable else None
    entry = catalog.find(manifest.id)
    if entry is None:
        unreadable = catalog.unreadable_entry(manifest.id)
        if unreadable is not None:
            return Check(
                "model catalog",
                "warn",
                (f"{manifest.id} is listed but its entry cannot be read: {unreadable.problem}",),
                "The manifest's limits apply; report the entry (the output above) if it persists.",
            )
        return Check(
            "model catalog",
            "fail",
            (f"{manifest.id} is not in the catalog ({len(catalog.models)} models listed)",),
            "Check RIVYA_MODEL, or whether Rivya withdrew the model (rivya.ai/docs/api-models).",
        )
    if not entry.is_callable:
        return Check(
            "model catalog",
            "fail",
            (entry.not_callable_reason or "not callable",),
            "Choose a model whose api_status is available; creates with this one would be refused.",
        )
    differences = _limit_lines(manifest, entry)
    lines = [f"{manifest.id}: listed, api_status {entry.api_status or 'not stated'}, callable"]
    lines += differences or ["limits agree with the manifest (prompt, upload size, base credits)"]
    if skipped:
        lines.append(skipped)
    if differences:
        return Check("model catalog", "warn", tuple(lines), "The stricter of the two applies; update the manifest.")
    return Check("model catalog", "ok", tuple(lines))


async def check_openapi(client: AsyncRivyaClient) -> Check:
    """``GET /api/v1/openapi.json`` compared with the client's assumptions, each difference named."""
    try:
        document = await client.get_openapi(timeout=CALL_TIMEOUT)
    except NotFoundError:
        return Check("openapi.json", "warn", ("not served here; nothing compared",))
    except RivyaError as exc:
        return Check("openapi.json", "warn", (f"could not be read: {exc}",))
    findings = compare_openapi(document)
    named = [f"{f.level}: {f.subject}: {f.detail}" for f in findings if f.level != "ok"]
    held = sum(1 for f in findings if f.level == "ok")
    lines = (f"{held} point(s) as the client assumes" + (", these differ:" if named else ""), *named)
    if any(f.level == "problem" for f in findings):
        return Check(
            "openapi.json",
            "fail",
            lines,
            "The API's contract breaks an assumption of this client: update rivya-mcp, or report the lines above.",
        )
    if any(f.level == "warn" for f in findings):
        return Check("openapi.json", "warn", lines, "See the warn lines above; nothing is lost, something is slower.")
    return Check("openapi.json", "ok", lines)


def check_folder(label: str, folder: Path) -> Check:
    """The folder exists (or can be made) and takes a file."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".rivya-doctor-", delete=True) as probe:
            probe.write(b"ok")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        what, fix = describe_os_error(exc)
        return Check(label, "fail", (f"{folder} is not writable: {what}",), f"{fix[:1].upper()}{fix[1:]}.")
    return Check(label, "ok", (f"{folder} is writable",))


def _listen_address(public_url: str, listen: str | None) -> tuple[str, int]:
    if listen:
        host, _, port = listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)
    parts = urlsplit(public_url)
    if parts.hostname and _is_loopback(parts.hostname):
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    return "127.0.0.1", 8000  # `serve --transport http`'s default port, where a proxy usually points


async def _revoke_all(client: AsyncRivyaClient, url: str) -> None:
    for endpoint in await client.list_webhooks():
        if endpoint.url == url and (endpoint.status or "active") != "revoked":
            await client.delete_webhook(endpoint.id)


async def server_endpoint_record(settings: Settings) -> EndpointRecord | None:
    """What the server keeps about its webhook endpoint (its journal's record: id, URL, the pinned
    signature convention), or None when there is no journal yet or no record in it.

    Only read: the journal is not created when it does not exist.
    """
    if settings.database_url is None and not (Path(settings.data_dir).expanduser() / JOURNAL_FILENAME).is_file():
        return None
    journal = await anyio.to_thread.run_sync(open_journal, settings)
    try:
        wrapped = AsyncJournal(journal)

        async def opened() -> AsyncJournal:
            return wrapped

        return await SecretStore(opened).load()
    finally:
        await anyio.to_thread.run_sync(journal.close)


def _pinned_line(record: EndpointRecord | None, server_url: str) -> tuple[str | None, bool]:
    """The server's own verdict on Rivya's signatures, in words, and whether it is unverified."""
    if record is None or record.url != server_url:
        return None, False
    if record.pinned is None:
        return (
            "the server has not verified Rivya's signature scheme (unverified): no known convention verified a "
            "delivery, so tasks finish by polling at the documented pace",
            True,
        )
    return f"the server verifies deliveries as {record.pinned.name}", False


async def check_webhooks(
    client: AsyncRivyaClient,
    public_url: str,
    *,
    listen: str | None,
    wait: float = WEBHOOK_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    record: EndpointRecord | None = None,
) -> list[Check]:
    """The server's endpoint (registered? active? which convention it pinned, from ``record``, its
    journal's) and a test delivery's signature convention."""
    base = public_url.rstrip("/")
    server_url, doctor_url = base + SERVER_WEBHOOK_PATH, base + DOCTOR_WEBHOOK_PATH
    checks: list[Check] = []
    try:
        endpoints = await client.list_webhooks()
    except RivyaError as exc:
        return [
            Check(
                "webhook endpoint",
                "fail",
                (f"listing endpoints failed: {exc}",),
                "Check the key's webhooks:manage scope.",
            )
        ]
    ours = [e for e in endpoints if e.url == server_url and (e.status or "active") != "revoked"]
    pinned, unverified = _pinned_line(record, server_url)
    extra = (pinned,) if pinned else ()
    if not ours:
        checks.append(Check("webhook endpoint", "ok", (f"none at {server_url} yet; the server registers it at start",)))
    elif (ours[0].status or "active") != "active":
        checks.append(
            Check(
                "webhook endpoint",
                "warn",
                (f"{ours[0].id} at {server_url} is {ours[0].status} (failure_count {ours[0].failure_count})", *extra),
                "Restart the server with --public-url: it re-enables the endpoint (tasks finish by polling meanwhile).",
            )
        )
    elif unverified:
        checks.append(
            Check(
                "webhook endpoint",
                "warn",
                (f"{ours[0].id} at {server_url} is active", *extra),
                "See the webhook delivery row: it names the signature headers Rivya sends; report them so the "
                "scheme can be added.",
            )
        )
    else:
        checks.append(Check("webhook endpoint", "ok", (f"{ours[0].id} at {server_url} is active", *extra)))
    try:
        host, port = _listen_address(public_url, listen)
    except ValueError:
        checks.append(
            Check(
                "webhook delivery", "fail", (f"--listen {listen!r} is not HOST:PORT",), "Pass --listen 127.0.0.1:8000."
            )
        )
        return checks
    checks.append(await _test_delivery(client, doctor_url, host, port, wait, clock))
    return checks


async def _test_delivery(
    client: AsyncRivyaClient, doctor_url: str, host: str, port: int, wait: float, clock: Callable[[], float]
) -> Check:
    name = "webhook delivery"
    try:
        async with receiving(host, port, DOCTOR_WEBHOOK_PATH) as receiver:
            endpoint: WebhookEndpoint | None = None
            try:
                await _revoke_all(client, doctor_url)  # one left behind by an interrupted run
                endpoint = await client.create_webhook(
                    url=doctor_url, event_types=["generation.succeeded"], name=DOCTOR_ENDPOINT_NAME
                )
                if not endpoint.signing_secret:
                    return Check(name, "fail", ("Rivya returned no signing secret",), "Report this.")
                await client.send_test_webhook(endpoint.id)
                with anyio.move_on_after(wait):
                    await receiver.arrived.wait()
            except RivyaError as exc:
                return Check(
                    name,
                    "fail",
                    (f"registering {doctor_url} or asking for its test failed: {exc}",),
                    "The public URL must be public HTTPS (no localhost or private address) and the key needs "
                    "webhooks:manage.",
                )
            finally:
                if endpoint is not None:
                    with anyio.CancelScope(shield=True):
                        try:
                            await client.delete_webhook(endpoint.id)
                        except RivyaError:
                            pass  # revoked on the next run (_revoke_all)
            if not receiver.deliveries:
                return Check(
                    name,
                    "fail",
                    (f"no test delivery reached {host}:{port} within {wait:g} s (sent to {doctor_url})",),
                    f"Make {doctor_url} reach {host}:{port}: stop the server, or --listen where your proxy points.",
                )
            delivery = receiver.deliveries[0]
            convention = detect_convention(delivery.headers, delivery.body, endpoint.signing_secret, now=clock())
    except ListenError as exc:
        return Check(
            name,
            "fail",
            (str(exc),),
            "Stop the server on that port for the check, or pass --listen with a free port your proxy also routes.",
        )
    if convention is None:
        headers = ", ".join(signature_header_names(delivery.headers)) or "none"
        return Check(
            name,
            "fail",
            (
                "the test delivery arrived, but no known signature convention verifies it (unverified scheme)",
                f"signature headers: {headers}",
            ),
            "Deliveries would be refused and tasks finish by polling at the documented pace; report the scheme "
            "(the headers above) so it can be added.",
        )
    return Check(name, "ok", ("test delivery verified", f"convention {convention.name}: {convention.describe()}"))
