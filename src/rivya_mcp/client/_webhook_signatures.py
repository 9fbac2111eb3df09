"""Webhook signature conventions: learn which one Rivya uses from a test delivery, then pin it.

rivya-api.md §3.8 promises signed deliveries and a `whsec_` secret, but the page is cut off before
the scheme. So the receiver does not guess one: after registering, it asks for the documented test
delivery (``POST /webhooks/{id}/test``), finds which convention of a small known set verifies it
(``detect_convention``), and from then on verifies every delivery with that one alone
(``verify_delivery``). The known set:

- ``standard``: Standard Webhooks (and Svix, its origin): headers ``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature`` (space-separated ``v1,<base64>`` entries), an
  HMAC-SHA256 over ``{id}.{timestamp}.{body}``; the ``svix-`` spelling of the headers too;
- ``stripe``: one ``…signature`` header ``t=<timestamp>,v1=<hex>`` (several ``v1`` allowed), an
  HMAC-SHA256 over ``{t}.{body}``;
- ``hex``: one ``…signature`` header holding the hex HMAC-SHA256 of the body alone (optionally
  ``sha256=`` first). It has no timestamp, so it cannot refuse a replayed delivery: the receiver's
  event-id check is then the only replay defence.

Each with the secret base64-decoded after its ``whsec_`` prefix or used as raw text, and the
timestamp in seconds or milliseconds. Every comparison is constant-time; a timestamp outside
``TIMESTAMP_TOLERANCE_SECONDS`` is refused; nothing malformed (a 5000-digit timestamp, ``²``, a
header of megabytes, bad base64 or hex) raises: it is a bad signature like any other.

Pure functions, no I/O: the receiver (and ``rivya-mcp doctor``) feed them headers, the raw body,
the secret and the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "KNOWN_SCHEMES",
    "TIMESTAMP_TOLERANCE_SECONDS",
    "SignatureConvention",
    "Verdict",
    "candidate_conventions",
    "detect_convention",
    "signature_header_names",
    "verify_delivery",
]

Scheme = Literal["standard", "stripe", "hex"]
SecretEncoding = Literal["base64", "raw"]
TimestampUnit = Literal["s", "ms"]

KNOWN_SCHEMES: Final[tuple[Scheme, ...]] = ("standard", "stripe", "hex")
SECRET_PREFIX: Final = "whsec_"
# A delivery signed longer ago (or further ahead) than this is refused: a captured request cannot
# be replayed later, and clocks may disagree by a little.
TIMESTAMP_TOLERANCE_SECONDS: Final = 300.0
# Bounds on what is even looked at: a signature header is short, and so is a timestamp (13 digits
# in milliseconds until the year 2286). Anything longer is refused unread.
MAX_HEADER_CHARS: Final = 4096
MAX_SIGNATURES: Final = 16
MAX_TIMESTAMP_DIGITS: Final = 16
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}", re.ASCII)
_HEX_SHA256 = re.compile(r"(?:sha256=)?([0-9a-fA-F]{64})", re.ASCII)
_STANDARD_PREFIXES = ("webhook", "svix")
_ENCODINGS: Final[tuple[SecretEncoding, ...]] = ("base64", "raw")
_RAW_FIRST: Final[tuple[SecretEncoding, ...]] = ("raw", "base64")
_UNITS: Final[tuple[TimestampUnit, ...]] = ("s", "ms")


@dataclass(frozen=True)
class SignatureConvention:
    """One way of signing: the scheme, the header it arrives in, the secret's use, the clock's unit."""

    scheme: Scheme
    header: str
    """The lower-case name of the header that carries the signature."""
    secret: SecretEncoding
    timestamp: TimestampUnit | None
    """None for ``hex``, which has no timestamp."""

    @property
    def name(self) -> str:
        """A stable one-line form, e.g. ``stripe:rivya-signature:raw:s`` (what gets pinned)."""
        return f"{self.scheme}:{self.header}:{self.secret}:{self.timestamp or '-'}"

    @classmethod
    def parse(cls, name: str) -> SignatureConvention:
        """The convention ``name`` stands for; ValueError when it is not one of the known set."""
        parts = name.strip().split(":")
        if len(parts) != 4:
            raise ValueError(f"not a signature convention: {name!r}")
        scheme_name, header, secret_name, unit_name = parts
        scheme = next((s for s in KNOWN_SCHEMES if s == scheme_name), None)
        secret = next((e for e in _ENCODINGS if e == secret_name), None)
        unit = next((u for u in _UNITS if u == unit_name), None)
        if scheme is None or secret is None or (unit is None and unit_name != "-"):
            raise ValueError(f"not a known signature convention: {name!r}")
        if (scheme == "hex") != (unit is None) or "signature" not in header.lower():
            raise ValueError(f"not a known signature convention: {name!r}")
        return cls(scheme, header.lower(), secret, unit)

    def describe(self) -> str:
        """In words, for a log line or the doctor's table."""
        what = {
            "standard": "Standard Webhooks (id.timestamp.body, base64 HMAC-SHA256)",
            "stripe": "t=…,v1=… (timestamp.body, hex HMAC-SHA256)",
            "hex": "hex HMAC-SHA256 of the body (no timestamp)",
        }[self.scheme]
        secret = "the secret base64-decoded after whsec_" if self.secret == "base64" else "the secret as text"
        unit = {"s": ", timestamps in seconds", "ms": ", timestamps in milliseconds", None: ""}[self.timestamp]
        return f"{what} in {self.header}, {secret}{unit}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one delivery."""

    ok: bool
    problem: str | None = None
    """Why it was refused (never quotes the secret or a signature)."""
    event_id: str | None = None
    """The event id the signature covers (``webhook-id``), when the convention has one."""
    timestamp: float | None = None
    """The signed timestamp in Unix seconds, when the convention has one."""


