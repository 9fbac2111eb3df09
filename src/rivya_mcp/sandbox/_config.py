"""Sandbox settings: how long tasks take, how long URLs live, the starting wallet, rate limits."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rivya_mcp.sandbox._profile import PROFILES

WEBHOOK_SIGNING_ENV = "RIVYA_SANDBOX_WEBHOOK_SIGNING"
"""The environment variable that sets the embedded or CLI sandbox's ``webhook_signing``."""
WEBHOOK_SIGNINGS = ("standard", "stripe", "unknown")
"""``standard``: Standard Webhooks (the default profile's); ``stripe``: ``Rivya-Signature: t=…,v1=<hex>``
(the variant's); ``unknown``: a scheme no known convention verifies (docs/sandbox.md)."""


@dataclass
class SandboxConfig:
    """Knobs of the sandbox. Every field can also be changed at runtime with ``POST /_sandbox/config``.

    Args:
        starting_balance: credits each new account (API key) starts with.
        queued_seconds: how long a task stays ``queued``.
        processing_seconds: how long a task then stays ``processing``.
        url_ttl_seconds: lifetime of result and file URLs, counted from when they were issued.
        rate_limit: requests allowed per API key per window; ``None`` switches rate limiting off.
        rate_window_seconds: the rate-limit window.
        seed: seeds the fault RNG (``probability`` rules) and the image renderer.
        public_base_url: absolute base for the URLs the sandbox hands out; ``None`` uses the
            base URL of the request being answered.
        profile: ``default`` or ``variant``: how the sandbox decides where the docs are silent
            (``_profile.py``, docs/sandbox.md). Tasks and files made earlier keep their ids.
        webhooks_allow_loopback: accept ``http://127.0.0.1:…`` webhook URLs (sandbox only: the
            documented rules refuse them), so tests and the demo can receive deliveries.
        webhook_timeout_seconds: how long a delivery waits for the receiver's answer.
        webhook_retry_seconds: delay before the first retry of a failed delivery (then doubling).
        webhook_max_attempts: attempts per delivery, the first included.
        webhook_disable_after: failed attempts in a row that disable an endpoint.
        webhook_signing: how deliveries are signed (``WEBHOOK_SIGNINGS``); ``None`` takes the
            profile's (``standard`` for default, ``stripe`` for variant).
        idempotency_in_flight_seconds: how long after the first create under an
            ``Idempotency-Key`` that create counts as still being processed; a profile with
            ``in_flight_conflict`` answers a repeat in that window ``409 idempotency_conflict``.
    """

    starting_balance: int = 1000
    queued_seconds: float = 1.0
    processing_seconds: float = 3.0
    url_ttl_seconds: float = 3600.0
    rate_limit: int | None = None
    rate_window_seconds: float = 60.0
    seed: int = 0
    public_base_url: str | None = None
    profile: str = "default"
    webhooks_allow_loopback: bool = False
    webhook_timeout_seconds: float = 5.0
    webhook_retry_seconds: float = 1.0
    webhook_max_attempts: int = 5
    webhook_disable_after: int = 10
    webhook_signing: str | None = None
    idempotency_in_flight_seconds: float = 2.0

    def __post_init__(self) -> None:
        problems = config_problems(dataclasses.asdict(self))
        if problems:
            raise ValueError("; ".join(problems))

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with ``changes`` applied; raises ValueError naming unknown or invalid fields."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def webhook_signing_from_env(environ: Mapping[str, str]) -> str | None:
    """``RIVYA_SANDBOX_WEBHOOK_SIGNING`` (None when unset: the profile's); ValueError if unknown."""
    value = (environ.get(WEBHOOK_SIGNING_ENV) or "").strip().lower()
    if not value:
        return None
    if value not in WEBHOOK_SIGNINGS:
        raise ValueError(f"unknown webhook signing {value!r}; choose one of {', '.join(WEBHOOK_SIGNINGS)}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def config_problems(values: dict[str, Any]) -> list[str]:
    """What is wrong with a set of config values (used for both the dataclass and the HTTP route)."""
    problems: list[str] = []
    for name in (
        "queued_seconds",
        "processing_seconds",
        "url_ttl_seconds",
        "webhook_retry_seconds",
        "idempotency_in_flight_seconds",
    ):
        if name in values and (not _is_number(values[name]) or values[name] < 0):
            problems.append(f"{name}: must be a number >= 0")
    if "rate_window_seconds" in values and (
        not _is_number(values["rate_window_seconds"]) or values["rate_window_seconds"] <= 0
    ):
        problems.append("rate_window_seconds: must be a number > 0")
    for name in ("starting_balance", "seed"):
        if name in values and (not isinstance(values[name], int) or isinstance(values[name], bool)):
            problems.append(f"{name}: must be an integer")
    if "starting_balance" in values and isinstance(values["starting_balance"], int) and values["starting_balance"] < 0:
        problems.append("starting_balance: must be >= 0")
    if "webhook_timeout_seconds" in values and (
        not _is_number(values["webhook_timeout_seconds"]) or values["webhook_timeout_seconds"] <= 0
    ):
        problems.append("webhook_timeout_seconds: must be a number > 0")
    for name in ("webhook_max_attempts", "webhook_disable_after"):
        value = values.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name}: must be a positive integer")
    if "webhooks_allow_loopback" in values and not isinstance(values["webhooks_allow_loopback"], bool):
        problems.append("webhooks_allow_loopback: must be true or false")
    rate = values.get("rate_limit")
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate < 1):
        problems.append("rate_limit: must be a positive integer or null")
    base = values.get("public_base_url")
    if base is not None and (not isinstance(base, str) or not base.startswith(("http://", "https://"))):
        problems.append("public_base_url: must be an http(s) URL or null")
    signing = values.get("webhook_signing")
    if signing is not None and signing not in WEBHOOK_SIGNINGS:
        problems.append(f"webhook_signing: must be one of {', '.join(WEBHOOK_SIGNINGS)} or null")
    if "profile" in values and values["profile"] not in PROFILES:
        problems.append(f"profile: must be one of {', '.join(PROFILES)}")
    return problems
