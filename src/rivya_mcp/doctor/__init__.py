"""``rivya-mcp doctor``: check a setup against the real API without spending a credit.

The first thing to run with a real key, and what a bug report should contain. It checks the base
URL (reachable, TLS), the key (a credits call), the model's catalog entry (listed, callable,
limits versus the manifest), ``/api/v1/openapi.json`` where it is served (compared with the
client's assumptions, ``rivya_mcp.client.CLIENT_CONTRACT``), the output and data folders, and with
a public URL the webhook endpoint and the signature convention of a test delivery (docs/doctor.md).
"""

from __future__ import annotations

import httpx2

from rivya_mcp.client import AsyncRivyaClient
from rivya_mcp.doctor._checks import (
    CALL_TIMEOUT,
    DOCTOR_WEBHOOK_PATH,
    WEBHOOK_WAIT_SECONDS,
    check_base_url,
    check_catalog,
    check_folder,
    check_key,
    check_openapi,
    check_webhooks,
    server_endpoint_record,
)
from rivya_mcp.doctor._report import Check, DoctorReport, render
from rivya_mcp.manifest import get_manifest
from rivya_mcp.settings import Settings
from rivya_mcp.tasks import EndpointRecord

__all__ = [
    "DOCTOR_WEBHOOK_PATH",
    "WEBHOOK_WAIT_SECONDS",
    "Check",
    "DoctorReport",
    "check_base_url",
    "render",
    "run_doctor",
]

# Checks that need the API; skipped (and named) when the base URL cannot be reached.
_NETWORK_CHECKS = ("API key", "model catalog", "openapi.json")


async def _server_record(settings: Settings) -> EndpointRecord | None:
    try:
        return await server_endpoint_record(settings)
    except Exception:  # an unusable journal is the data folder row's business, not this one's
        return None


async def run_doctor(
    settings: Settings,
    *,
    public_url: str | None = None,
    listen: str | None = None,
    webhook_wait: float = WEBHOOK_WAIT_SECONDS,
) -> DoctorReport:
    """Run every check and return the report (``render`` prints it; ``exit_code`` is 0 or 1)."""
    report = DoctorReport(settings.base_url, settings.model)
    async with httpx2.AsyncClient(trust_env=True) as http:
        base = await check_base_url(settings.base_url, http)
        report.checks.append(base)
        try:
            manifest = get_manifest(settings.model)
        except (KeyError, ValueError) as exc:
            manifest = None
            report.checks.append(
                Check("manifest", "fail", (f"no manifest for model {settings.model!r}: {exc}",), "Check RIVYA_MODEL.")
            )
        if base.status == "fail":
            report.checks += [Check(name, "skip", ("the base URL cannot be reached",)) for name in _NETWORK_CHECKS]
        else:
            client = AsyncRivyaClient(
                api_key=settings.api_key,
                base_url=settings.base_url,
                timeout=CALL_TIMEOUT,
                max_retries=1,
                http_client=http,
            )
            key = await check_key(client)
            report.checks.append(key)
            if manifest is not None:
                report.checks.append(await check_catalog(client, manifest))
            report.checks.append(await check_openapi(client))
            if public_url:
                if key.status == "fail":
                    report.checks.append(Check("webhook delivery", "skip", ("the API key does not work",)))
                else:
                    record = await _server_record(settings)
                    report.checks += await check_webhooks(
                        client, public_url, listen=listen, wait=webhook_wait, record=record
                    )
    report.checks.append(check_folder("output folder", settings.output_dir))
    if settings.database_url is None:
        report.checks.append(check_folder("data folder", settings.data_dir))
    else:
        report.checks.append(Check("data folder", "skip", ("the journal is in RIVYA_DATABASE_URL, not a folder",)))
    return report