def _refused(problem: str) -> Verdict:
    return Verdict(False, problem)


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(name).lower(): str(value) for name, value in items}


def _key(secret: str, encoding: SecretEncoding) -> bytes | None:
    if encoding == "raw":
        return secret.encode("utf-8")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None


def _seconds(raw: str, unit: TimestampUnit) -> float | None:
    """A timestamp of ASCII digits only (``²`` is a digit to ``str.isdigit``, not here), short enough to be one."""
    if not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value / 1000.0 if unit == "ms" else float(value)


def _fresh(stamp: float | None, now: float, tolerance: float) -> str | None:
    if stamp is None:
        return "the timestamp is not a Unix time"
    if abs(now - stamp) > tolerance:
        return "the timestamp is outside the allowed window"
    return None


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _standard(
    convention: SignatureConvention, headers: dict[str, str], body: bytes, key: bytes, now: float, tolerance: float
) -> Verdict:
    prefix = convention.header.removesuffix("-signature")
    event_id = headers.get(f"{prefix}-id", "")
    raw_stamp = headers.get(f"{prefix}-timestamp", "")
    signatures = headers.get(convention.header, "")
    if not event_id or not raw_stamp or not signatures:
        return _refused(f"missing {prefix}-id, {prefix}-timestamp or {convention.header}")
    if len(event_id) > MAX_HEADER_CHARS:
        return _refused(f"{prefix}-id is too long")
    assert convention.timestamp is not None
    stamp = _seconds(raw_stamp, convention.timestamp)
    stale = _fresh(stamp, now, tolerance)
    if stale:
        return _refused(stale)
    expected = _mac(key, f"{event_id}.{raw_stamp}.".encode() + body)
    for entry in signatures.split()[:MAX_SIGNATURES]:
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return Verdict(True, event_id=event_id, timestamp=stamp)
    return _refused("no valid signature")


