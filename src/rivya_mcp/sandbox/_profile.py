"""Sandbox profiles: the one place where the sandbox decides what the Rivya docs leave open.

The docs (``rivya-api.md``) state some things and leave others open: the status code of a create,
the shape of the file object, whether ``result.urls`` is always listed, how ``Retry-After`` is
written, the status of ``insufficient_credits``, what "10 MB" means, what triggers
``idempotency_conflict``, how the catalog reads, how webhooks are signed. The ``default`` profile keeps
the sandbox's original guesses; ``variant`` takes the other plausible reading at every such point,
so a client that only works because the sandbox guessed in its favour fails against one of them.
Everything the docs state (paths, envelopes, status values, error codes and their documented
statuses) is the same in both. docs/sandbox.md has the table; tests/sandbox/test_profiles.py a test
per row.

A profile is pure data plus small pure functions; the routes and the state consult it at each
decision point instead of branching on the profile's name.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Final, Literal

__all__ = ["PROFILES", "PROFILE_ENV", "Profile", "get_profile", "profile_from_env"]

PROFILE_ENV: Final = "RIVYA_SANDBOX_PROFILE"
"""The environment variable that picks the embedded sandbox's profile (``serve --sandbox``, demo)."""


@dataclass(frozen=True)
class Profile:
    """The sandbox's answer to every question the docs leave open."""

    name: str
    create_status: int
    """Status of a create that made a new task (docs §3.2: 200, 201 or 202 unknown)."""
    upload_status: int
    """Status of a successful ``POST /api/v1/files`` (not documented)."""
    replay_header: bool
    """Whether an idempotent replay says so in ``Idempotent-Replayed: true`` (not documented)."""
    file_id_style: Literal["prefixed", "uuid"]
    """``file_<hex>`` or a bare UUID: the docs never show a file id (§3.6)."""
    file_id_field: str
    """``id`` or ``file_id``: the docs use both names (§3.6, §3.7)."""
    mime_field: str
    """``mimeType`` or ``mime_type`` (§3.6, open question 4)."""
    size_field: str
    """The size field's name; not documented at all (§3.6)."""
    list_result_urls: bool
    """Whether ``result.urls`` is listed on success; the docs say "when available" (§3.3)."""
    retry_after: Literal["seconds", "http-date"]
    """How ``Retry-After`` is written; RFC 9110 allows both, the docs say nothing (§5)."""
    insufficient_credits_status: int
    """The HTTP status of ``insufficient_credits``: not shown; the fact sheet infers 402 or 400 (§3.5)."""
    megabyte: int
    """What the documented "10 MB" upload limit means in bytes (§3.6)."""
    extra_fields: bool
    """Whether every object and error envelope carries fields the client has never heard of.
    The docs call an added optional field backward-compatible (§1), so a client must ignore them."""
    float_numbers: bool
    """Whether numbers (credits, sizes) are written as JSON floats (``8.0``): JSON has one number type."""
    duration_factor: float
    """Task durations are the configured ones times this (the docs give no timings)."""
    duration_jitter: float
    """Each task's durations vary by up to this fraction either way, drawn from the seeded RNG."""
    webhook_payload_key: str
    """The webhook event member that holds the generation: §3.8 is cut off before naming it."""
    in_flight_conflict: bool
    """Whether a repeated ``Idempotency-Key`` with the *same* body answers ``409 idempotency_conflict``
    while the first create under that key is still being processed (the first
    ``SandboxConfig.idempotency_in_flight_seconds``), instead of replaying it. §6: what triggers the
    409 is not documented; a different body under the same key is 409 in both profiles."""
    file_kind: bool
    """Whether the file object echoes ``kind`` (its fields are not documented, §3.6)."""
    catalog_size_unit: Literal["MB", "bytes"]
    """How the catalog's ``reference_media`` states the upload limit: ``max_size_mb`` in the profile's
    own megabytes (as the model pages write "10 MB"), or ``max_bytes`` (the element shape is not
    documented, §3.1). Either way it is what this profile enforces."""
    catalog_oddities: bool
    """Whether the catalog also lists what the docs say it may (§3.1): a chat model
    (``supported_modes: null``), models not callable through the API (``coming_soon``,
    ``studio_only``), and odd values (a numeric string, nulls, one entry the client cannot read)."""
    webhook_signing: Literal["standard", "stripe"]
    """How deliveries are signed (§3.8 is cut off before the scheme); ``SandboxConfig.webhook_signing``
    overrides it (also with ``unknown``)."""

    # -- small pure functions the routes and the state call --------------------------------

    def new_file_id(self) -> str:
        # Ids come from `secrets`/`uuid4`, not the seeded RNG: they must be unguessable.
        if self.file_id_style == "uuid":
            return str(uuid.uuid4())
        return f"file_{uuid.uuid4().hex[:24]}"

    def number(self, value: int) -> int | float:
        """A documented number as this profile writes it."""
        return float(value) if self.float_numbers else value

    def retry_after_header(self, seconds: float, now: float) -> str:
        """``Retry-After`` for a wait of ``seconds`` (whole seconds, rounded up), at epoch ``now``."""
        if self.retry_after == "http-date":
            # An HTTP date has one-second resolution: name the second after the wait ends, so a
            # client that obeys it never comes back early.
            return formatdate(math.floor(now) + max(1, math.ceil(seconds)) + 1, usegmt=True)
        return str(math.ceil(seconds))

    def durations(self, queued: float, processing: float, rng: random.Random) -> tuple[float, float]:
        """How long one task stays queued and then processing."""
        scale = self.duration_factor
        if self.duration_jitter:
            scale *= 1.0 + self.duration_jitter * (2.0 * rng.random() - 1.0)
        return queued * scale, processing * scale

    def with_extras(self, obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """``obj`` plus the unknown fields this profile adds to every object (none by default)."""
        body = dict(obj)
        if self.extra_fields:
            body.setdefault("object", kind)
            body["livemode"] = False
            body["x_sandbox"] = {"profile": self.name, "note": "an unknown field; clients must ignore it"}
        return body

    def error_extras(self) -> dict[str, Any]:
        """Unknown fields added inside the error envelope's ``error`` object."""
        if not self.extra_fields:
            return {}
        return {"type": "api_error", "doc_url": "https://rivya.ai/docs/api-errors-and-limits", "param": None}


DEFAULT: Final = Profile(
    name="default",
    create_status=201,
    upload_status=201,
    replay_header=True,
    file_id_style="prefixed",
    file_id_field="id",
    mime_field="mimeType",
    size_field="size",
    list_result_urls=True,
    retry_after="seconds",
    insufficient_credits_status=402,
    megabyte=1024 * 1024,
    webhook_payload_key="data",
    in_flight_conflict=False,
    file_kind=True,
    catalog_size_unit="MB",
    catalog_oddities=False,
    webhook_signing="standard",
    extra_fields=False,
    float_numbers=False,
    duration_factor=1.0,
    duration_jitter=0.0,
)

VARIANT: Final = Profile(
    name="variant",
    create_status=200,
    upload_status=200,
    replay_header=False,
    file_id_style="uuid",
    file_id_field="file_id",
    mime_field="mime_type",
    size_field="bytes",
    list_result_urls=False,
    retry_after="http-date",
    insufficient_credits_status=400,
    megabyte=1_000_000,
    webhook_payload_key="generation",
    in_flight_conflict=True,
    file_kind=False,
    catalog_size_unit="bytes",
    catalog_oddities=True,
    webhook_signing="stripe",
    extra_fields=True,
    float_numbers=True,
    duration_factor=2.5,
    duration_jitter=0.4,
)

PROFILES: Final[Mapping[str, Profile]] = {p.name: p for p in (DEFAULT, VARIANT)}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError naming the choices otherwise."""
    try:
        return PROFILES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown sandbox profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def profile_from_env(environ: Mapping[str, str]) -> str:
    """The profile named by ``RIVYA_SANDBOX_PROFILE`` (``default`` when unset); ValueError if unknown."""
    return get_profile(environ.get(PROFILE_ENV) or "default").name