def _stripe(
    convention: SignatureConvention, headers: dict[str, str], body: bytes, key: bytes, now: float, tolerance: float
) -> Verdict:
    value = headers.get(convention.header, "")
    raw_stamp: str | None = None
    given: list[str] = []
    for part in value.split(",")[: 2 * MAX_SIGNATURES]:
        name, _, field = part.strip().partition("=")
        if name == "t" and raw_stamp is None:
            raw_stamp = field
        elif name == "v1":
            given.append(field)
    if raw_stamp is None or not given:
        return _refused(f"{convention.header} has no t= or no v1=")
    assert convention.timestamp is not None
    stamp = _seconds(raw_stamp, convention.timestamp)
    stale = _fresh(stamp, now, tolerance)
    if stale:
        return _refused(stale)
    expected = _mac(key, f"{raw_stamp}.".encode() + body)
    for candidate in given:
        try:
            signature = bytes.fromhex(candidate)
        except ValueError:
            continue
        if hmac.compare_digest(signature, expected):
            return Verdict(True, timestamp=stamp)
    return _refused("no valid signature")


def _hex(convention: SignatureConvention, headers: dict[str, str], body: bytes, key: bytes) -> Verdict:
    match = _HEX_SHA256.fullmatch(headers.get(convention.header, "").strip())
    if match is None:
        return _refused(f"{convention.header} is not a hex HMAC-SHA256")
    if hmac.compare_digest(bytes.fromhex(match.group(1)), _mac(key, body)):
        return Verdict(True)
    return _refused("no valid signature")


def verify_delivery(
    convention: SignatureConvention,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = TIMESTAMP_TOLERANCE_SECONDS,
) -> Verdict:
    """Check one delivery with the pinned ``convention``; never raises.

    Args:
        headers: the request's headers (any case).
        body: the raw body, exactly as received.
        secret: the endpoint's ``signing_secret``.
        now: the current Unix time in seconds (inject it; tests pass a fixed one).
    """
    lowered = _lower(headers)
    value = lowered.get(convention.header)
    if value is None:
        return _refused(f"no {convention.header} header")
    if len(value) > MAX_HEADER_CHARS:
        return _refused(f"{convention.header} is too long")
    key = _key(secret, convention.secret)
    if key is None:
        return _refused("the signing secret is not whsec_ base64")
    try:
        if convention.scheme == "standard":
            return _standard(convention, lowered, body, key, now, tolerance)
        if convention.scheme == "stripe":
            return _stripe(convention, lowered, body, key, now, tolerance)
        return _hex(convention, lowered, body, key)
    except (ValueError, TypeError, OverflowError):  # defence in depth: a bad header is a bad signature
        return _refused("the signature headers are malformed")


def signature_header_names(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    """The lower-case names of the headers that look like they carry a signature, sorted."""
    return sorted(name for name in _lower(headers) if "signature" in name)


def candidate_conventions(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[SignatureConvention]:
    """Every known convention these headers could be signed with, in the order they are tried."""
    lowered = _lower(headers)
    found: list[SignatureConvention] = []
    for prefix in _STANDARD_PREFIXES:
        if f"{prefix}-signature" in lowered and f"{prefix}-timestamp" in lowered:
            for secret in _ENCODINGS:
                for unit in _UNITS:
                    found.append(SignatureConvention("standard", f"{prefix}-signature", secret, unit))
    for name in signature_header_names(lowered):
        value = lowered[name]
        if len(value) > MAX_HEADER_CHARS:
            continue
        if "t=" in value and "v1=" in value:
            for secret in _RAW_FIRST:
                for unit in _UNITS:
                    found.append(SignatureConvention("stripe", name, secret, unit))
        elif _HEX_SHA256.fullmatch(value.strip()):
            for secret in _RAW_FIRST:
                found.append(SignatureConvention("hex", name, secret, None))
    return found


def detect_convention(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = TIMESTAMP_TOLERANCE_SECONDS,
) -> SignatureConvention | None:
    """The first known convention that verifies this (test) delivery, or None when none does.

    Feed it the delivery that ``POST /webhooks/{id}/test`` caused, then pin the answer. Two
    conventions cannot both verify one delivery except by an HMAC collision.
    """
    for convention in candidate_conventions(headers):
        if verify_delivery(convention, headers, body, secret, now=now, tolerance=tolerance).ok:
            return convention
    return None
